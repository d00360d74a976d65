"""Lesson 02, masking: the causal mask over a cache (02.1), the padding mask of cross-attention (02.2),
and the prediction 02.p1 (a language model trained without the causal mask)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _exercise, _forbidden

__all__ = ["check_causal_mask", "check_cross_attention_mask"]

_TRIANGLE_CALLS = (*(f"torch.{name}" for name in ("tril", "triu", "tril_indices", "triu_indices")),
                   *(f"torch.Tensor.{name}" for name in ("tril", "triu", "tril_", "triu_")),
                   "fmteach.causal_mask", "fmteach.masks.causal_mask")


def check_causal_mask(make_causal_mask: Callable[[int, int], torch.Tensor]) -> None:
    """Exercise 02.1: ``make_causal_mask(L, S)`` -> (L, S) bool, without torch.tril/triu. The L queries
    are the *last* L of S positions (generation with a cache); query i may see key j when
    j <= i + (S - L). With L == S it is the lower triangle."""
    hint = ("start with L = 2, S = 5 on paper: at which of the S positions does each query sit, and which "
            "keys may it see? Write the rule that decides cell (i, j), then ask how to apply it to every cell "
            "at once. With L = S your table must be the lower triangle")
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


def check_cross_attention_mask(make_cross_attention_mask: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 02.2: ``make_cross_attention_mask(decoder_mask (B, L), encoder_mask (B, S))`` of 0/1 ->
    (B, 1, L, S) bool, True = may attend: a real decoder query may attend to the real encoder keys of its
    own sentence; a padded decoder position may attend to nothing (its row is all False)."""
    hint = ("draw one sentence's L x S table on paper, the decoder's mask down the side and the encoder's "
            "along the top: which cells may be True? Then look again at how section 1's make_padding_mask "
            "turned (B, S) into (B, 1, 1, S): what does each of your two masks need so that together they "
            "fill the (B, 1, L, S) table?")
    with _exercise("cross-attention padding mask", hint):
        cases = ((torch.tensor([[1, 1, 1], [1, 1, 0]]), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])),
                 (torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]), torch.tensor([[1, 1], [1, 0], [1, 1]])),
                 (torch.tensor([[1], [0]]), torch.tensor([[0, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])))  # left padding too
        for decoder_mask, encoder_mask in cases:
            (B, L), S = decoder_mask.shape, encoder_mask.shape[1]
            expected = (decoder_mask.bool()[:, :, None] & encoder_mask.bool()[:, None, :])[:, None]
            what = f"B={B}, L={L} decoder positions, S={S} encoder positions"
            inputs = (decoder_mask.clone(), encoder_mask.clone())
            m = _call(make_cross_attention_mask, *inputs)
            if not torch.equal(inputs[0], decoder_mask) or not torch.equal(inputs[1], encoder_mask):
                raise AssertionError(f"{what}: your function changed the attention masks it was given")
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
                raise AssertionError(f"{what}: expected a bool tensor, got {getattr(m, 'dtype', type(m).__name__)}")
            if m.shape != expected.shape:
                raise AssertionError(f"{what}: the mask has shape {tuple(m.shape)}, expected (B, 1, L, S) = "
                                     f"{tuple(expected.shape)}")
            real_query, real_key = decoder_mask.bool()[:, None, :, None], encoder_mask.bool()[:, None, None, :]
            if (m & ~real_query).any():
                raise AssertionError(f"{what}: a padded decoder position may still attend to some key")
            if (m & ~real_key).any():
                raise AssertionError(f"{what}: a real decoder query may attend to a padded encoder key")
            if not torch.equal(m, expected):
                raise AssertionError(f"{what}: a real decoder query is blocked from a real encoder key")


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
_add_solution("02.2", '''def my_cross_attention_mask(decoder_mask, encoder_mask):
    real_query = decoder_mask.bool()[:, :, None]   # (B, L, 1)
    real_key = encoder_mask.bool()[:, None, :]     # (B, 1, S)
    return (real_query & real_key)[:, None]        # (B, 1, L, S): both must be real tokens
''')
