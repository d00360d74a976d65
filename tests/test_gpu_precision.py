"""Training precision on a GPU: bf16 where the card has it, fp16 with a gradient scaler where it has
not (Colab's T4). No GPU needed: the capability is faked, and the fp16 path runs on the CPU."""

from __future__ import annotations

import pytest
import torch

import fmteach.finetune as finetune
import fmteach.train as train_module
from fmteach.profile import autocast_dtype
from tests.tiny import tiny_batches, tiny_config, tiny_gpt


def fake_bf16_support(monkeypatch, supported: bool) -> list[dict]:
    """Pretend the CUDA card does (A100, L4) or does not (T4, V100) compute bf16; record the calls."""
    calls = []

    def is_bf16_supported(**kwargs):
        calls.append(kwargs)
        # torch's default (including_emulation=True) says yes on a T4 too: emulated, slowly
        return supported or kwargs.get("including_emulation", True)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return calls


@pytest.mark.parametrize("supported, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_gpu_picks_bf16_only_where_the_card_has_it(monkeypatch, supported, expected):
    calls = fake_bf16_support(monkeypatch, supported)
    assert autocast_dtype("cuda") is expected
    assert autocast_dtype(torch.device("cuda", 0)) is expected
    assert calls and all(c == {"including_emulation": False} for c in calls)


def test_cpu_and_mps_train_in_float32(monkeypatch):
    fake_bf16_support(monkeypatch, True)
    assert autocast_dtype("cpu") is None and autocast_dtype(torch.device("mps")) is None


def test_bad_device_is_named():
    with pytest.raises(TypeError, match="device must be a torch.device or a string such as 'cuda', got int"):
        autocast_dtype(0)
    with pytest.raises(RuntimeError):
        autocast_dtype("no-such-device")


def test_trainer_arguments_follow_the_choice(monkeypatch, tmp_path):
    recipe = finetune.FinetuneRecipe()
    for dtype, (bf16, fp16) in {torch.bfloat16: (True, False), torch.float16: (False, True), None: (False, False)}.items():
        monkeypatch.setattr(finetune.trainer, "autocast_dtype", lambda device, dtype=dtype: dtype)
        args = finetune.training_arguments(recipe, tmp_path, progress=False)
        assert (args.bf16, args.fp16) == (bf16, fp16), dtype


def test_fp16_training_uses_the_scaler_and_resumes_exactly(monkeypatch, tmp_path):
    """The T4 path of the one training loop, run on the CPU (torch autocasts to fp16 there too)."""
    monkeypatch.setattr(train_module, "autocast_dtype", lambda device: torch.float16)
    config = tiny_config(max_steps=8, eval_interval=4)
    whole = train_module.train(tiny_gpt(), tiny_batches, config, progress=False, out_dir=tmp_path / "whole")
    state = torch.load(tmp_path / "whole" / train_module.CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert state["scaler"]["scale"] > 1.0  # the loss was scaled; without a scaler the entry is empty
    assert all(torch.isfinite(torch.tensor(whole.step_losses)))
    assert whole.history[-1]["val_loss"] < whole.history[0]["val_loss"]

    first = train_module.train(tiny_gpt(), tiny_batches, config, progress=False, out_dir=tmp_path / "parts",
                               stop_at_step=5)
    assert first.step == 5
    rest = train_module.train(tiny_gpt(seed=99), tiny_batches, config, progress=False, out_dir=tmp_path / "parts",
                              resume=True)
    assert rest.step_losses == whole.step_losses  # scaler state included: bit-identical


def test_float32_training_has_no_scaler_state(tmp_path):
    train_module.train(tiny_gpt(), tiny_batches, tiny_config(max_steps=2), progress=False, out_dir=tmp_path)
    assert torch.load(tmp_path / train_module.CHECKPOINT_NAME, map_location="cpu", weights_only=True)["scaler"] == {}


def test_finetune_loop_fp16_path_runs(monkeypatch):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from tests.tiny import RECIPE, tiny_bert, toy_data

    monkeypatch.setattr(finetune.loop, "autocast_dtype", lambda device: torch.float16)
    tokenizer = AutoTokenizer.from_pretrained(finetune.pretrained_bert())
    data = toy_data()
    train = finetune.encode(tokenizer, data.train, max_length=16)
    result = finetune.finetune_loop(tiny_bert(), train, None, RECIPE, collator=DataCollatorWithPadding(tokenizer),
                                    device=torch.device("cpu"), max_steps=4, progress=False)
    assert result.steps == 4 and all(torch.isfinite(torch.tensor([r["train_loss"] for r in result.history])))
