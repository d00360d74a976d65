"""Lesson 01, scaled dot-product attention: attention with a mask for queries and keys of different
lengths (01.1), attention that survives a query with nothing to attend to (01.2), and the prediction
01.p1 (which gradients vanish when softmax saturates)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import scaled_dot_product_attention
from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _forbidden, _fused_attention_calls

__all__ = ["check_attention", "check_fully_masked_attention"]


def check_attention(attention: Callable) -> None:
    """Exercise 01.1: ``attention(q (..., L, d_k), k (..., S, d_k), v (..., S, d_v), mask)`` -> output
    (..., L, d_v), with a bool mask (True = may attend), without a ready-made attention function."""
    hint = ("scores compare every query with every key; print the weight your function gives a blocked key: "
            "what must that weight be, and what would the score have to be for the softmax to give it?")
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


def _blocked_rows(mask: torch.Tensor) -> torch.Tensor:
    """(..., L): True where a query may attend to no key (bool: all False; float: all -inf)."""
    if mask.dtype == torch.bool:
        return ~mask.any(-1)
    return (mask == float("-inf")).all(-1)


def _masked_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(what, q, k, v, mask): bool and float masks, some rows fully blocked, L != S, batch and head dims."""
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(2, 3, 4, 8, generator=gen, dtype=torch.float64)       # B = 2, H = 3, L = 4, d_k = 8
    k = torch.randn(2, 3, 6, 8, generator=gen, dtype=torch.float64)       # S = 6
    v = torch.randn(2, 3, 6, 5, generator=gen, dtype=torch.float64)       # d_v = 5
    allowed = torch.rand(2, 1, 4, 6, generator=gen) < 0.5
    allowed[..., 1] = True                                                # every row sees a key ...
    allowed[0, :, 3] = False                                              # ... except these three
    allowed[1, :, 0] = False
    allowed[1, :, 2] = False
    bias = torch.randn(2, 1, 4, 6, generator=gen, dtype=torch.float64)
    blocked = torch.tensor(float("-inf"), dtype=torch.float64)
    additive = torch.where(allowed, bias, blocked)                        # -inf blocks, the rest biases
    q_big = torch.randn(2, 2, 3, 8, generator=gen) * 200                  # float32 scores in the hundreds
    k_big, v_big = torch.randn(2, 2, 7, 8, generator=gen), torch.randn(2, 2, 7, 3, generator=gen)
    square = torch.rand(3, 7, generator=gen) < 0.5                         # one (L, S) mask for every batch and head
    square[:, 4] = True
    square[1] = False
    q1, k1, v1 = (torch.randn(3, 1, n, 4, generator=gen, dtype=torch.float64) for n in (1, 5, 5))
    padded = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 0]]).bool()[:, None, None, :]
    return [("a bool (B, 1, L, S) mask, B=2, H=3, L=4, S=6", q, k, v, allowed),
            ("a float (B, 1, L, S) mask (0 or a bias = may attend, -inf = blocked)", q, k, v, additive),
            ("an (L, S) bool mask, L=3, S=7, float32 scores in the hundreds", q_big, k_big, v_big, square),
            ("a (B, 1, 1, S) mask whose second sentence is all padding, L=1, S=5", q1, k1, v1, padded)]


def check_fully_masked_attention(attention: Callable) -> None:
    """Exercise 01.2: ``attention(q, k, v, mask)`` -> (..., L, d_v) as in 01.1, but a query whose every key
    is blocked gets a zero output instead of NaN; bool or float (additive) masks; without a ready-made
    attention function or fmteach's softmax (which already handles such rows)."""
    hint = ("run your Exercise 1 on a query whose every key is blocked and print that row's scores, weights "
            "and output: which step of the softmax written out in section 2 produces what you see? Then ask "
            "how your function can tell such a row from the others, with a bool mask and with a float one, "
            "and check that every other row still matches Exercise 1")
    forbidden = (*_fused_attention_calls(), "fmteach.stable_softmax", "fmteach.attention.stable_softmax",
                 "fmteach.attention.attend")
    with _exercise("attention with fully masked rows", hint):
        for what, q, k, v, mask in _masked_cases():
            expected = scaled_dot_product_attention(q, k, v, mask)[0]
            blocked = _blocked_rows(mask).expand(expected.shape[:-1])
            inputs = [t.clone() for t in (q, k, v, mask)]
            with _forbidden(*forbidden):
                out = _call(attention, *inputs)
            out = out[0] if isinstance(out, tuple) else out
            if any(not torch.equal(a, b) for a, b in zip(inputs, (q, k, v, mask), strict=True)):
                raise AssertionError(f"with {what}: your function changed q, k, v or the mask it was given")
            if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
                _close(out, expected, f"output with {what}")
            out = out.to(expected.dtype)
            rows_nan = out.isnan().any(-1)
            if (rows_nan & blocked).any():
                raise AssertionError(f"with {what}: the output of a query that may attend to no key is nan")
            if (rows_nan & ~blocked).any():
                raise AssertionError(f"with {what}: a query that may attend to some keys got nan (did exp() overflow?)")
            if not torch.all(out[blocked] == 0):
                uniform = v.to(expected.dtype).mean(-2, keepdim=True).expand_as(expected)[blocked]
                same = out[blocked].shape == uniform.shape and torch.allclose(out[blocked], uniform, atol=1e-4)
                raise AssertionError(f"with {what}: a query that may attend to no key should output 0"
                                     + (", yours outputs the plain average of all values: its blocked keys "
                                        "got equal weights" if same else ""))
            _close(out, expected, f"output with {what} (the rows that may attend to some key)",
                   atol=1e-6 if expected.dtype == torch.float64 else 1e-4)


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
_add_solution("01.1", '''def my_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))     # exp(-inf) = 0: no weight
    return torch.softmax(scores, -1) @ v                       # (..., L, d_v)
''')
_add_solution("01.2", '''def my_masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, S)
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    else:
        scores = scores + mask                                 # additive: -inf blocks
    nothing_to_see = torch.isneginf(scores).all(-1, keepdim=True)         # (..., L, 1): every key blocked
    scores = scores.masked_fill(nothing_to_see, 0.0)           # any finite row: no nan in the softmax ...
    weights = torch.softmax(scores, -1).masked_fill(nothing_to_see, 0.0)  # ... and then no weight at all
    return weights @ v                                         # a row of zero weights outputs 0
''')
