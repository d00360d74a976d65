"""Lesson 02, masking: the causal mask over a cache (02.1), the padding mask (02.2), BERT's masking
counts, and the prediction 02.p1 (a language model trained without the causal mask)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..masks import padding_mask
from ._checking import _add_prediction, _add_solution, _call, _exercise, _forbidden, _NotAttempted

__all__ = ["check_causal_mask", "check_padding_mask", "check_mlm_expected_counts"]

_TRIANGLE_CALLS = (*(f"torch.{name}" for name in ("tril", "triu", "tril_indices", "triu_indices")),
                   *(f"torch.Tensor.{name}" for name in ("tril", "triu", "tril_", "triu_")),
                   "fmteach.causal_mask", "fmteach.masks.causal_mask")


def check_causal_mask(make_causal_mask: Callable[[int, int], torch.Tensor]) -> None:
    """Exercise 02.1: ``make_causal_mask(L, S)`` -> (L, S) bool, without torch.tril/triu. The L queries
    are the *last* L of S positions (generation with a cache); query i may see key j when
    j <= i + (S - L). With L == S it is the lower triangle."""
    hint = ("start with L = 2, S = 5 on paper: at which of the S positions does each query sit, and which "
            "keys may it see? Then look for a single comparison that produces the whole (L, S) table at once")
    with _exercise("causal mask for L queries over S keys", hint):
        for L, S in ((1, 1), (4, 4), (9, 9), (3, 7), (1, 5)):
            expected = torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None]
            with _forbidden(*_TRIANGLE_CALLS):
                m = _call(make_causal_mask, L, S)
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise AssertionError(f"make_causal_mask({L}, {S}) should be a bool tensor, got {getattr(m, 'dtype', type(m))}")
            if m.shape != expected.shape:
                raise AssertionError(f"make_causal_mask({L}, {S}) has shape {tuple(m.shape)}, expected ({L}, {S})")
            if not torch.equal(m, expected):
                raise AssertionError(f"make_causal_mask({L}, {S}) lets some query see a later key, or hides an earlier one")


def check_padding_mask(make_padding_mask: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 02.2: (B, S) 0/1 attention_mask -> bool mask broadcastable to (B, H, L, S), L != S allowed."""
    with _exercise("padding mask", "the mask must have a size-1 axis for heads and for queries, and keep B and S where they are"):
        am = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])  # B = 2, S = 5
        scores_shape = (2, 3, 4, 5)                            # H = 3 heads, L = 4 queries
        m = _call(make_padding_mask, am.clone())
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise AssertionError(f"expected a bool tensor, got {getattr(m, 'dtype', type(m))}")
        try:
            grown = torch.broadcast_shapes(m.shape, scores_shape)
        except RuntimeError:
            grown = None
        if grown != scores_shape:
            raise AssertionError(f"shape {tuple(m.shape)} does not broadcast to scores (B=2, H=3, L=4, S=5)")
        if not torch.equal(m.expand(scores_shape), padding_mask(am).expand(scores_shape)):
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


_add_prediction(
    "02.p1",
    "A small character model is trained twice on Shakespeare, with and without the causal mask. "
    "Without it, after the same number of steps, the training loss is …",
    {"a": "about the same as with the mask", "b": "far lower, heading for 0",
     "c": "higher: the extra context confuses the model"},
    "b",
    "without the mask position t can attend to position t+1, which holds the very character it must "
    "predict: the model learns to copy it. The loss collapses, and the model is useless for generation, "
    "where position t+1 does not exist yet.",
)
_add_solution("02.1", '''def my_causal_mask(L, S):
    query_positions = torch.arange(S - L, S)  # the L queries are the last L positions
    key_positions = torch.arange(S)
    return key_positions[None, :] <= query_positions[:, None]  # (L, S): key j visible to query i
''')
_add_solution("02.2", '''def my_padding_mask(attention_mask):
    return attention_mask.bool()[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
''')
