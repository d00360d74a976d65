"""One training loop for every lesson that trains (MiniGPT here, mini-BERT's MLM later).

The loop knows nothing about the model: it asks ``get_batch(split, batch_size, generator)`` for a
batch and ``loss_fn(model, batch)`` for a scalar loss (default: the model returns it). It adds
AdamW, warmup + cosine learning rate, gradient clipping and accumulation, 16-bit autocast on CUDA
(bf16 where the GPU has it, else fp16 with a gradient scaler),
optional ``torch.compile``, periodic evaluation, atomic checkpoints with exact resume, and
DistributedDataParallel when launched with ``torchrun`` (gloo on CPU, nccl on GPU).

:class:`~fmteach.train_config.TrainConfig` and :class:`~fmteach.train_config.TrainResult` live in
:mod:`fmteach.train_config`, the process group and RNG capture in :mod:`fmteach.distributed`.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ._checks import is_number
from ._io import atomic_torch_save, atomic_write, flush_denormal, torch_load
from .distributed import _rng_state, _set_rng_state
from .optim import decay_parameter_groups
from .profile import autocast_dtype
from .progress import progress_enabled
from .seeding import preserved_rng
from .train_config import TrainConfig, TrainResult

__all__ = ["train", "model_loss", "CHECKPOINT_NAME", "HISTORY_NAME", "read_history", "write_history"]

CHECKPOINT_NAME = "ckpt.pt"
HISTORY_NAME = "history.json"


def write_history(path: str | os.PathLike, summary: dict, history: list[dict],
                  step_losses: list[float] | None = None) -> Path:
    """Write a run's ``history.json`` atomically, in the one format of every training CLI:
    ``{"summary": {...}, "history": [one dict per evaluation], "step_losses": [one loss per step]}``."""
    import json

    text = json.dumps({"summary": summary, "history": history, "step_losses": list(step_losses or [])}, indent=1)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_history(path: str | os.PathLike) -> dict:
    """A run's ``history.json`` as ``{"summary", "history", "step_losses"}`` (see :func:`write_history`).

    Also reads the flat file that ``train_lm`` wrote before there was one format (the summary's
    fields at the top level beside ``history`` and ``step_losses``), so older runs still export."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "summary" not in data:
        data = {"summary": {k: v for k, v in data.items() if k not in ("history", "step_losses")},
                "history": data.get("history", []), "step_losses": data.get("step_losses", [])}
    data.setdefault("step_losses", [])
    return data


def model_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """The default loss_fn: the ``.loss`` of ``model(*batch)`` (or ``model(**batch)``), ours or Hugging Face's."""
    out = model(**batch) if isinstance(batch, dict) else model(*batch)
    loss = getattr(out, "loss", None)
    if loss is None:
        raise ValueError("the model returned no loss: put the targets in the batch or pass train() a loss_fn")
    return loss


def _slice(batch, start: int, stop: int):
    """Rows ``start:stop`` of every tensor of a batch (tuple, list or dict)."""
    if isinstance(batch, dict):
        return {k: v[start:stop] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return type(batch)(t[start:stop] if isinstance(t, torch.Tensor) else t for t in batch)


def _batch_rows(batch) -> int:
    values = batch.values() if isinstance(batch, dict) else batch
    return next(t.shape[0] for t in values if isinstance(t, torch.Tensor))


def _make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    groups = decay_parameter_groups(model, config.weight_decay)
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel for all parameters
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas, **fused)


def train(
    model: torch.nn.Module,
    get_batch: Callable[[str, int, torch.Generator], Any],
    config: TrainConfig,
    *,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor] = model_loss,
    eval_fn: Callable[[torch.nn.Module], dict] | None = None,
    on_eval: Callable[[dict, list[dict]], None] | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    stop_at_step: int | None = None,
    max_seconds: float | None = None,
    checkpoint_extra: dict | None = None,
    progress: bool | None = None,
    verbose: bool = False,
) -> TrainResult:
    """Train ``model`` in place for ``config.max_steps`` optimizer steps; returns the history and every step's loss.

    ``get_batch(split, batch_size, generator)`` returns a batch (tuple or dict of tensors, first dim
    = batch_size) for ``split`` in {"train", "val"}, on the model's device. ``eval_fn(model)`` may add
    metrics to each evaluation; ``on_eval(entry, history)`` is called after each (rank 0 only).
    With ``out_dir``, checkpoints go to ``out_dir/ckpt.pt``; ``resume=True`` continues from it (or
    starts afresh if there is none). ``stop_at_step`` stops early without changing the learning-rate
    schedule (resume later). ``max_seconds`` is a wall-clock budget: once it is spent (checked every
    ``log_interval`` steps) training stops, evaluates, checkpoints and sets ``result.out_of_time``.

    Dropout masks are drawn from ``config.seed`` (plus the rank); the caller's random state (torch,
    Python, NumPy) is given back unchanged when training ends, and flush-denormal (on the CPU) is on
    for the loop only.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not callable(get_batch) or not callable(loss_fn):
        raise TypeError("get_batch and loss_fn must be callables")
    for name, value in (("stop_at_step", stop_at_step), ("max_seconds", max_seconds)):
        if value is not None and (not is_number(value) or value < 0):
            raise ValueError(f"{name} must be None or >= 0, got {value!r}")
    run = _Run(model, get_batch, config, loss_fn=loss_fn, eval_fn=eval_fn, on_eval=on_eval, out_dir=out_dir,
               checkpoint_extra=checkpoint_extra)
    with preserved_rng(), flush_denormal(run.device.type == "cpu"):
        # Adam's running averages of rarely-updated weights decay into subnormal floats, which x86
        # CPUs process up to 30x slower; flushing them to zero changes no result we can measure.
        run.start(resume)
        run.loop(stop_at_step, max_seconds, progress=progress, verbose=verbose)
    return run.result


class _Run:
    """One call of :func:`train`, in named steps: ``start`` (fresh or resumed), ``loop`` (``step``,
    ``evaluate``, ``save``). Local to this module: use :func:`train`."""

    def __init__(self, model, get_batch, config: TrainConfig, *, loss_fn, eval_fn, on_eval, out_dir, checkpoint_extra):
        self.model, self.get_batch, self.config = model, get_batch, config
        self.loss_fn, self.eval_fn, self.on_eval, self.checkpoint_extra = loss_fn, eval_fn, on_eval, checkpoint_extra
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.device = next(model.parameters()).device
        if config.batch_size % (self.world * config.grad_accum_steps):
            raise ValueError(f"batch_size={config.batch_size} does not divide into {self.world} processes "
                             f"x {config.grad_accum_steps} micro-steps")
        self.per_rank = config.batch_size // self.world
        self.micro = self.per_rank // config.grad_accum_steps
        self.optimizer = _make_optimizer(model, config, self.device)
        # The lambda (a function) is not saved in the scheduler's state dict; only its step count is.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: config.lr_at(step) / config.learning_rate)
        self.data_generator = torch.Generator().manual_seed(config.seed)  # the same on every rank: each takes its slice
        self.result = TrainResult()
        self.ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
        amp_dtype = autocast_dtype(self.device) if config.autocast else None
        self.amp = torch.autocast(self.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        # fp16 gradients underflow: scale the loss up before backward, unscale before clipping; a step whose
        # gradients overflowed is skipped and the scale lowered. Disabled (a no-op) for bf16 and float32.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp_dtype == torch.float16)
        self.pending: list[torch.Tensor] = []  # step losses still on the device: copying each would sync the GPU

    def start(self, resume: bool) -> None:
        """Load the checkpoint when resuming from one, else seed the dropout RNG; wrap for DDP/compile."""
        ckpt = self.ckpt_path
        if resume and ckpt is not None and ckpt.exists():
            state = torch_load(ckpt, expected="a checkpoint written by fmteach.train.train",
                               required_keys=("model", "optimizer", "scheduler", "scaler", "step", "history",
                                              "step_losses", "rng"))
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            r = self.result
            r.history, r.step_losses, r.step = state["history"], state["step_losses"], state["step"]
            _set_rng_state(state["rng"][self.rank if self.rank < len(state["rng"]) else 0], self.data_generator)
        else:
            torch.manual_seed(self.config.seed + self.rank)  # dropout masks: reproducible, different on each rank
        # model: the module itself (weights, eval, checkpoint); ddp: what holds no_sync() for gradient
        # accumulation; net: what the training forward runs through (DDP and/or torch.compile around model)
        self.ddp = self.net = self.model
        if self.world > 1:
            self.ddp = self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.config.compile:
            self.net = torch.compile(self.net)

    def _all_mean(self, values: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(values)
            values = values / self.world
        return values

    @torch.no_grad()
    def evaluate(self, step: int) -> dict:
        """Mean loss on the same ``eval_iters`` batches of each split at every evaluation."""
        config, model = self.config, self.model
        eval_rows = config.eval_batch_size or config.batch_size
        model.eval()
        entry = {"step": step, "lr": self.scheduler.get_last_lr()[0]}
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(config.seed + 1)  # the same batches at every evaluation
            losses = []
            for _ in range(config.eval_iters):
                batch = self.get_batch(split, eval_rows, generator)
                share = _batch_rows(batch) // self.world
                with self.amp:
                    losses.append(self.loss_fn(model, _slice(batch, self.rank * share, (self.rank + 1) * share)).float())
            entry[f"{split}_loss"] = self._all_mean(torch.stack(losses).mean()).item()
        if self.eval_fn is not None:
            entry.update(self.eval_fn(model))
        model.train()
        self.result.history.append(entry)
        if self.rank == 0 and self.on_eval is not None:
            self.on_eval(entry, self.result.history)
        return entry

    def save(self) -> None:
        """Rank 0 writes model, optimizer, scheduler, scaler, history and every rank's RNG, atomically."""
        states = [_rng_state(self.data_generator)] * self.world
        if self.world > 1:
            dist.all_gather_object(states, states[0])  # every rank's dropout RNG, for exact resume
        if self.rank == 0:
            model, r = self.model, self.result
            atomic_torch_save({
                "model": model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "step": r.step, "history": r.history, "step_losses": r.step_losses, "rng": states,
                "train_config": asdict(self.config),
                "model_config": asdict(model.config) if is_dataclass(getattr(model, "config", None)) else None,
                "extra": self.checkpoint_extra or {},
            }, self.ckpt_path)

    def flush(self) -> None:
        """Copy the pending step losses to the host (one sync), failing on the first non-finite one."""
        if not self.pending:
            return
        values = self._all_mean(torch.stack(self.pending)).tolist()
        self.pending.clear()
        for i, value in enumerate(values, start=len(self.result.step_losses)):
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {i}: lower learning_rate, "
                                         f"check grad_clip, or look for bad values in the batch")
        self.result.step_losses.extend(values)

    def step(self) -> None:
        """One optimizer step over the global batch: this rank's share, in ``grad_accum_steps`` micro-batches."""
        config = self.config
        batch = self.get_batch("train", config.batch_size, self.data_generator)
        if _batch_rows(batch) != config.batch_size:
            raise ValueError(f"get_batch returned {_batch_rows(batch)} rows, expected batch_size={config.batch_size}")
        mine = _slice(batch, self.rank * self.per_rank, (self.rank + 1) * self.per_rank)
        step_loss = torch.zeros((), device=self.device)
        for i in range(config.grad_accum_steps):
            last = i == config.grad_accum_steps - 1
            with nullcontext() if last or self.world == 1 else self.ddp.no_sync():  # all-reduce once per step
                with self.amp:
                    loss = self.loss_fn(self.net, _slice(mine, i * self.micro, (i + 1) * self.micro))
                self.scaler.scale(loss / config.grad_accum_steps).backward()  # mean over micro-batches
            step_loss += loss.detach().float() / config.grad_accum_steps
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pending.append(step_loss)
        self.result.step += 1

    def _budget_spent(self, started: float, max_seconds: float | None, end: int) -> bool:
        """Whether the wall-clock budget is spent, checked every ``log_interval`` steps before ``end``;
        every process gets the same answer, so all stop at the same step."""
        if max_seconds is None or self.result.step % self.config.log_interval or self.result.step >= end:
            return False
        spent = torch.tensor(float(time.perf_counter() - started >= max_seconds), device=self.device)
        if self.world > 1:
            dist.all_reduce(spent, op=dist.ReduceOp.MAX)
        return bool(spent.item())

    def _after_step(self, last: bool, bar, verbose: bool) -> None:
        """Log, evaluate and checkpoint when an interval falls on this step, and at the ``last`` one."""
        config, step = self.config, self.result.step
        evaluate = step % config.eval_interval == 0 or step == config.max_steps or self.result.out_of_time
        save = self.ckpt_path is not None and (last or bool(config.checkpoint_interval)
                                               and step % config.checkpoint_interval == 0)
        if last or evaluate or save or step % config.log_interval == 0:
            self.flush()
            bar.set_postfix(loss=f"{self.result.step_losses[-1]:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}",
                            refresh=False)
        if evaluate:
            entry = self.evaluate(step)
            if verbose and self.rank == 0:
                bar.write(f"step {step:>6}: train loss {entry['train_loss']:.4f}, val loss {entry['val_loss']:.4f}")
        if save:
            self.save()

    def loop(self, stop_at_step: int | None, max_seconds: float | None, *, progress, verbose: bool) -> None:
        """Step until ``end`` (``stop_at_step`` or ``max_steps``) or until ``max_seconds`` is spent,
        evaluating, logging and checkpointing on their intervals and once more at the last step."""
        config, r = self.config, self.result
        end = config.max_steps if stop_at_step is None else min(stop_at_step, config.max_steps)
        bar = tqdm(total=end, initial=r.step, disable=not progress_enabled(progress) or self.rank != 0, desc="train",
                   dynamic_ncols=True)
        started = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if r.step == 0:
            self.evaluate(0)  # the untrained model's loss: about ln(vocab_size) for a fresh language model
        while r.step < end:
            self.step()
            bar.update(1)
            r.out_of_time = self._budget_spent(started, max_seconds, end)
            last = r.step == end or r.out_of_time
            self._after_step(last, bar, verbose)
            if r.out_of_time:
                break
        bar.close()
        r.seconds = time.perf_counter() - started
