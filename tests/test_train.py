"""The training loop: schedule, accumulation, exact resume, NaN errors, checkpoints, DDP, the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fmteach.train import CHECKPOINT_NAME, _make_optimizer, model_loss, read_history, train, write_history
from tests.tiny import tiny_batches, tiny_config, tiny_gpt

REPO = Path(__file__).resolve().parents[1]


def test_loss_goes_down_and_history_is_recorded():
    calls = []
    result = train(tiny_gpt(), tiny_batches, tiny_config(max_steps=40, eval_interval=20), progress=False,
                   eval_fn=lambda model: {"answer": 42.0}, on_eval=lambda entry, history: calls.append(entry))
    assert [h["step"] for h in result.history] == [0, 20, 40]
    assert set(result.history[0]) == {"step", "lr", "train_loss", "val_loss", "answer"}
    assert result.history[0]["val_loss"] == pytest.approx(math.log(50), abs=0.1)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"] - 1.0
    assert len(result.step_losses) == result.step == 40
    assert calls == result.history  # the live-plot hook saw every evaluation


def test_learning_rate_schedule():
    config = tiny_config(max_steps=100, warmup_steps=10, learning_rate=1e-3, min_lr=1e-4)
    lrs = [config.lr_at(s) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)  # linear warmup
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then only down
    assert lrs[55] == pytest.approx(5.5e-4)  # half way through the cosine: the middle
    assert lrs[100] == pytest.approx(1e-4)
    result = train(tiny_gpt(), tiny_batches, tiny_config(), progress=False)
    assert [h["lr"] for h in result.history] == pytest.approx([tiny_config().lr_at(h["step"]) for h in result.history])


def test_weight_decay_only_on_matrices():
    model = tiny_gpt()
    decay, no_decay = _make_optimizer(model, tiny_config(), torch.device("cpu")).param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_gradient_accumulation_equals_one_big_batch():
    whole = train(tiny_gpt(), tiny_batches, tiny_config(), progress=False)
    accumulated = train(tiny_gpt(), tiny_batches, tiny_config(grad_accum_steps=4), progress=False)
    assert accumulated.step_losses == pytest.approx(whole.step_losses, abs=1e-5)


def test_resume_is_bit_identical(tmp_path):
    config = tiny_config(grad_accum_steps=2)
    dropout = {"dropout": 0.1}  # dropout draws random numbers: resuming must restore the RNG too
    whole_model = tiny_gpt(**dropout)
    whole = train(whole_model, tiny_batches, config, progress=False)

    first = train(tiny_gpt(**dropout), tiny_batches, config, out_dir=tmp_path, stop_at_step=5, progress=False)
    assert first.step == 5 and (tmp_path / CHECKPOINT_NAME).exists()
    resumed_model = tiny_gpt(seed=123, **dropout)  # other initial weights: the checkpoint must overwrite them
    resumed = train(resumed_model, tiny_batches, config, out_dir=tmp_path, resume=True, progress=False)

    assert resumed.step_losses == whole.step_losses  # exactly, not approximately
    assert resumed.history == whole.history
    for a, b in zip(resumed_model.parameters(), whole_model.parameters()):
        assert torch.equal(a, b)


def test_checkpoint_is_complete_and_written_atomically(tmp_path):
    train(tiny_gpt(), tiny_batches, tiny_config(max_steps=4), out_dir=tmp_path,
          checkpoint_extra={"chars": "abc"}, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no temporary file left behind
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, map_location="cpu", weights_only=True)  # plain data: loadable safely
    assert {"model", "optimizer", "scheduler", "step", "history", "step_losses", "rng"} <= set(ckpt)
    assert ckpt["step"] == 4 and ckpt["extra"] == {"chars": "abc"} and ckpt["model_config"]["n_embd"] == 32
    assert {"torch", "python", "numpy", "data"} <= set(ckpt["rng"][0])


def test_nan_loss_names_the_step():
    training_calls = []

    def loss_fn(model, batch):  # the third training step goes wrong
        loss = model_loss(model, batch)
        if model.training:
            training_calls.append(1)
            if len(training_calls) == 3:
                return loss * float("nan")
        return loss

    with pytest.raises(FloatingPointError, match="became nan at step 2"):
        train(tiny_gpt(), tiny_batches, tiny_config(), loss_fn=loss_fn, progress=False)


def test_the_default_loss_reads_out_loss_of_ours_and_hugging_faces_models():
    from transformers import GPT2Config, GPT2LMHeadModel

    x, y = tiny_batches("train", 2, torch.Generator().manual_seed(0))
    ours = tiny_gpt().eval()
    torch.testing.assert_close(model_loss(ours, (x, y)), ours(x, y).loss)
    theirs = GPT2LMHeadModel(GPT2Config(vocab_size=ours.config.vocab_size, n_positions=32, n_embd=16, n_layer=1,
                                        n_head=2, bos_token_id=0, eos_token_id=0)).eval()
    batch = {"input_ids": x, "labels": x}
    torch.testing.assert_close(model_loss(theirs, batch), theirs(**batch).loss)
    with pytest.raises(ValueError, match="the model returned no loss: put the targets in the batch"):
        model_loss(ours, (x,))


def test_any_model_and_batch_format():
    """Model-agnostic: a dict batch, a loss_fn, a model that is not a GPT."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    true_w = torch.tensor([[1.0, -2.0, 0.5]])

    def batches(split, batch_size, generator):
        x = torch.randn(batch_size, 3, generator=generator)
        return {"x": x, "y": x @ true_w.T}

    def mse(model, batch):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    config = tiny_config(max_steps=200, learning_rate=0.05, min_lr=0.01, weight_decay=0.0, eval_interval=100)
    result = train(model, batches, config, loss_fn=mse, progress=False)
    assert result.history[-1]["val_loss"] < 1e-3


def test_batch_size_mismatch_is_reported():
    with pytest.raises(ValueError, match="returned 4 rows, expected batch_size=8"):
        train(tiny_gpt(), lambda s, n, g: tiny_batches(s, 4, g), tiny_config(), progress=False)
    with pytest.raises(ValueError, match="not divisible by grad_accum_steps"):
        tiny_config(grad_accum_steps=3)


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from fmteach.lm_data import get_batch
    from fmteach.model import GPTConfig, MiniGPT
    from fmteach.train import train
    from fmteach.train_config import TrainConfig
    from fmteach.distributed import cleanup_distributed, setup_distributed

    rank, world, device = setup_distributed()
    torch.manual_seed(0)
    model = MiniGPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32))
    data = torch.arange(4000) * 7 % 50
    batches = lambda split, n, g: get_batch(data, n, 16, g)
    config = TrainConfig(max_steps=6, batch_size=8, learning_rate=3e-3, min_lr=3e-4, warmup_steps=2,
                         eval_interval=3, eval_iters=2)
    result = train(model, batches, config, progress=False)
    if rank == 0:
        params = torch.cat([p.detach().flatten() for p in model.parameters()])
        torch.save({"world": world, "losses": result.step_losses, "history": result.history,
                    "params": params}, sys.argv[1])
    cleanup_distributed()
    """
)


def test_ddp_on_two_processes_matches_one(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt")], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    double = subprocess.run([*launch, str(script), str(tmp_path / "two.pt")], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-2000:]
    one, two = (torch.load(tmp_path / name, map_location="cpu", weights_only=True) for name in ("one.pt", "two.pt"))
    assert (one["world"], two["world"]) == (1, 2)
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)  # 2 x 4 sequences == 1 x 8
    assert [h["val_loss"] for h in two["history"]] == pytest.approx([h["val_loss"] for h in one["history"]], abs=1e-5)
    torch.testing.assert_close(two["params"], one["params"], atol=1e-5, rtol=0)


def test_history_json_has_one_format_and_older_flat_files_still_read(tmp_path):
    path = write_history(tmp_path / "run" / "history.json", {"final_step": 2}, [{"step": 2, "val_loss": 1.5}], [2.0, 1.0])
    assert json.loads(path.read_text()) == read_history(path) == {
        "summary": {"final_step": 2}, "history": [{"step": 2, "val_loss": 1.5}], "step_losses": [2.0, 1.0]}
    assert [p.name for p in path.parent.iterdir()] == ["history.json"]  # written through atomic_write
    flat = tmp_path / "flat.json"  # what train_lm wrote before: the summary's fields at the top level
    flat.write_text(json.dumps({"final_step": 6, "history": [{"step": 6}], "step_losses": [1.0]}))
    assert read_history(flat) == {"summary": {"final_step": 6}, "history": [{"step": 6}], "step_losses": [1.0]}


def test_cli_writes_checkpoint_history_and_plot_and_resumes(tmp_path):
    from fmteach.train_lm import load_trained, main

    out = tmp_path / "run"
    summary = main(["--profile", "smoke", "--out", str(out), "--max-steps", "6", "--no-progress",
                    "--sample-chars", "20"])
    assert {p.name for p in out.iterdir()} == {"ckpt.pt", "history.json", "loss_curve.png"}
    assert summary["final_step"] == 6 and read_history(out / "history.json")["summary"]["final_step"] == 6
    assert summary["final_val_loss"] < math.log(summary["model_config"]["vocab_size"])
    resumed = main(["--profile", "smoke", "--out", str(out), "--max-steps", "8", "--resume", "--no-progress",
                    "--sample-chars", "0"])
    assert resumed["final_step"] == 8 and len(resumed["step_losses"]) == 8
    model, tokenizer, ckpt = load_trained(out)
    assert tokenizer.vocab_size == model.config.vocab_size and not model.training and ckpt["step"] == 8
