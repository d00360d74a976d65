"""The exercise checker of lesson 12 (write the LoRA layer): the reference solution and the package's
LoRALinear pass; a layer without the scaling, with B non-zero at the start, with an unfrozen base, a
wrong merge or a hidden peft is refused with a message that names the mistake. The predictions 12.p1
and 12.p2, and the MiniLM sizes their answers rest on."""

import copy
import io
import json
import re
import warnings
from pathlib import Path

import peft
import pytest
import torch
import torch.nn as nn
from peft import LoraConfig

from fmteach import exercises
from fmteach.applications import lora

# peft 0.21.2 asks transformers 5.24 for a renamed attribute; nothing of ours
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


def solution_class():
    namespace = {"torch": torch, "nn": nn}
    exec(exercises.solution("12.1"), namespace)  # the registered solution, exactly as a learner would paste it
    return namespace["MyLoRALinear"]


Solution = solution_class()


class Mine(nn.Module):
    """A correct layer written in a module that has imported peft (above): that alone is no offence."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / r
        base.weight.requires_grad_(False)
        base.bias.requires_grad_(False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)  # an nn.Linear holding A is fine too
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + self.scale * (self.lora_A(x) @ self.lora_B.T)

    @torch.no_grad()
    def merge(self):
        merged = nn.Linear(self.base.in_features, self.base.out_features)
        merged.weight.copy_(self.base.weight + self.scale * self.lora_B @ self.lora_A.weight)
        merged.bias.copy_(self.base.bias)
        return merged


def test_the_solution_passes_and_the_package_layer_is_refused(capsys):
    exercises.check_lora_linear(Solution)
    exercises.check_lora_linear(Mine)
    assert capsys.readouterr().out.count("✅ the LoRA layer: correct") == 2
    with pytest.raises(AssertionError, match="is fmteach's lora.LoRALinear from section 1"):
        exercises.check_lora_linear(lambda base, r, alpha: lora.LoRALinear(base, r, alpha))


def test_not_attempted_only_reminds(capsys):
    class Skeleton(nn.Module):
        def __init__(self, base, r, alpha):
            super().__init__()
            raise NotImplementedError

    exercises.check_lora_linear(Skeleton)
    exercises.check_lora_linear(...)
    out = capsys.readouterr().out
    assert out.count("⏳ the LoRA layer: not attempted yet. Hint:") == 2 and "alpha and r" in out
    assert "MyLoRALinear" not in out  # the hint guides; it is not the solution


class Unscaled(Solution):
    def forward(self, x):
        return self.base(x) + x @ self.lora_A.T @ self.lora_B.T


class ScaledByAlpha(Solution):
    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling * self.lora_A.shape[0]


class RandomB(Solution):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.lora_B = nn.Parameter(torch.randn(base.out_features, r))


class ZeroA(Solution):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.lora_A = nn.Parameter(torch.zeros(r, base.in_features))


class Unfrozen(Solution):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        base.requires_grad_(True)


class TransposedA(Solution):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.lora_A = nn.Parameter(torch.randn(base.in_features, r))


class Detached(Solution):
    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.detach().T @ self.lora_B.T) * self.scaling


class MergeForgetsUpdate(Solution):
    def merge(self):
        return self.base


class MergeUnscaled(Solution):
    @torch.no_grad()
    def merge(self):
        merged = super().merge()
        merged.weight.copy_(self.base.weight + self.lora_B @ self.lora_A)
        return merged


class MergeReturnsWeight(Solution):
    def merge(self):
        return self.base.weight + self.scaling * self.lora_B @ self.lora_A


@pytest.mark.parametrize("wrong, message", [
    (Unscaled, r"in_features=12, out_features=20, r=3, alpha=6\): the update B A x is not scaled; LoRA scales it by "
               r"alpha / r = 2"),
    (ScaledByAlpha, "the update is scaled by alpha; LoRA scales it by alpha / r"),
    (RandomB, "lora_B should start at zero, so that the first output is the base layer's"),
    (ZeroA, "lora_A is all zeros at the start"),
    (Unfrozen, "base.weight still requires grad: the base layer must be frozen"),
    (TransposedA, r"lora_A has shape \(12, 3\) for in_features=12, out_features=20, r=3: expected \(3, 12\)"),
    (Detached, "no gradient reached lora_A"),
    (MergeForgetsUpdate, "the merged layer gives the base layer's output"),
    (MergeUnscaled, r"the merged layer's output .*: the update B A x is not scaled"),
    (MergeReturnsWeight, r"merge\(\) should return an nn.Linear\(12, 20\), got tensor"),
    (lambda base, r, alpha: "a layer", "make_layer should return an nn.Module, got str"),
])
def test_the_usual_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message) as caught:
        exercises.check_lora_linear(wrong)
    assert "\nHint: " in str(caught.value)


class PeftInside(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.inner = peft.tuners.lora.layer.Linear(base, "default", LoraConfig(r=r, lora_alpha=alpha), r=r,
                                                   lora_alpha=alpha)


def peft_factory(base, r, alpha):
    model = nn.Sequential(base)
    return peft.get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"]))


class ImportsPeft(Solution):
    def __init__(self, base, r, alpha):
        import peft  # noqa: F401 (the checker reads the source)

        super().__init__(base, r, alpha)


class UsesPeftName(Solution):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.settings = LoraConfig(r=r, lora_alpha=alpha)


@pytest.mark.parametrize("cheat, message", [
    (PeftInside, "inner is a Linear from peft"),
    (UsesPeftName, "UsesPeftName.__init__ uses 'LoraConfig' from peft"),
    (peft_factory, "is a PeftModel from peft"),
    (ImportsPeft, "ImportsPeft.__init__ imports peft"),
])
def test_peft_is_refused(cheat, message):
    with pytest.raises(AssertionError, match=f"{message}: this exercise asks you to write LoRA without the peft"):
        exercises.check_lora_linear(cheat)


def test_the_checker_leaves_the_callers_rng_alone(capsys):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    exercises.check_lora_linear(Solution)
    assert torch.equal(torch.get_rng_state(), state)


# ---------------------------------------------------------------------------------------------- predictions

def test_the_lesson_12_predictions_are_registered_with_their_answers(capsys):
    exercises.check_prediction("12.p1", ...)
    exercises.check_prediction("12.p2", ...)
    out = capsys.readouterr().out
    assert "⏳ prediction 12.p1: not answered yet. MiniLM fine-tuned for one task with LoRA" in out
    assert "⏳ prediction 12.p2: not answered yet. Dynamic int8 quantisation" in out
    exercises.check_prediction("12.p1", "C")
    exercises.check_prediction("12.p2", "b")
    out = capsys.readouterr().out
    assert "✅ prediction 12.p1: c) about a three-hundredth" in out and "✅ prediction 12.p2: b) about two thirds" in out
    with pytest.raises(AssertionError, match="prediction 12.p2: not 'a'"):
        exercises.check_prediction("12.p2", "a")


def saved_bytes(state_dict) -> int:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getbuffer().nbytes


def test_the_answers_hold_on_minilm():
    """12.p1: a LoRA r=8 adapter (query, value) + head is about 1/300 of MiniLM on disk (not 1/30, not 1/3);
    12.p2: dynamic int8 leaves the embedding table in float32, so the file keeps about two thirds of its size."""
    from fmteach.finetune import load_for_classification

    _, model = load_for_classification("minilm", ["negative", "positive"], seed=0)
    full = saved_bytes(model.state_dict())
    adapted = lora.apply_lora(copy.deepcopy(model), 8, 16.0, ("query", "value"), trainable="classifier")
    adapter = lora.trainable_state_dict(adapted)
    assert sum(t.numel() for t in adapter.values()) == 2 * 6 * 8 * (384 + 384) + 384 * 2 + 2
    assert 250 < full / saved_bytes(adapter) < 350
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    assert 0.6 < saved_bytes(int8.state_dict()) / full < 0.72
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert model.bert.embeddings.word_embeddings.weight.shape == (30522, 384)
    assert 0.5 < embeddings / sum(p.numel() for p in model.parameters()) < 0.55


def test_the_ids_lesson_12_names_exist_and_its_solution_is_given_on_request_only():
    path = Path(__file__).resolve().parents[1] / "notebooks" / "12_adapt_deploy_multimodal.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "".join("".join(cell["source"]) for cell in cells)
    named = set(re.findall(r'(?:solution|check_prediction)\("(\d\d\.p?\d)"', text))
    assert {"12.1", "12.p1", "12.p2"} <= named
    for exercise_id in named:
        assert exercise_id in exercises._checking._PREDICTIONS or exercises.solution(exercise_id)
    assert not any("solution" in cell["metadata"].get("tags", []) for cell in cells)  # no answer shown in a cell
