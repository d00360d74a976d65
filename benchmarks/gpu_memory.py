"""How much GPU memory the gpu profile's three training runs need: an estimate, not a measurement,
from parameter, batch and activation sizes. SETUP.md prints its table (tests/test_gpu_memory.py
keeps the two equal, and checks that every run fits a 15 GB T4).

    python benchmarks/gpu_memory.py     # prints the table for SETUP.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing
from fmteach._checks import check_positive  # noqa: E402


@dataclass(frozen=True)
class MemoryEstimate:
    """Training memory in GB (10⁹ bytes), by what holds it; ``total`` adds them up."""

    weights_and_optimizer: float
    activations: float
    logits: float
    overhead: float

    @property
    def total(self) -> float:
        return self.weights_and_optimizer + self.activations + self.logits + self.overhead


def estimate_training_memory(n_params: int, *, batch_size: int, seq_len: int, n_layer: int, hidden: int,
                             n_heads: int, vocab_size: int, logit_fraction: float = 1.0,
                             overhead_gb: float = 1.0) -> MemoryEstimate:
    """An upper estimate of one GPU's memory while training a transformer with AdamW under 16-bit autocast.

    * weights, gradients and AdamW's two moments in float32, plus the 16-bit copies autocast makes
      of the weights: 18 bytes per parameter;
    * activations kept for the backward pass, per layer ``s·b·h·34 + 5·a·s²·b`` bytes with 16-bit
      activations (Korthikanti et al. 2022, "Reducing activation recomputation in large transformer
      models", eq. 1: attention matrices stored, as without flash attention -- so an upper bound);
    * the output logits of ``logit_fraction`` of the positions (MLM: only the masked ones), 16-bit
      plus the float32 softmax and its gradient: 10 bytes per logit;
    * ``overhead_gb`` for the CUDA context, kernels and the allocator's slack.
    """
    check_positive(n_params=n_params, batch_size=batch_size, seq_len=seq_len, n_layer=n_layer, hidden=hidden,
                   n_heads=n_heads, vocab_size=vocab_size)
    if not 0 < logit_fraction <= 1:
        raise ValueError(f"logit_fraction={logit_fraction!r} must be in (0, 1]")
    gb = 1e9
    per_layer = seq_len * batch_size * hidden * 34 + 5 * n_heads * seq_len**2 * batch_size
    return MemoryEstimate(
        weights_and_optimizer=18 * n_params / gb,
        activations=n_layer * per_layer / gb,
        logits=10 * logit_fraction * batch_size * seq_len * vocab_size / gb,
        overhead=overhead_gb,
    )


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
    from fmteach.train_config import TrainConfig

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


if __name__ == "__main__":
    print(gpu_memory_table())
