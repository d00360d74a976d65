"""Lesson 04, training a small transformer: the learning-rate schedule (04.1), the probabilities that
sampling draws from (04.2), and the prediction 04.p1 (what greedy decoding writes)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _forbidden, _NotAttempted

__all__ = ["check_lr_schedule", "check_sampling_probabilities"]

_SCHEDULER_CALLS = tuple(f"torch.optim.lr_scheduler.{name}" for name in
                         ("LambdaLR", "LinearLR", "CosineAnnealingLR", "SequentialLR", "OneCycleLR"))


def check_lr_schedule(fn: Callable) -> None:
    """Exercise 04.1: ``fn(config, step) -> float``, the learning rate of optimizer step ``step`` (0-based)
    for a :class:`~fmteach.train_config.TrainConfig`: linear warm-up that reaches ``learning_rate`` at
    step ``warmup_steps - 1``, then half a cosine down to ``min_lr`` at ``max_steps``, and ``min_lr``
    after it; without ``TrainConfig.lr_at`` or a PyTorch scheduler."""
    from ..train_config import TrainConfig  # here: lesson 01 imports the exercises without the training code

    hint = ("two phases. Warm-up: check steps 0 and warmup_steps - 1 against the formula in the exercise, "
            "and a run with no warm-up at all. Decay: how far through the decay is a step, as a fraction, "
            "and what happens after max_steps? Which function of that fraction gives learning_rate at the "
            "start, min_lr at the end and half a cosine in between? Section 3's plot shows the curve to match")
    with _exercise("warm-up + cosine learning rate", hint):
        configs = (TrainConfig.smoke(), TrainConfig.cpu(),
                   TrainConfig(max_steps=10, warmup_steps=3, learning_rate=1.0, min_lr=0.1),
                   TrainConfig(max_steps=7, warmup_steps=0, learning_rate=0.5, min_lr=0.5 / 8))  # no warm-up
        for config in configs:
            steps = sorted({*range(0, config.max_steps + 4, max(1, config.max_steps // 40)), config.warmup_steps - 1,
                            config.warmup_steps, config.max_steps - 1, config.max_steps, config.max_steps + 3} - {-1})
            expected = [config.lr_at(step) for step in steps]
            with _forbidden((TrainConfig, "lr_at", "TrainConfig.lr_at"), *_SCHEDULER_CALLS):
                got = [_call(fn, config, step) for step in steps]
            for step, g, e in zip(steps, got, expected):
                if g is ...:
                    raise _NotAttempted
                phase = ("warm-up" if step < config.warmup_steps else "decay" if step <= config.max_steps
                         else "after max_steps")
                if not math.isclose(float(g), e, rel_tol=1e-9, abs_tol=1e-15):
                    raise AssertionError(f"warmup_steps={config.warmup_steps}, max_steps={config.max_steps}, "
                                         f"learning_rate={config.learning_rate}, min_lr={config.min_lr}: at step "
                                         f"{step} ({phase}) got {float(g):.6g}, expected {e:.6g}")


def check_sampling_probabilities(fn: Callable) -> None:
    """Exercise 04.2: ``fn(logits (B, V), temperature > 0, top_k or None) -> (B, V)``, the probabilities
    ``MiniGPT.generate`` samples from; a ``top_k`` of V or more keeps every token; ``logits`` unchanged."""
    hint = ("in section 5's formula, does the temperature act on the logits or on the probabilities? For "
            "top-k: which tokens keep a chance, and what must the others' logits become for the softmax to "
            "give them exactly 0 (lesson 02, section 1)? Try k = 1, and a k larger than the vocabulary")
    with _exercise("temperature and top-k", hint):
        logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0], [0.0, 3.0, -2.0, 1.0, 1.5]])
        wide = torch.randn(3, 11, generator=torch.Generator().manual_seed(12))  # B=3, V=11
        cases = [(logits, t, k) for t, k in ((1.0, None), (0.5, None), (2.0, None), (1.0, 2), (0.7, 3), (1.0, 1))]
        cases += [(wide, 1.3, 4), (wide, 0.8, 11), (wide, 1.0, 20)]
        for x, temperature, top_k in cases:
            scaled = x / temperature
            if top_k is not None:
                kth = torch.topk(scaled, min(top_k, x.shape[-1])).values[:, [-1]]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            given = x.clone()
            try:
                out = _call(fn, given, temperature, top_k)
            except (RuntimeError, IndexError) as error:
                if top_k is None or top_k <= x.shape[-1]:
                    raise
                raise AssertionError(f"top_k={top_k} with a vocabulary of {x.shape[-1]}: your function raised "
                                     f"{type(error).__name__} ({error}); a top_k of V or more keeps every "
                                     f"token") from None
            if out is ...:
                raise _NotAttempted
            if not torch.equal(given, x):
                raise AssertionError("your function changed the logits it was given (work on a copy)")
            _close(torch.as_tensor(out), torch.softmax(scaled, -1),
                   f"probabilities for B={x.shape[0]}, V={x.shape[1]}, temperature={temperature}, top_k={top_k}")


_add_prediction(
    "04.p1",
    "Greedy decoding (temperature 0: always the single most likely next character) from the course model, "
    "1,000 characters after 'ROMEO:'. What does it write?",
    {"a": "its best text: real words in varied lines, better than any sampled text, all the way through",
     "b": "a loop: after a while the same lines come back, over and over",
     "c": "nothing readable: the most likely next character is nearly always a space"},
    "b",
    "each step takes the top character given the last 128. As soon as the text comes back to a context it has "
    "already been in, it makes the same choices again, and nothing random can lead it out. Sampling with a "
    "temperature above 0 breaks the loop, at the price of some invented words.",
)
_add_solution("04.1", '''def my_lr_at(config, step):
    if step < config.warmup_steps:                                # warm-up: 1/w, 2/w, ..., w/w of the peak
        return config.learning_rate * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.max_steps - config.warmup_steps)
    done = min(1.0, (step - config.warmup_steps) / decay_steps)  # share of the decay done: 0 -> 1, then stays
    cosine = 0.5 * (1 + math.cos(math.pi * done))                 # 1 -> 0
    return config.min_lr + (config.learning_rate - config.min_lr) * cosine
''')
_add_solution("04.2", '''def sampling_probabilities(logits, temperature, top_k):
    logits = logits / temperature                                 # a new tensor: the caller's stays as it was
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]  # (B, 1)
        logits = logits.masked_fill(logits < kth_best, float("-inf"))               # exp(-inf) = 0
    return torch.softmax(logits, dim=-1)
''')
