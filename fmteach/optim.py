"""Optimizer pieces shared by every training loop of the course (``train``, ``finetune_loop``, ``fit``).

:func:`decay_parameter_groups` — AdamW's decoupled weight decay on weight matrices and embeddings
(tensors of 2 or more dimensions) only, never on biases or LayerNorm gains and shifts (1-D). This is
the rule of nanoGPT and, for every BERT, what Hugging Face's ``Trainer`` does by name (it excludes
``bias`` and ``LayerNorm.weight``): in these models the two rules pick the same tensors.
"""

from __future__ import annotations

import torch

__all__ = ["decay_parameter_groups"]


def decay_parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW parameter groups: ``weight_decay`` on trainable tensors with ``ndim >= 2``, 0 on the
    rest; frozen parameters (``requires_grad=False``) are left out. Order follows ``model.parameters()``."""

    if not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (every requires_grad is False)")
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": float(weight_decay)},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
