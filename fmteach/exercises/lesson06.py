"""Lesson 06, BERT inside out: the parameters of one encoder layer, the attention at an offset in a padded batch,
and the prediction 06.p1 (which frozen vector a linear probe reads sentiment from better)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _NotAttempted

__all__ = ["check_encoder_layer_parameters", "check_attention_at_offset"]


def check_encoder_layer_parameters(hidden_size: int, intermediate_size: int, answer) -> None:
    """Exercise: the number of parameters of one BERT encoder layer."""
    with _exercise("parameters of one encoder layer",
                   "list every linear map of the layer in section 3, with the number of features that go in "
                   "and come out, and every LayerNorm: how many numbers does each one store (weights and "
                   "biases; scale and shift)? Section 3's parameter table is a rough check"):
        if answer is ...:
            raise _NotAttempted
        H, I = hidden_size, intermediate_size
        expected = 4 * (H * H + H) + 2 * (2 * H) + (H * I + I) + (I * H + H)
        if int(answer) != expected:
            raise AssertionError(f"{answer:,} is off by {int(answer) - expected:+,}")


def _pairs(mask: torch.Tensor, offset: int, keep) -> list[tuple[int, int, int]]:
    """(sentence, query i, key i + offset) for every pair inside the sequence that ``keep(b, i, j)`` accepts."""
    B, T = mask.shape
    return [(b, i, i + offset) for b in range(B) for i in range(T) if 0 <= i + offset < T and keep(b, i, i + offset)]


def _mean_over(weights: torch.Tensor, pairs, divide_by: int | None = None) -> torch.Tensor:
    picked = torch.stack([weights[b, :, i, j] for b, i, j in pairs])           # (pairs, heads)
    return picked.sum(0) / (len(pairs) if divide_by is None else divide_by)


def _same(got: torch.Tensor, other: torch.Tensor) -> bool:
    return got.shape == other.shape and torch.allclose(got.to(other.dtype), other, atol=1e-6, rtol=1e-5)


def _wrong_ways(weights: torch.Tensor, mask: torch.Tensor, offset: int) -> list[tuple[str, torch.Tensor]]:
    """What a function that misreads the spec returns, and what to tell its author."""
    real = mask.bool()
    both = _pairs(mask, offset, lambda b, i, j: bool(real[b, i] and real[b, j]))
    ways = [
        ("the average over every pair of positions, padding included: which pairs does the padding rule out?",
         _mean_over(weights, _pairs(mask, offset, lambda b, i, j: True))),
        ("the total over the qualifying pairs divided by the number of real tokens, as section 5 divides: the "
         "mean is over pairs, and a sentence has fewer pairs than tokens",
         _mean_over(weights, both, divide_by=int(real.sum()))),
        ("an average that counts pairs whose token i + offset is padding", _mean_over(weights, _pairs(
            mask, offset, lambda b, i, j: bool(real[b, i])))),
        ("an average that counts pairs whose token i is padding", _mean_over(weights, _pairs(
            mask, offset, lambda b, i, j: bool(real[b, j])))),
    ]
    per_sentence = [_mean_over(weights, [p for p in both if p[0] == b]) for b in range(len(mask))
                    if any(p[0] == b for p in both)]
    ways.append(("the average of each sentence's own average: every pair of the batch counts once, so a sentence "
                 "with more pairs weighs more", torch.stack(per_sentence).mean(0)))
    lengths = real.sum(1)
    right = (torch.arange(mask.shape[1])[None, :] < lengths[:, None]).long()
    if not torch.equal(right, mask.long()):
        ways.append(("the answer for the same sentences padded on the right: read which tokens are real from "
                     "the mask, not from the sentence lengths", _expected(weights, right, offset)))
    return ways


def _expected(weights: torch.Tensor, mask: torch.Tensor, offset: int) -> torch.Tensor:
    real = mask.bool()
    return _mean_over(weights, _pairs(mask, offset, lambda b, i, j: bool(real[b, i] and real[b, j])))


def check_attention_at_offset(fn: Callable) -> None:
    """Exercise: ``fn(weights (B, heads, T, T), attention_mask (B, T), offset) -> (heads,)``: per head, the mean
    weight from token i to token i + offset over every pair of the batch whose two tokens are real; a
    ``ValueError`` when no pair qualifies."""
    hint = ("for offset +1 and for -1, which entries of one sentence's (T, T) matrix hold a weight from token i to "
            "token i + offset, and how many are there? Which of them does the padding of a shorter sentence rule "
            "out, and how many pairs are left in the whole batch? Section 5 measured one such pattern. Try your "
            "function on a batch you write out by hand: two sentences, one head, T = 3, the second padded after "
            "two tokens")
    with _exercise("attention at an offset", hint):
        B, heads, T = 3, 4, 7
        weights = torch.softmax(torch.randn(B, heads, T, T, generator=torch.Generator().manual_seed(3)), -1)
        full = torch.ones(B, T, dtype=torch.long)
        right = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
        left = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1] * 7, [0, 0, 0, 0, 1, 1, 1]])
        batches = (("with no padding", full), ("padded on the right (7, 4 and 2 real tokens)", right),
                   ("padded on the left (5, 7 and 3 real tokens)", left))
        for where, mask in batches:
            for offset in (1, -1, 2):
                what = f"{where}, for offset {offset:+d} the per-head averages"
                got = _call(fn, weights.clone(), mask.clone(), offset)
                if isinstance(got, torch.Tensor) and tuple(got.shape) == (B, heads):
                    raise AssertionError(f"{what} have shape {(B, heads)}: one number per sentence and head. "
                                         f"Return one per head, shape ({heads},), over every pair of the batch")
                expected = _expected(weights, mask, offset)
                if isinstance(got, torch.Tensor) and got.shape == expected.shape and not _same(got, expected):
                    others = [f"the answer for offset {o:+d}" for o in (1, -1, 2, 0, -2) if o != offset
                              and _same(got, _expected(weights, mask, o))]
                    why = [say for say, value in _wrong_ways(weights, mask, offset)
                           if not _same(value, expected) and _same(got, value)]
                    if others or why:
                        raise AssertionError(f"{what} differ from the reference; your function's result matches "
                                             + ("; and ".join(why) if why else others[0]))
                _close(got, expected, what)
        for where, mask, offset in (("with no padding", full, T), ("with no padding", full, -(T + 2)),
                                    ("with 4, 2 and 3 real tokens (T = 7, padded on the right)",
                                     torch.tensor([[1] * 4 + [0] * 3, [1] * 2 + [0] * 5, [1] * 3 + [0] * 4]), -4)):
            what = f"{where}, offset {offset:+d} pairs no two real tokens"
            try:
                got = _call(fn, weights.clone(), mask, offset)
            except ValueError:
                continue
            except NotImplementedError:
                raise
            except Exception as exc:  # the learner's own error, reported as one
                raise AssertionError(f"{what}: your function raised {type(exc).__name__} ({exc}), "
                                     f"expected a ValueError that says no pair qualifies") from None
            shown = "NaN" if isinstance(got, torch.Tensor) and got.isnan().all() else repr(got)
            raise AssertionError(f"{what}: your function returned {shown}; a mean over no pairs has no value, "
                                 f"so raise a ValueError that says so")


_add_solution("06.1", '''H, I = cfg.hidden_size, cfg.intermediate_size
exercises.check_encoder_layer_parameters(H, I, answer=4 * (H * H + H) + 2 * (2 * H) + (H * I + I) + (I * H + H))
''')
_add_solution("06.2", '''def attention_at_offset(weights, attention_mask, offset):
    T, k = attention_mask.shape[-1], abs(offset)
    real = attention_mask.bool()                                       # (B, T)
    to = torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1)      # (B, heads, T - k): from i to i + offset
    # entry j of that diagonal joins tokens j and j + k (which one is the query depends on the sign of offset)
    both_real = (real[:, :max(T - k, 0)] & real[:, k:])[:, None, :]    # (B, 1, T - k)
    pairs = int(both_real.sum())
    if pairs == 0:
        raise ValueError(f"no pair of real tokens lies {offset:+d} apart")
    return (to * both_real).sum(dim=(0, 2)) / pairs                    # (heads,)
''')


_add_prediction(
    "06.p1",
    "A logistic regression is trained on frozen MiniLM vectors of a few hundred labelled movie reviews and scored "
    "on reviews it has not seen: once on the final [CLS] vectors (70 % of whose squared length all reviews share), "
    "once on the mean-pooled token vectors. Which reads the sentiment better?",
    {"a": "the [CLS] vector: it is the vector BERT's classifier reads",
     "b": "the mean-pooled vector",
     "c": "neither: within a few reviews of each other"},
    "b",
    "MiniLM's last training step made the mean of its token vectors a sentence embedding (contrastive training on "
    "sentence pairs); nothing trained its [CLS] vector to summarise a sentence. A shared component alone would not "
    "decide it, since the probe standardises each feature; what the vectors hold does.",
)
