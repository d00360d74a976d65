"""Checkers for the exercises of lessons 10-11 (one architecture, many tasks).

As in :mod:`fmteach.exercises`: each ``check_*`` prints ``✅ ... correct`` or raises an
``AssertionError`` with a hint; an exercise not attempted yet (``NotImplementedError`` or ``...``)
prints a reminder. Where an exercise forbids a shortcut, the checker replaces that function with
one that raises while your code runs, so the shortcut cannot pass by accident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from unittest import mock

import torch
import torch.nn.functional as F

from .applications.qa import best_span
from .applications.tagging import align_labels
from .applications.vit import patchify
from .exercises import _call, _close, _exercise, _NotAttempted

__all__ = ["check_align_labels", "check_best_span", "check_cross_attention", "check_patchify", "check_prediction"]


@contextlib.contextmanager
def _forbidden(*targets: str):
    """Patch each dotted target (``"torch.nn.functional.unfold"``) to raise while the block runs."""
    def make(name):
        def refuse(*args, **kwargs):
            raise AssertionError(f"this exercise asks you not to call {name}")
        return refuse

    with contextlib.ExitStack() as stack:
        for target in targets:
            stack.enter_context(mock.patch(target, make(target.rsplit(".", 1)[-1])))
        yield


def check_align_labels(fn: Callable) -> None:
    """``fn(word_ids, word_labels) -> list`` of one label per piece: the first piece of each word
    gets its word's label, other pieces and special tokens (``None``) get -100."""
    hint = ("a piece starts a word when its word id is not None and differs from the id of the piece before it; "
            "every other position is ignored by the loss")
    with _exercise("align word labels to WordPiece pieces", hint):
        cases = (([None, 0, 1, 1, 2, None], [2, 0, 1]),
                 ([None, 0, 0, 0, None, None], [3]),                       # one long word, then padding
                 ([None, 0, 1, 2, 3, 3, 4, None], [0, 1, 0, 0, 2]))
        for word_ids, word_labels in cases:
            got = _call(fn, list(word_ids), list(word_labels))
            if got is ...:
                raise _NotAttempted
            expected = align_labels(word_ids, word_labels)
            got = [int(x) for x in got]
            if len(got) != len(expected):
                raise AssertionError(f"{len(word_ids)} word_ids need {len(word_ids)} labels, got {len(got)}")
            if got != expected:
                every_piece = [-100 if w is None else word_labels[w] for w in word_ids]
                why = " (every piece of a word is labelled: only the first should be)" if got == every_piece else ""
                raise AssertionError(f"word_ids={word_ids}, word_labels={word_labels}: got {got}{why}")


def check_best_span(fn: Callable) -> None:
    """``fn(start_logits (T,), end_logits (T,), max_answer_len) -> (start, end)``: the span with the
    highest ``start_logits[start] + end_logits[end]`` among ``start <= end < start + max_answer_len``."""
    hint = ("the best start and the best end taken separately can give end < start, or a span too long; "
            "score the pairs together (broadcasting gives all of them at once) and rule out the illegal ones first")
    with _exercise("best answer span", hint):
        gen = torch.Generator().manual_seed(10)
        cases = [(torch.tensor([0., 5, 0, 0, 0, 1]), torch.tensor([4., 0, 0, 0, 0, 3]), 3),  # argmaxes: end before start
                 (torch.tensor([9., 0, 0, 0, 0, 0, 0]), torch.tensor([0., 0, 0, 0, 0, 0, 9]), 2)]  # too long
        cases += [(torch.randn(T, generator=gen), torch.randn(T, generator=gen), m) for T, m in ((5, 1), (12, 4), (30, 30))]
        for start_logits, end_logits, max_len in cases:
            got = _call(fn, start_logits.clone(), end_logits.clone(), max_len)
            if got is ...:
                raise _NotAttempted
            s, e = (int(v) for v in tuple(got)[:2])
            es, ee, _ = best_span(start_logits, end_logits, max_answer_len=max_len)
            if (s, e) != (es, ee):
                legal = 0 <= s <= e < s + max_len and e < len(end_logits)
                raise AssertionError(f"T={len(start_logits)}, max_answer_len={max_len}: got ({s}, {e}), "
                                     f"{'a legal span but not the best' if legal else 'not a legal span'}")


def check_cross_attention(fn: Callable) -> None:
    """``fn(x (B, L, D), memory (B, S, D), w_q, w_k, w_v) -> (B, L, Dv)``: one head of cross-attention,
    ``q = x @ w_q``, ``k = memory @ w_k``, ``v = memory @ w_v``, without any library attention call."""
    hint = ("it is lesson 01's attention; only the sources change: which sequence asks (queries) and which one "
            "answers (keys and values)? The weights need one row per decoder position")
    forbidden = ("torch.nn.functional.scaled_dot_product_attention", "fmteach.attention.scaled_dot_product_attention",
                 "fmteach.attention.attend", "torch.nn.MultiheadAttention.forward")
    with _exercise("cross-attention, one head", hint):
        gen = torch.Generator().manual_seed(11)
        for B, L, S, D, Dk, Dv in ((2, 3, 5, 8, 4, 6), (1, 7, 2, 6, 6, 3)):  # L != S: who asks, who answers
            x, memory = torch.randn(B, L, D, generator=gen, dtype=torch.float64), torch.randn(B, S, D, generator=gen, dtype=torch.float64)
            w_q, w_k = torch.randn(D, Dk, generator=gen, dtype=torch.float64), torch.randn(D, Dk, generator=gen, dtype=torch.float64)
            w_v = torch.randn(D, Dv, generator=gen, dtype=torch.float64)
            q, k, v = x @ w_q, memory @ w_k, memory @ w_v
            expected = torch.softmax(q @ k.transpose(-2, -1) / Dk ** 0.5, dim=-1) @ v
            with _forbidden(*forbidden):
                got = _call(fn, x, memory, w_q, w_k, w_v)
            if got is ...:
                raise _NotAttempted
            if isinstance(got, torch.Tensor) and got.shape == (B, S, Dv) and L != S:
                raise AssertionError(f"output has shape {tuple(got.shape)}: one row per *memory* position; "
                                     f"cross-attention gives one row per query (decoder) position, (B, L, Dv)")
            _close(got, expected, f"output for L={L}, S={S}", atol=1e-10)


def check_patchify(fn: Callable) -> None:
    """``fn(images (B, H, W), patch) -> (B, n_patches, patch * patch)`` in reading order, without
    ``unfold`` (use reshape and permute)."""
    hint = ("see the image as a grid of blocks: one reshape can give every pixel a block row, a row inside the "
            "block, a block column and a column inside the block; then bring the two block axes together")
    with _exercise("cut images into patches", hint):
        for B, H, W, p in ((2, 8, 8, 2), (3, 6, 8, 2), (1, 9, 6, 3)):  # not all square
            images = torch.arange(B * H * W, dtype=torch.float32).reshape(B, H, W)
            with _forbidden("torch.nn.functional.unfold", "torch.Tensor.unfold"):
                got = _call(fn, images.clone(), p)
            if got is ...:
                raise _NotAttempted
            expected = patchify(images, p)
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got, expected):
                if torch.equal(got, images.reshape(B, -1, p * p)):
                    raise AssertionError(f"{H}x{W} images, patch {p}: a plain reshape cuts rows of pixels, not squares")
            _close(got, expected, f"patches of {H}x{W} images with patch {p}", atol=0)


def check_prediction(question: str, prediction, measured, *, explanation: str) -> None:
    """"Predict, then run": compare the prediction written *before* running with what was measured.
    The explanation is shown only once a prediction is made, so the reminder gives nothing away."""
    title = f"prediction: {question}"
    if prediction is ...:
        print(f"⏳ {title}: no prediction yet. Write it down before you look at the output, then run the cell again.")
        return
    if prediction != measured:
        raise AssertionError(f"{title}: you predicted {prediction!r}, the run measured {measured!r}.\nWhy: {explanation}")
    print(f"✅ {title}: you predicted {prediction!r} and the run measured {measured!r}. Why: {explanation}")
