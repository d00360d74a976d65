"""Does the gpu profile fit Colab's card (a T4, 15 GB)? An estimate from the parameter, batch and
activation sizes of the three gpu-profile training runs; SETUP.md prints this table.

    python tests/test_gpu_memory.py     # prints the table for SETUP.md
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fmteach.profile import MemoryEstimate, estimate_training_memory

REPO = Path(__file__).resolve().parents[1]
CARD_GB = 15.0  # a T4 has 16 GB, about 15 of them usable


def _n_params(build) -> int:
    with torch.device("meta"):  # shapes only: nothing is allocated
        return sum(p.numel() for p in build().parameters())


def gpu_runs() -> dict[str, tuple[str, MemoryEstimate]]:
    """``{run: (its sizes in words, estimate)}`` for the gpu profile's three training runs."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from fmteach.assets import pretrained_bert
    from fmteach.bert import MiniBertForMaskedLM
    from fmteach.finetune import FinetuneRecipe
    from fmteach.lm_data import load_shakespeare_chars
    from fmteach.model import GPTConfig, MiniGPT
    from fmteach.pretrain_mlm import MLMRecipe
    from fmteach.train import TrainConfig

    runs = {}
    gpt, gpt_train = GPTConfig.gpu(load_shakespeare_chars().tokenizer.vocab_size), TrainConfig.gpu()
    runs["MiniGPT (lesson 04)"] = (
        f"batch {gpt_train.batch_size} × {gpt.block_size} characters", estimate_training_memory(
            _n_params(lambda: MiniGPT(gpt)), batch_size=gpt_train.batch_size, seq_len=gpt.block_size,
            n_layer=gpt.n_layer, hidden=gpt.n_embd, n_heads=gpt.n_head, vocab_size=gpt.vocab_size))
    mlm = MLMRecipe.from_profile("gpu")
    runs["mini-BERT MLM (lesson 05)"] = (
        f"batch {mlm.train.batch_size} × {mlm.seq_len} tokens", estimate_training_memory(
            _n_params(lambda: MiniBertForMaskedLM(mlm.bert)), batch_size=mlm.train.batch_size, seq_len=mlm.seq_len,
            n_layer=mlm.bert.num_hidden_layers, hidden=mlm.bert.hidden_size, n_heads=mlm.bert.num_attention_heads,
            vocab_size=mlm.bert.vocab_size, logit_fraction=0.15))  # logits of the 15% masked tokens only
    recipe, minilm = FinetuneRecipe.from_profile("gpu"), AutoConfig.from_pretrained(pretrained_bert("minilm"))
    runs["MiniLM fine-tuning (lesson 07)"] = (
        f"batch {recipe.batch_size} × ≤ {recipe.max_length} tokens", estimate_training_memory(
            _n_params(lambda: AutoModelForSequenceClassification.from_config(minilm)), batch_size=recipe.batch_size,
            seq_len=recipe.max_length, n_layer=minilm.num_hidden_layers, hidden=minilm.hidden_size,
            n_heads=minilm.num_attention_heads, vocab_size=2))
    return runs


def gpu_memory_table() -> str:
    lines = ["| gpu-profile run | sizes | weights + AdamW | activations | logits | + CUDA context | total |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for run, (sizes, m) in gpu_runs().items():
        lines.append(f"| {run} | {sizes} | {m.weights_and_optimizer:.2f} GB | {m.activations:.2f} GB | "
                     f"{m.logits:.2f} GB | {m.overhead:.1f} GB | **{m.total:.1f} GB** |")
    return "\n".join(lines)


def test_estimate_adds_up_and_rejects_bad_sizes():
    m = estimate_training_memory(1_000_000, batch_size=2, seq_len=4, n_layer=1, hidden=8, n_heads=2, vocab_size=10,
                                 overhead_gb=0.5)
    assert m.weights_and_optimizer == pytest.approx(0.018)
    assert m.activations == pytest.approx((4 * 2 * 8 * 34 + 5 * 2 * 16 * 2) / 1e9)
    assert m.logits == pytest.approx(10 * 2 * 4 * 10 / 1e9)
    assert m.total == pytest.approx(m.weights_and_optimizer + m.activations + m.logits + 0.5)
    with pytest.raises(ValueError, match="batch_size=0 must be a positive int"):
        estimate_training_memory(10, batch_size=0, seq_len=4, n_layer=1, hidden=8, n_heads=2, vocab_size=10)
    with pytest.raises(ValueError, match="logit_fraction=0 must be in"):
        estimate_training_memory(10, batch_size=1, seq_len=4, n_layer=1, hidden=8, n_heads=2, vocab_size=10,
                                 logit_fraction=0)


def test_gpu_profile_fits_a_15_gb_card():
    for run, (_, estimate) in gpu_runs().items():
        assert estimate.total < CARD_GB, f"{run} needs about {estimate.total:.1f} GB: more than a T4's {CARD_GB} GB"


def test_setup_page_prints_the_current_estimate():
    table = gpu_memory_table()
    assert table in (REPO / "SETUP.md").read_text(encoding="utf-8"), f"update SETUP.md's table:\n{table}"


if __name__ == "__main__":
    print(gpu_memory_table())
