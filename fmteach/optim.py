"""Optimizer pieces shared by every training loop of the course (``train``, ``finetune_loop``, ``fit``).

:func:`decay_parameter_groups` — AdamW's decoupled weight decay on weight matrices and embeddings
(tensors of 2 or more dimensions) only, never on biases or LayerNorm gains and shifts (1-D). This is
the rule of nanoGPT and, for every BERT, what Hugging Face's ``Trainer`` does by name (it excludes
``bias`` and ``LayerNorm.weight``): in these models the two rules pick the same tensors.

:func:`linear_warmup_decay` — the learning rate of ``finetune_loop`` and ``fit``: a linear rise, then
a linear fall to 0 (``train`` decays along a cosine, :class:`fmteach.train_config.TrainConfig`).
"""

from __future__ import annotations

import torch

from ._checks import is_number

__all__ = ["decay_parameter_groups", "linear_warmup_decay"]


def decay_parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: ``weight_decay`` on trainable tensors with ``ndim >= 2``, 0 on the
    rest; frozen parameters (``requires_grad=False``) are left out. Order follows ``model.parameters()``."""

    if not is_number(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (every requires_grad is False)")
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": float(weight_decay)},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int,
                        total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` whose factor rises linearly over the first ``warmup_steps`` steps (step ``s``
    gets ``(s + 1) / warmup_steps``, the full rate at step ``warmup_steps - 1``) and then falls
    linearly to 0 at step ``total_steps``; ``warmup_steps=0``: no warm-up.

    Not transformers' ``get_linear_schedule_with_warmup``, whose step 0 has a learning rate of 0
    and so changes no weight: here the first step already moves them."""

    def factor(s: int) -> float:
        if s < warmup_steps:
            return (s + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - s) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
