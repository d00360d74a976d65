"""The same job as ``Trainer.train()``, as a plain PyTorch loop written in named steps.

:func:`finetune_loop` = a seeded shuffle (:func:`_shuffled_loader`), AdamW with decoupled weight
decay and a linear warmup-then-decay schedule (:func:`_optimization`), one epoch of steps with
gradient clipping and 16-bit on a GPU (:func:`_train_epoch`), an evaluation per epoch and the best
epoch's weights kept (:class:`_BestEpoch`). Dropout masks are drawn inside ``seeded(recipe.seed)``:
the result does not depend on what ran before, and the caller's random generator is left alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_positive
from ..optim import decay_parameter_groups, linear_warmup_decay
from ..profile import autocast_dtype, get_device
from ..progress import progress_bar
from ..seeding import seeded
from .data import EncodedSplit
from .evaluate import evaluate_model
from .inputs import model_inputs, num_labels_of
from .metrics import check_label_range
from .recipe import FinetuneRecipe

__all__ = ["LoopResult", "finetune_loop"]


@dataclass
class LoopResult:
    """One row per epoch in ``history``; ``best_epoch`` is the one whose weights the model holds."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


@dataclass
class _Optimization:
    """What one optimizer step needs: AdamW, its schedule, the precision and its gradient scaler."""

    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    autocast: torch.autocast
    scaler: torch.amp.GradScaler
    max_grad_norm: float


def _check_inputs(model, train, validation, recipe, early_stopping_patience, max_steps) -> None:
    """Every argument checked before the first step, each error naming its argument."""
    if not isinstance(recipe, FinetuneRecipe):
        raise TypeError(f"recipe must be a FinetuneRecipe, got {type(recipe).__name__}")
    check_positive(early_stopping_patience=early_stopping_patience, max_steps=max_steps, allow_none=True)
    if early_stopping_patience is not None and validation is None:
        raise ValueError("early_stopping_patience needs a validation split to watch, got validation=None")
    num_labels = num_labels_of(model)
    for name, split in (("train", train), ("validation", validation)):
        if split is None and name == "validation":
            continue
        if len(split) == 0:
            raise ValueError(f"{name} is empty: no examples to {'train on' if name == 'train' else 'evaluate'}")
        if isinstance(split, EncodedSplit):
            check_label_range(split.labels, num_labels, f"{name}.labels")


def _shuffled_loader(train, recipe: FinetuneRecipe, collator) -> torch.utils.data.DataLoader:
    """Batches of ``recipe.batch_size`` in an order drawn from a generator seeded with ``recipe.seed``."""
    generator = torch.Generator().manual_seed(recipe.seed)
    return torch.utils.data.DataLoader(train, batch_size=recipe.batch_size, shuffle=True, generator=generator,
                                       collate_fn=collator)


def _optimization(model, recipe: FinetuneRecipe, total: int, device: torch.device) -> _Optimization:
    """AdamW (weight decay on weight matrices only), linear warmup then linear decay to 0 over
    ``total`` steps; bf16 autocast on a GPU that has it, fp16 with a gradient scaler on one that has not."""
    optimizer = torch.optim.AdamW(decay_parameter_groups(model, recipe.weight_decay), lr=recipe.learning_rate)
    amp_dtype = autocast_dtype(device)
    return _Optimization(
        optimizer=optimizer,
        schedule=linear_warmup_decay(optimizer, int(recipe.warmup * total), total),
        autocast=torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),  # fp16 gradients underflow
        max_grad_norm=recipe.max_grad_norm,
    )


def _step(model, batch, opt: _Optimization, device) -> float:
    """One optimizer step on one batch; returns the batch's loss."""
    labels = batch["labels"].to(device)
    with opt.autocast:
        loss = F.cross_entropy(model(**model_inputs(batch, device)).logits.float(), labels)
    opt.scaler.scale(loss).backward()
    opt.scaler.unscale_(opt.optimizer)  # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(model.parameters(), opt.max_grad_norm)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.schedule.step()
    opt.optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _train_epoch(model, loader, opt: _Optimization, device, max_steps: int, bar) -> list[float]:
    """At most ``max_steps`` steps through the loader (one epoch); the losses of the steps taken."""
    model.train()
    losses = []
    for batch in loader:
        losses.append(_step(model, batch, opt, device))
        bar.update(1)
        if len(losses) >= max_steps:
            break
    return losses


class _BestEpoch:
    """Keeps the weights of the epoch with the best validation accuracy, and says when to stop early."""

    def __init__(self, patience: int | None):
        self.patience, self.best, self.state, self.bad_epochs, self.epoch = patience, -1.0, None, 0, 0

    def update(self, model, epoch: int, accuracy: float) -> bool:
        """Record one epoch; True when ``patience`` epochs in a row have not improved on the best."""
        if accuracy > self.best:
            self.best, self.bad_epochs, self.epoch = accuracy, 0, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return False
        self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience


def _epoch_row(model, train, validation, recipe, collator, device, track_train_accuracy: bool, start: float,
               row: dict) -> dict:
    """The history row of one epoch: ``row`` (epoch, step, train_loss), the evaluations asked for,
    and ``seconds`` since ``start`` (placed before the ``eval_*`` keys, as printed in lesson 07)."""
    evaluate = dict(batch_size=recipe.eval_batch_size, device=device)
    if track_train_accuracy:
        row["train_accuracy"] = evaluate_model(model, train, collator, **evaluate)["accuracy"]
    row["seconds"] = time.perf_counter() - start
    if validation is not None:
        metrics = evaluate_model(model, validation, collator, **evaluate)
        row.update({f"eval_{k}": v for k, v in metrics.items() if k != "probabilities"})
        row["seconds"] = time.perf_counter() - start
    return row


def finetune_loop(model, train: EncodedSplit, validation: EncodedSplit | None, recipe: FinetuneRecipe, *, collator,
                  device: torch.device | None = None, track_train_accuracy: bool = False,
                  early_stopping_patience: int | None = None, max_steps: int | None = None,
                  progress: bool | None = None) -> LoopResult:
    """What ``Trainer.train()`` does for us, written out: shuffle with a seeded generator, pad each
    batch, AdamW with decoupled weight decay, linear warmup and decay, gradient clipping, 16-bit on
    a GPU (bf16, or fp16 with a gradient scaler), evaluate every epoch, keep the best epoch's
    weights (and, with ``early_stopping_patience``, stop once validation accuracy has not improved
    for that many epochs). ``validation=None`` trains without evaluating and keeps the last weights
    (few-shot: no examples to spare). Dropout masks come from ``recipe.seed`` (inside
    ``seeded``): the same recipe gives the same run whatever ran before, and the caller's random
    generator is left as it was. Works for Hugging Face models and our own
    ``MiniBertForSequenceClassification``.
    """
    _check_inputs(model, train, validation, recipe, early_stopping_patience, max_steps)
    device = device or get_device()
    model.to(device)
    loader = _shuffled_loader(train, recipe, collator)
    total = max_steps or math.ceil(recipe.epochs * len(loader))
    opt, best = _optimization(model, recipe, total, device), _BestEpoch(early_stopping_patience)
    result, start, step = LoopResult(), time.perf_counter(), 0
    bar = progress_bar(total=total, desc="fine-tuning", enabled=progress)
    with seeded(recipe.seed):  # dropout: the same masks for the same recipe, the caller's RNG untouched
        while step < total:
            losses = _train_epoch(model, loader, opt, device, total - step, bar)
            step += len(losses)
            row = {"epoch": len(result.history) + 1, "step": step, "train_loss": float(np.mean(losses))}
            row = _epoch_row(model, train, validation, recipe, collator, device, track_train_accuracy, start, row)
            result.history.append(row)
            if validation is None:
                result.best_epoch = row["epoch"]
                continue
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['eval_accuracy']:.3f}")
            if best.update(model, row["epoch"], row["eval_accuracy"]):
                result.stopped_early = True
                break
    bar.close()
    if best.state is not None:
        model.load_state_dict(best.state)
        result.best_epoch = best.epoch
    result.steps, result.seconds = step, time.perf_counter() - start
    return result
