"""One training loop for every lesson that trains (MiniGPT here, mini-BERT's MLM later).

The loop knows nothing about the model: it asks ``get_batch(split, batch_size, generator)`` for a
batch and ``loss_fn(model, batch)`` for a scalar loss (default: the model returns it). It adds
AdamW, warmup + cosine learning rate, gradient clipping and accumulation, 16-bit autocast on CUDA
(bf16 where the GPU has it, else fp16 with a gradient scaler),
optional ``torch.compile``, periodic evaluation, atomic checkpoints with exact resume, and
DistributedDataParallel when launched with ``torchrun`` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .optim import decay_parameter_groups
from .profile import autocast_dtype, by_profile
from .progress import progress_enabled

__all__ = ["TrainConfig", "TrainResult", "train", "model_loss", "setup_distributed", "cleanup_distributed",
           "CHECKPOINT_NAME", "append_jsonl"]

CHECKPOINT_NAME = "ckpt.pt"


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``batch_size`` counts sequences per optimizer step, all processes and micro-steps together."""

    max_steps: int = 2000
    batch_size: int = 12
    grad_accum_steps: int = 1  # micro-batches per optimizer step: same result, less memory
    learning_rate: float = 1e-3
    min_lr: float = 1e-4  # the cosine decays to this at max_steps
    warmup_steps: int = 100
    weight_decay: float = 0.1  # only on matrices (>= 2-D), never on biases and LayerNorm gains
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    eval_interval: int = 250
    eval_iters: int = 20
    eval_batch_size: int | None = None  # None: batch_size
    log_interval: int = 10  # steps between copies of the loss to the host (a GPU sync)
    checkpoint_interval: int = 0  # 0: a checkpoint only at the end of train()
    seed: int = 1337
    compile: bool = False
    autocast: bool = True  # 16-bit autocast on CUDA (bf16, or fp16 + loss scaling on a T4); ignored on the CPU

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "grad_accum_steps", "eval_interval", "eval_iters", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(
                f"batch_size={self.batch_size} is not divisible by grad_accum_steps={self.grad_accum_steps}"
            )
        if not 0 < self.min_lr <= self.learning_rate:
            raise ValueError(f"need 0 < min_lr ({self.min_lr}) <= learning_rate ({self.learning_rate})")

    # Presets of the character-level GPT lesson; other lessons override: TrainConfig.cpu(max_steps=500).
    @classmethod
    def smoke(cls, **overrides) -> TrainConfig:
        base = cls(max_steps=300, batch_size=32, learning_rate=3e-3, min_lr=3e-4, warmup_steps=20,
                   eval_interval=100, eval_iters=4, eval_batch_size=64)
        return replace(base, **overrides)

    @classmethod
    def cpu(cls, **overrides) -> TrainConfig:
        base = cls(max_steps=2000, batch_size=12, learning_rate=2e-3, min_lr=2e-4, warmup_steps=100,
                   eval_interval=250, eval_iters=5, eval_batch_size=128)
        return replace(base, **overrides)

    @classmethod
    def gpu(cls, **overrides) -> TrainConfig:
        base = cls(max_steps=5000, batch_size=64, learning_rate=1e-3, min_lr=1e-4, warmup_steps=100,
                   eval_interval=250, eval_iters=20, eval_batch_size=256, log_interval=50)
        return replace(base, **overrides)

    @classmethod
    def from_profile(cls, profile: str | None = None, **overrides) -> TrainConfig:
        return by_profile(smoke=cls.smoke, cpu=cls.cpu, gpu=cls.gpu, profile=profile)(**overrides)

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): linear warmup, then cosine to ``min_lr``."""
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.learning_rate - self.min_lr) * (1.0 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    """``history``: one dict per evaluation (step, lr, train_loss, val_loss, ...); ``step_losses[i]``: step i's loss."""

    history: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    step: int = 0
    seconds: float = 0.0
    out_of_time: bool = False  # stopped by train(max_seconds=...) before config.max_steps


def append_jsonl(path: str | os.PathLike | None, record: dict) -> None:
    """Append ``record`` as one JSON line to ``path`` (nothing when ``path`` is None); the file is
    closed after every line, so a run killed mid-way keeps every record written before."""
    if path is None:
        return
    import json

    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


def model_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """The default loss_fn: ``model(*batch)`` (or ``model(**batch)``) returns the loss, a ``(logits, loss)``
    tuple, or an object with ``.loss`` (Hugging Face style)."""
    out = model(**batch) if isinstance(batch, dict) else model(*batch)
    if isinstance(out, torch.Tensor):
        return out
    loss = out[1] if isinstance(out, (tuple, list)) else getattr(out, "loss", None)
    if loss is None:
        raise ValueError("the model returned no loss: put the targets in the batch or pass train() a loss_fn")
    return loss


def setup_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; joins the process group when started by ``torchrun`` with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), dist.get_world_size(), device) if dist.is_initialized() else (0, 1, device)


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


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


def _rng_state(data_generator: torch.Generator) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],  # lists: loadable with weights_only
        "data": data_generator.get_state(),
    }


def _set_rng_state(state: dict, data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    data_generator.set_state(state["data"])


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
    On the CPU this turns on ``torch.set_flush_denormal`` for the process.
    """
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    device = next(model.parameters()).device
    per_rank = config.batch_size // world
    if config.batch_size % (world * config.grad_accum_steps):
        raise ValueError(f"batch_size={config.batch_size} does not divide into {world} processes "
                         f"x {config.grad_accum_steps} micro-steps")
    micro = per_rank // config.grad_accum_steps
    optimizer = _make_optimizer(model, config, device)
    # The lambda (a function) is not saved in the scheduler's state dict; only its step count is.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: config.lr_at(step) / config.learning_rate)
    data_generator = torch.Generator().manual_seed(config.seed)  # the same on every rank: each takes its slice
    result = TrainResult()
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    state: dict = {}  # the checkpoint's, when resuming
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        result.history, result.step_losses, result.step = state["history"], state["step_losses"], state["step"]
        _set_rng_state(state["rng"][rank if rank < len(state["rng"]) else 0], data_generator)
    else:
        torch.manual_seed(config.seed + rank)  # dropout masks: reproducible, and different on each rank
    net = model
    if world > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    ddp = net
    if config.compile:
        net = torch.compile(net)
    if device.type == "cpu":
        # Adam's running averages of rarely-updated weights decay into subnormal floats, which x86
        # CPUs process up to 30x slower; flushing them to zero changes no result we can measure.
        torch.set_flush_denormal(True)
    amp_dtype = autocast_dtype(device) if config.autocast else None
    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    # fp16 gradients underflow: scale the loss up before backward, unscale before clipping; a step whose
    # gradients overflowed is skipped and the scale lowered. Disabled (a no-op) for bf16 and float32.
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    eval_rows = config.eval_batch_size or config.batch_size

    def all_mean(values: torch.Tensor) -> torch.Tensor:
        if world > 1:
            dist.all_reduce(values)
            values = values / world
        return values

    @torch.no_grad()
    def evaluate(step: int) -> dict:
        model.eval()
        entry = {"step": step, "lr": scheduler.get_last_lr()[0]}
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(config.seed + 1)  # the same batches at every evaluation
            losses = []
            for _ in range(config.eval_iters):
                batch = get_batch(split, eval_rows, generator)
                share = _batch_rows(batch) // world
                with amp:
                    losses.append(loss_fn(model, _slice(batch, rank * share, (rank + 1) * share)).float())
            entry[f"{split}_loss"] = all_mean(torch.stack(losses).mean()).item()
        if eval_fn is not None:
            entry.update(eval_fn(model))
        model.train()
        result.history.append(entry)
        if rank == 0 and on_eval is not None:
            on_eval(entry, result.history)
        return entry

    def save() -> None:
        states = [_rng_state(data_generator)] * world
        if world > 1:
            dist.all_gather_object(states, states[0])  # every rank's dropout RNG, for exact resume
        if rank == 0:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
            torch.save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "step": result.step, "history": result.history, "step_losses": result.step_losses, "rng": states,
                "train_config": asdict(config),
                "model_config": asdict(model.config) if is_dataclass(getattr(model, "config", None)) else None,
                "extra": checkpoint_extra or {},
            }, tmp)
            os.replace(tmp, ckpt_path)  # atomic: a crash mid-write never leaves a half-written checkpoint

    pending: list[torch.Tensor] = []  # step losses still on the device: copying each one would sync the GPU

    def flush() -> None:
        if not pending:
            return
        values = all_mean(torch.stack(pending)).tolist()
        pending.clear()
        for i, value in enumerate(values, start=len(result.step_losses)):
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {i}: lower learning_rate, "
                                         f"check grad_clip, or look for bad values in the batch")
        result.step_losses.extend(values)

    end = config.max_steps if stop_at_step is None else min(stop_at_step, config.max_steps)
    bar = tqdm(total=end, initial=result.step, disable=not progress_enabled(progress) or rank != 0, desc="train",
                dynamic_ncols=True)
    started = time.perf_counter()
    model.train()
    optimizer.zero_grad(set_to_none=True)
    if result.step == 0:
        evaluate(0)  # the untrained model's loss: about ln(vocab_size) for a fresh language model
    while result.step < end:
        batch = get_batch("train", config.batch_size, data_generator)
        if _batch_rows(batch) != config.batch_size:
            raise ValueError(f"get_batch returned {_batch_rows(batch)} rows, expected batch_size={config.batch_size}")
        mine = _slice(batch, rank * per_rank, (rank + 1) * per_rank)  # this process's share of the global batch
        step_loss = torch.zeros((), device=device)
        for i in range(config.grad_accum_steps):
            last = i == config.grad_accum_steps - 1
            with nullcontext() if last or world == 1 else ddp.no_sync():  # all-reduce gradients once per step
                with amp:
                    loss = loss_fn(net, _slice(mine, i * micro, (i + 1) * micro))
                scaler.scale(loss / config.grad_accum_steps).backward()  # mean over micro-batches, like one big batch
            step_loss += loss.detach().float() / config.grad_accum_steps
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        pending.append(step_loss)
        result.step += 1
        bar.update(1)
        if max_seconds is not None and result.step % config.log_interval == 0 and result.step < end:
            spent = torch.tensor(float(time.perf_counter() - started >= max_seconds), device=device)
            if world > 1:  # every process must stop at the same step
                dist.all_reduce(spent, op=dist.ReduceOp.MAX)
            if spent.item():
                end, result.out_of_time = result.step, True
        is_eval = (result.step % config.eval_interval == 0 or result.step == config.max_steps
                   or (result.out_of_time and result.step == end))
        is_ckpt = ckpt_path is not None and (
            result.step == end or (config.checkpoint_interval and result.step % config.checkpoint_interval == 0)
        )
        if result.step % config.log_interval == 0 or result.step == end or is_eval or is_ckpt:
            flush()
            bar.set_postfix(loss=f"{result.step_losses[-1]:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
        if is_eval:
            entry = evaluate(result.step)
            if verbose and rank == 0:
                bar.write(f"step {entry['step']:>6}: train loss {entry['train_loss']:.4f}, "
                          f"val loss {entry['val_loss']:.4f}")
        if is_ckpt:
            save()
    bar.close()
    result.seconds = time.perf_counter() - started
    return result
