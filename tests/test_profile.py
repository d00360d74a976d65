"""Profiles and devices: FMTEACH_PROFILE picks smoke, cpu or gpu; one device rule for notebooks and
command lines (CUDA, then Apple's MPS, then the CPU); seeds."""

import os

import pytest
import torch

from fmteach import profile, seeding
from fmteach.distributed import setup_distributed


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert profile.get_device().type == expected
    assert profile.get_device("cpu").type == "cpu"  # an explicit choice wins


def test_a_single_process_cli_follows_the_notebook_rule(monkeypatch):
    """A Mac used to train on the CPU from the command line and on MPS in the notebook."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert setup_distributed() == (0, 1, torch.device("mps"))


def test_one_seed_default_everywhere():
    import inspect

    from fmteach import fewshot, finetune, leakage, mlm, notebook
    from fmteach.applications import clip, lora, nsp, qa, seq2seq, tagging, training, vit
    from fmteach.train_config import TrainConfig

    assert TrainConfig().seed == seeding.DEFAULT_SEED
    defaults = {}
    submodules = [getattr(finetune, name) for name in ("models", "loop", "evaluate", "data") if hasattr(finetune, name)]
    for module in (notebook, leakage, mlm, fewshot, finetune, *submodules, training, nsp, qa, seq2seq, tagging, vit, lora, clip):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            seed = inspect.signature(fn).parameters.get("seed")
            if seed is not None and seed.default is not inspect.Parameter.empty:
                defaults[f"{module.__name__}.{name}"] = seed.default
    assert len(defaults) >= 8, defaults
    assert set(defaults.values()) == {seeding.DEFAULT_SEED}, defaults


def test_the_checked_cpu_capability_really_changes_a_trained_number():
    """conftest runs the notebooks with ATEN_CPU_CAPABILITY one level below the CPU's best, so that
    a stored output that would differ on another CPU fails here too. That only works if the setting
    changes what a short training run computes: train the same tiny model under both levels."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("root_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    other_cpu_capability = root_conftest.other_cpu_capability

    level = other_cpu_capability(Path("/proc/cpuinfo").read_text()) if Path("/proc/cpuinfo").exists() else None
    if level is None:
        pytest.skip("no x86 vector levels to choose between on this machine")
    code = ("import torch\n"
            "from fmteach.model import GPTConfig, MiniGPT\n"
            "torch.manual_seed(0); m = MiniGPT(GPTConfig.smoke(82)); opt = torch.optim.AdamW(m.parameters(), 3e-3)\n"
            "g = torch.Generator().manual_seed(0)\n"
            "for _ in range(30):\n"
            "    x = torch.randint(82, (16, 64), generator=g); m(x[:, :-1], x[:, 1:]).loss.backward(); opt.step(); opt.zero_grad()\n"
            "print(torch.backends.cpu.get_cpu_capability(), repr(float(sum(p.detach().double().sum() for p in m.parameters()))))\n")
    results = {}
    for name, value in (("native", None), ("checked", level)):
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if value is not None:
            env["ATEN_CPU_CAPABILITY"] = value
        env["OMP_NUM_THREADS"] = "1"
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        results[name] = run.stdout.split()
    assert results["checked"][0] == level.upper() != results["native"][0]
    assert results["checked"][1] != results["native"][1], "the kernel level did not change a trained weight"


def test_profile_switch(monkeypatch):
    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert profile.get_profile() == "smoke" and profile.by_profile(1, 2, 3) == 1
    monkeypatch.setenv("FMTEACH_PROFILE", "GPU")
    assert profile.get_profile() == "gpu" and profile.by_profile(1, 2, 3) == 3
    monkeypatch.delenv("FMTEACH_PROFILE")
    assert profile.get_profile() == ("gpu" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("FMTEACH_PROFILE", "fast")
    with pytest.raises(ValueError, match="FMTEACH_PROFILE='fast' is not a profile; choose one of smoke, cpu, gpu"):
        profile.get_profile()


def test_device_and_seed():
    assert profile.get_device().type in ("cuda", "mps", "cpu")
    assert profile.get_device("cpu") == torch.device("cpu")
    seeding.set_seed(7)
    a = torch.randn(3)
    seeding.set_seed(7)
    assert torch.equal(a, torch.randn(3))
    with pytest.raises(TypeError):
        seeding.set_seed(1.5)
