"""What sizes a training run (:class:`TrainConfig`, with the three profile presets) and what it returns
(:class:`TrainResult`). Kept apart from :mod:`fmteach.train` so that a recipe can be built, printed
and compared without the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ._checks import check_positive
from .profile import by_profile
from .seeding import DEFAULT_SEED

__all__ = ["TrainConfig", "TrainResult"]


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
    seed: int = DEFAULT_SEED
    compile: bool = False
    autocast: bool = True  # 16-bit autocast on CUDA (bf16, or fp16 + loss scaling on a T4); ignored on the CPU

    def __post_init__(self):
        check_positive(max_steps=self.max_steps, batch_size=self.batch_size, grad_accum_steps=self.grad_accum_steps,
                       eval_interval=self.eval_interval, eval_iters=self.eval_iters, log_interval=self.log_interval)
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
    def course(cls, **overrides) -> TrainConfig:
        """The shipped course MiniGPT's recipe (with ``GPTConfig.course``): 6,000 steps of 32 x 128
        characters, 0.7-1 s a step on 2 CPU cores; a checkpoint every 500 steps, so it can span a pause."""
        base = cls(max_steps=6000, batch_size=32, learning_rate=1.5e-3, min_lr=1.5e-4, warmup_steps=100,
                   eval_interval=250, eval_iters=10, eval_batch_size=128, checkpoint_interval=500)
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
