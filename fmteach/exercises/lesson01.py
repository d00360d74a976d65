"""Lesson 01, scaled dot-product attention: a stable softmax (01.1), attention with a mask (01.2),
and the prediction 01.p1 (which gradients vanish when softmax saturates)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..attention import scaled_dot_product_attention
from ._checking import (_add_prediction, _add_solution, _call, _close, _exercise, _forbidden,
                        _fused_attention_calls, _NotAttempted)

__all__ = ["check_stable_softmax", "check_attention", "check_dot_product_variance"]

_SOFTMAX_CALLS = ("torch.softmax", "torch.Tensor.softmax", "torch.nn.functional.softmax", "torch.special.softmax",
                  "torch.log_softmax", "torch.Tensor.log_softmax", "torch.nn.functional.log_softmax")


def check_stable_softmax(softmax: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 01.1: a softmax over the last dim that survives huge scores, without torch's softmax."""
    with _exercise("stable softmax", "what does softmax give if you subtract the same number from every score of a row? "
                                     "Which number keeps every exp() at most 1?"):
        x = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(0))
        big = torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
        expected_x, expected_big = torch.softmax(x, -1), torch.softmax(big, -1)
        with _forbidden(*_SOFTMAX_CALLS):
            out_x, out_big = _call(softmax, x.clone()), _call(softmax, big.clone())
        _close(out_x, expected_x, "softmax of small scores, shape (2, 4, 7)")
        if not isinstance(out_big, torch.Tensor) or not torch.isfinite(out_big).all():
            raise AssertionError(f"softmax of [1000, 1001, 1002] gave {getattr(out_big, 'tolist', lambda: out_big)()}: "
                                 f"exp(1000) overflowed")
        _close(out_big, expected_big, "softmax of huge scores")


def check_attention(attention: Callable) -> None:
    """Exercise 01.2: ``attention(q (..., L, d_k), k (..., S, d_k), v (..., S, d_v), mask)`` -> output
    (..., L, d_v), with a bool mask (True = may attend), without a ready-made attention function."""
    hint = ("scores compare every query with every key; a blocked score must end up with weight 0 "
            "after the softmax (which value has exp() = 0?)")
    with _exercise("attention with a mask", hint):
        gen = torch.Generator().manual_seed(1)
        q = torch.randn(2, 3, 4, 8, generator=gen, dtype=torch.float64)   # L = 4 queries, d_k = 8
        k = torch.randn(2, 3, 6, 8, generator=gen, dtype=torch.float64)   # S = 6 keys
        v = torch.randn(2, 3, 6, 5, generator=gen, dtype=torch.float64)   # d_v = 5
        mask = torch.rand(2, 1, 4, 6, generator=gen) < 0.6
        mask[..., 0] = True                                               # every query sees some key
        cases = (("without a mask", None), ("with a (B, 1, L, S) mask", mask), ("with an (L, S) mask", mask[0, 0]))
        for what, m in cases:
            expected = scaled_dot_product_attention(q, k, v, m)[0]
            with _forbidden(*_fused_attention_calls()):
                out = _call(attention, q, k, v, m)
            out = out[0] if isinstance(out, tuple) else out
            _close(out, expected, f"output {what} (L=4 queries, S=6 keys, d_k=8, d_v=5)")


def check_dot_product_variance(d_k: int, unscaled, scaled) -> None:
    """Exercise (kept for older notebooks): variance of q·k for N(0, 1) entries, before and after /sqrt(d_k)."""
    hint = "q·k is a sum of d_k products, each with mean 0 and variance 1; dividing by c divides the variance by c²"
    with _exercise(f"variance of q·k with d_k={d_k}", hint):
        if unscaled is ... or scaled is ...:
            raise _NotAttempted
        if not math.isclose(float(unscaled), d_k, rel_tol=1e-6):
            raise AssertionError(f"unscaled variance {unscaled} is wrong")
        if not math.isclose(float(scaled), 1.0, rel_tol=1e-6):
            raise AssertionError(f"scaled variance {scaled} is wrong")


_add_prediction(
    "01.p1",
    "The scores are so large that every row of the softmax is one-hot. Which gradients vanish?",
    {"a": "all of them: q, k and v get no gradient, the layer stops learning",
     "b": "those through the scores (to q and k); v still gets its full gradient",
     "c": "only the gradient to v"},
    "b",
    "the output is weights @ v: with one-hot weights it copies one value row, and that row's gradient is "
    "the output's gradient. Only the path through softmax, whose Jacobian diag(a) - aaᵀ is 0 at a one-hot a, dies.",
)
_add_solution("01.1", '''def my_softmax(scores):
    shifted = scores - scores.amax(-1, keepdim=True)  # the largest score becomes 0: exp() <= 1
    return shifted.exp() / shifted.exp().sum(-1, keepdim=True)
''')
_add_solution("01.2", '''def my_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))     # exp(-inf) = 0: no weight
    return torch.softmax(scores, -1) @ v                       # (..., L, d_v)
''')
