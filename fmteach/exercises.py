"""Checkers for the notebooks' exercises.

Each ``check_*`` prints ``✅ correct`` or raises an ``AssertionError`` with a hint. An exercise not
attempted yet (its function still raises ``NotImplementedError``, or its answer is ``...``) only
prints a reminder, so a notebook always runs from top to bottom.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch

from .attention import scaled_dot_product_attention
from .masks import causal_mask, padding_mask

__all__ = [
    "check_stable_softmax",
    "check_attention",
    "check_dot_product_variance",
    "check_causal_mask",
    "check_padding_mask",
    "check_mlm_expected_counts",
]


class _NotAttempted(Exception):
    pass


@contextlib.contextmanager
def _exercise(title: str, hint: str):
    try:
        yield
    except (NotImplementedError, _NotAttempted):
        print(f"⏳ {title}: not attempted yet. Hint: {hint}")
    except AssertionError as exc:
        raise AssertionError(f"{title}: {exc}\nHint: {hint}") from None
    else:
        print(f"✅ {title}: correct")


def _call(fn: Callable, *args):
    if not callable(fn):
        raise AssertionError(f"expected a function, got {type(fn).__name__}")
    return fn(*args)


def _close(actual, expected, what: str, atol: float = 1e-6) -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, got {type(actual).__name__}")
    if actual.shape != expected.shape:
        raise AssertionError(f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(actual.to(expected.dtype), expected, atol=atol, rtol=1e-5, equal_nan=False):
        diff = (actual.to(expected.dtype) - expected).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(f"{what} differs from the reference by up to {diff:.3g}")


def check_stable_softmax(softmax: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise: a softmax over the last dim that survives huge scores (no inf, no NaN)."""
    with _exercise("stable softmax", "subtract the row maximum before exp(): softmax(x) = softmax(x - max(x))"):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(4, 7, generator=gen)
        _close(_call(softmax, x), torch.softmax(x, -1), "softmax of small scores")
        big = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
        out = _call(softmax, big)
        if not torch.isfinite(out).all():
            raise AssertionError(f"softmax of [1000, 1001, 1002] gave {out[0].tolist()}: exp(1000) overflowed")
        _close(out, torch.softmax(big, -1), "softmax of huge scores")


def check_attention(attention: Callable) -> None:
    """Exercise: ``attention(q, k, v, mask)`` -> output, with a bool mask (True = may attend)."""
    hint = "scores = q @ k.transpose(-2, -1) / sqrt(d_k); masked_fill(~mask, -inf); softmax; @ v"
    with _exercise("attention with a mask", hint):
        gen = torch.Generator().manual_seed(1)
        q, k, v = (torch.randn(2, 5, 8, generator=gen, dtype=torch.float64) for _ in range(3))
        out = _call(attention, q, k, v, None)
        out = out[0] if isinstance(out, tuple) else out
        _close(out, scaled_dot_product_attention(q, k, v)[0], "output without a mask")
        mask = causal_mask(5)
        out = _call(attention, q, k, v, mask)
        out = out[0] if isinstance(out, tuple) else out
        _close(out, scaled_dot_product_attention(q, k, v, mask)[0], "output with a causal mask")


def check_dot_product_variance(d_k: int, unscaled, scaled) -> None:
    """Exercise: variance of q·k for N(0, 1) entries, before and after dividing by sqrt(d_k)."""
    hint = "q·k is a sum of d_k products, each with mean 0 and variance 1; dividing by c divides the variance by c²"
    with _exercise(f"variance of q·k with d_k={d_k}", hint):
        if unscaled is ... or scaled is ...:
            raise _NotAttempted
        if not math.isclose(float(unscaled), d_k, rel_tol=1e-6):
            raise AssertionError(f"unscaled variance {unscaled} is wrong")
        if not math.isclose(float(scaled), 1.0, rel_tol=1e-6):
            raise AssertionError(f"scaled variance {scaled} is wrong")


def check_causal_mask(make_causal_mask: Callable[[int], torch.Tensor]) -> None:
    """Exercise: ``make_causal_mask(T)`` -> (T, T) bool, True where query i may see key j (j ≤ i)."""
    with _exercise("causal mask", "token i may look at tokens 0..i: that is the lower triangle, torch.tril"):
        for t in (1, 4, 9):
            m = _call(make_causal_mask, t)
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise AssertionError(f"make_causal_mask({t}) should be a bool tensor, got {getattr(m, 'dtype', type(m))}")
            if not torch.equal(m, causal_mask(t)):
                raise AssertionError(f"make_causal_mask({t}) is not the lower-triangular mask")


def check_padding_mask(make_padding_mask: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise: (B, S) 0/1 attention_mask -> bool mask broadcastable to (B, H, T, S)."""
    with _exercise("padding mask", "index with [:, None, None, :] so it broadcasts over heads and queries"):
        am = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
        m = _call(make_padding_mask, am)
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise AssertionError(f"expected a bool tensor, got {getattr(m, 'dtype', type(m))}")
        try:
            grown = torch.broadcast_shapes(m.shape, (2, 3, 4, 4))
        except RuntimeError:
            grown = None
        if grown != (2, 3, 4, 4):
            raise AssertionError(f"shape {tuple(m.shape)} does not broadcast to scores (B=2, H=3, T=4, S=4)")
        if not torch.equal(m.expand(2, 3, 4, 4), padding_mask(am).expand(2, 3, 4, 4)):
            raise AssertionError("some query may attend a padding key, or may not attend a real one")


def check_mlm_expected_counts(n_tokens: int, answer: dict) -> None:
    """Exercise: of ``n_tokens`` maskable tokens, how many (in expectation) become [MASK], a random
    token, or stay unchanged-but-predicted? ``answer = {"mask": ..., "random": ..., "unchanged": ...}``."""
    hint = "15% are selected; of those 80% -> [MASK], 10% -> random, 10% -> unchanged"
    with _exercise(f"BERT masking counts for {n_tokens} tokens", hint):
        if answer is ... or any(v is ... for v in dict(answer).values()):
            raise _NotAttempted
        expected = {"mask": 0.15 * 0.8 * n_tokens, "random": 0.15 * 0.1 * n_tokens,
                    "unchanged": 0.15 * 0.1 * n_tokens}
        if set(answer) != set(expected):
            raise AssertionError(f"answer needs exactly the keys {sorted(expected)}, got {sorted(answer)}")
        for key, value in expected.items():
            if not math.isclose(float(answer[key]), value, rel_tol=1e-6):
                raise AssertionError(f"{key!r}: {answer[key]} is not the expected count")
