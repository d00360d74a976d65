"""Does the gpu profile fit Colab's card (a T4, 15 GB)? benchmarks/gpu_memory.py estimates the
memory of the gpu profile's three training runs; SETUP.md prints its table, kept current here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARD_GB = 15.0  # a T4 has 16 GB, about 15 of them usable


def _load_gpu_memory():
    spec = importlib.util.spec_from_file_location("gpu_memory", REPO / "benchmarks" / "gpu_memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


gpu_memory = _load_gpu_memory()


def test_estimate_adds_up_and_rejects_bad_sizes():
    m = gpu_memory.estimate_training_memory(1_000_000, batch_size=2, seq_len=4, n_layer=1, hidden=8, n_heads=2,
                                            vocab_size=10, overhead_gb=0.5)
    assert m.weights_and_optimizer == pytest.approx(0.018)
    assert m.activations == pytest.approx((4 * 2 * 8 * 34 + 5 * 2 * 16 * 2) / 1e9)
    assert m.logits == pytest.approx(10 * 2 * 4 * 10 / 1e9)
    assert m.total == pytest.approx(m.weights_and_optimizer + m.activations + m.logits + 0.5)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        gpu_memory.estimate_training_memory(10, batch_size=0, seq_len=4, n_layer=1, hidden=8, n_heads=2, vocab_size=10)
    with pytest.raises(ValueError, match="logit_fraction=0 must be in"):
        gpu_memory.estimate_training_memory(10, batch_size=1, seq_len=4, n_layer=1, hidden=8, n_heads=2,
                                            vocab_size=10, logit_fraction=0)


def test_gpu_profile_fits_a_15_gb_card():
    for run, (_, estimate) in gpu_memory.gpu_runs().items():
        assert estimate.total < CARD_GB, f"{run} needs about {estimate.total:.1f} GB: more than a T4's {CARD_GB} GB"


def test_setup_page_prints_the_current_estimate():
    table = gpu_memory.gpu_memory_table()
    assert table in (REPO / "SETUP.md").read_text(encoding="utf-8"), f"update SETUP.md's table:\n{table}"
