"""The exercise checker of lesson 12 (write the LoRA layer): the reference solution and the package's
LoRALinear pass; a layer without the scaling, with B non-zero at the start, with an unfrozen base, a
wrong merge or a hidden peft is refused with a message that names the mistake."""

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


def test_the_solution_and_the_package_layer_pass(capsys):
    exercises.check_lora_linear(Solution)
    exercises.check_lora_linear(lambda base, r, alpha: lora.LoRALinear(base, r, alpha))
    exercises.check_lora_linear(Mine)
    assert capsys.readouterr().out.count("✅ the LoRA layer: correct") == 3


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
