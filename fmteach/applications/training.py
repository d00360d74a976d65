"""The one training loop every task of lessons 10-11 shares: only the loss changes.

``fit(model, batches, loss_fn, steps=...)`` runs AdamW with linear warmup and decay and gradient
clipping; ``loss_fn(model, batch) -> scalar`` is where a task says what it optimises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from .._checks import check_positive
from ..optim import decay_parameter_groups, linear_warmup_decay
from ..seeding import DEFAULT_SEED, seeded

__all__ = ["batches", "fit"]


def batches(tensors: dict[str, torch.Tensor], batch_size: int, *, seed: int = DEFAULT_SEED) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled full mini-batches from a dict of tensors that share their first dimension.

    Each epoch is a fresh permutation drawn from a generator seeded with ``seed``: the same seed
    gives the same batches on every machine."""
    check_positive(batch_size=batch_size)
    sizes = {name: len(t) for name, t in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"tensors must share their first dimension, got sizes {sizes}")
    n = next(iter(sizes.values()))
    if n < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} examples")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):  # full batches only
            index = order[start:start + batch_size]
            yield {name: t[index] for name, t in tensors.items()}


def fit(model: torch.nn.Module, batch_iter: Iterator[dict], loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor], *,
        steps: int, lr: float = 1e-3, weight_decay: float = 0.01, warmup: float = 0.1, max_grad_norm: float = 1.0,
        seed: int = DEFAULT_SEED, device: torch.device | str = "cpu") -> list[float]:
    """Train ``model`` for ``steps`` steps; return the loss of every step.

    AdamW over the parameters that require grad (frozen ones stay put), the learning rate rising
    linearly over the first ``warmup`` fraction of steps and then falling linearly to zero; weight
    decay on matrices only (:func:`fmteach.optim.decay_parameter_groups`). Dropout masks come from
    ``seed``; the caller's RNG is left as it was."""
    check_positive(steps=steps)
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {warmup}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(decay_parameter_groups(model, weight_decay), lr=lr)
    scheduler = linear_warmup_decay(optimizer, max(1, round(warmup * steps)), steps)
    model.to(device).train()
    losses = []
    with seeded(seed):  # dropout masks
        for _ in range(steps):
            batch = {k: v.to(device) for k, v in next(batch_iter).items()}
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
    model.eval()
    return losses
