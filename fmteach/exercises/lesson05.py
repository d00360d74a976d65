"""Lesson 05, pretraining a mini-BERT: whole-word masking (05.1), the masked cross-entropy with one weight
per sentence and without ``ignore_index`` (05.2), and the prediction 05.p1 (the loss an untrained masked
LM starts at)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..masks import IGNORE_INDEX
from ._checking import _add_prediction, _add_solution, _call, _close, _exercise, _forbidden, _NotAttempted

__all__ = ["check_whole_word_selection", "check_masked_cross_entropy"]

_MASKING_CALLS = ("fmteach.mask_tokens_for_mlm", "fmteach.masks.mask_tokens_for_mlm",
                  "transformers.DataCollatorForLanguageModeling.torch_mask_tokens",
                  "transformers.DataCollatorForLanguageModeling._whole_word_mask")


def _words(rows: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rows ``[CLS] words… [SEP] [PAD]…``, words of 1-4 pieces -> (is_continuation, special), each
    (rows, length)."""
    is_continuation = torch.zeros(rows, length, dtype=torch.bool)
    special = torch.zeros(rows, length, dtype=torch.bool)
    for r in range(rows):
        end = length - int(torch.randint(0, length // 4 + 1, (1,), generator=gen))  # [SEP] at end - 1, then padding
        special[r, 0] = special[r, end - 1:] = True
        t = 1
        while t < end - 1:
            n_pieces = min(int(torch.randint(1, 5, (1,), generator=gen)), end - 1 - t)
            is_continuation[r, t + 1:t + n_pieces] = True
            t += n_pieces
    return is_continuation, special


def _check_selection(selected, is_continuation, special, what: str) -> None:
    if not isinstance(selected, torch.Tensor) or selected.dtype != torch.bool:
        got = getattr(selected, "dtype", type(selected).__name__)
        raise AssertionError(f"{what}: expected a bool tensor, got {got}")
    if selected.shape != special.shape:
        raise AssertionError(f"{what}: shape {tuple(selected.shape)}, expected {tuple(special.shape)}")
    if (selected & special).any():
        raise AssertionError(f"{what}: a special token ([CLS], [SEP] or [PAD]) is selected")
    if (is_continuation & (selected != selected.roll(1, dims=-1))).any():
        raise AssertionError(f"{what}: a word is split: some of its pieces are selected, others not")


def check_whole_word_selection(fn: Callable) -> None:
    """Exercise 05.1: ``fn(is_continuation (B, T) bool, special (B, T) bool, probability, generator)
    -> selected (B, T) bool``. A word is a non-special piece that is not a continuation (``##``), plus
    the continuation pieces right after it; each word is selected with ``probability``, all its
    pieces together; special tokens never; random numbers only from ``generator``."""
    hint = ("what must get one random draw so that each word, whatever its number of pieces, is selected with "
            "the given probability? Then every piece has to find the draw that belongs to it: work that out "
            "by hand on one short row, [CLS] laz ##y dog [SEP], before you write tensor code")
    with _exercise("whole-word masking: which pieces to select", hint):
        gen = torch.Generator().manual_seed(13)
        small, large = _words(2, 9, gen), _words(64, 128, gen)
        word_start = ~large[1] & ~large[0]
        multi_piece = word_start & large[0].roll(-1, dims=-1)   # words of two or more pieces
        runs = []  # large, probability 0.15: seeds 1, 1, 5
        with _forbidden(*_MASKING_CALLS):
            for (is_cont, special), p, seed in ((small, 0.5, 0), (large, 0.15, 1), (large, 0.5, 2), (small, 0.0, 3),
                                                (small, 1.0, 4), (large, 0.15, 1), (large, 0.15, 5)):
                what = f"B={special.shape[0]}, T={special.shape[1]}, probability={p}"
                selected = _call(fn, is_cont.clone(), special.clone(), p, torch.Generator().manual_seed(seed))
                if selected is ...:
                    raise _NotAttempted
                _check_selection(selected, is_cont, special, what)
                if p in (0.0, 1.0) and not torch.equal(selected, ~special if p else torch.zeros_like(special)):
                    raise AssertionError(f"{what}: expected {'every non-special piece' if p else 'nothing'} selected")
                if special.shape[0] == 64:
                    for words, kind in ((word_start, "words"), (multi_piece, "words of several pieces")):
                        rate = selected[words].double().mean().item()
                        if abs(rate - p) > 0.05:
                            raise AssertionError(f"{what}: {rate:.1%} of the {kind} selected, expected about {p:.0%}")
                    if p == 0.15:
                        runs.append(selected)
        if not torch.equal(runs[0], runs[1]) or torch.equal(runs[0], runs[2]):
            raise AssertionError("the same generator seed must give the same selection, and another seed another one "
                                 "(draw every random number from `generator`)")


@contextlib.contextmanager
def _no_ignored_labels():
    """Make F.cross_entropy and F.nll_loss refuse ignore_index and labels of -100 while active."""
    originals = {name: getattr(F, name) for name in ("cross_entropy", "nll_loss")}

    def guarded(name):
        def call(input, target, *args, **kwargs):
            if "ignore_index" in kwargs or (target < 0).any():
                raise AssertionError(f"your function gives F.{name} labels of {IGNORE_INDEX} (or ignore_index), "
                                     f"which this exercise asks you to do without")
            return originals[name](input, target, *args, **kwargs)
        return call

    with _forbidden(*((F, name, f"F.{name}") for name in originals)):
        for name in originals:  # inside _forbidden: the originals come back on exit
            setattr(F, name, guarded(name))
        yield


def _per_sentence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sentence's mean cross-entropy over its labelled positions, then the mean over the sentences that
    have a label."""
    per_position = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    counts = (labels != IGNORE_INDEX).sum(1)                               # (B,): 0 for a sentence without labels
    return (per_position.sum(1)[counts > 0] / counts[counts > 0]).mean()


def check_masked_cross_entropy(fn: Callable) -> None:
    """Exercise 05.2: ``fn(logits (B, T, V), labels (B, T) with -100) -> loss``: each sentence's mean
    cross-entropy over its own labelled positions, then the mean over the sentences that have at least
    one label (every such sentence weighs the same, whatever its number of labels); without
    ``ignore_index`` (no label of -100 may reach a loss function)."""
    hint = ("section 4's by_hand picks out the labelled positions and, with them, forgets which sentence each "
            "came from. What do you need to keep per sentence, and how do you get it while no label of -100 "
            "reaches a loss function? Check the sentence without any label: it must not make the result nan")
    with _exercise("masked cross-entropy, one weight per sentence", hint):
        gen = torch.Generator().manual_seed(2)
        cases = [(2, 6, 11, [(0, 1, 3), (1, 4, 7), (1, 5, 0)]),                 # row 0 has one label, row 1 two
                 (3, 6, 9, [(0, 0, 6), (0, 2, 1), (0, 5, 8), (2, 3, 2)]),       # row 1 has none
                 (1, 4, 5, [(0, t, t) for t in range(4)])]                        # every position labelled
        for B, T, V, labelled in cases:
            logits = torch.randn(B, T, V, generator=gen)
            labels = torch.full((B, T), IGNORE_INDEX)
            for b, t, label in labelled:
                labels[b, t] = label
            expected = _per_sentence_loss(logits, labels)
            with _no_ignored_labels():
                got = _call(fn, logits.clone(), labels.clone())
            if got is ...:
                raise _NotAttempted
            counts = (labels != IGNORE_INDEX).sum(1).tolist()
            what = f"the loss for B={B}, T={T}, V={V}, labelled positions per sentence {counts}"
            got = torch.as_tensor(got)
            if got.shape == expected.shape and bool(got.isnan()):
                raise AssertionError(f"{what} is nan" + (" (one sentence has no label)" if 0 in counts else ""))
            per_token = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=IGNORE_INDEX)
            if (got.shape == expected.shape and not torch.allclose(per_token, expected)
                    and torch.allclose(got.to(per_token.dtype), per_token, atol=1e-6)):
                raise AssertionError(f"{what} is section 4's loss: every labelled position weighs the same, "
                                     f"so a sentence with more labels counts more")
            _close(got, expected, what)


_add_prediction(
    "05.p1",
    "An untrained mini-BERT (8,000 pieces, small initial weights) is scored on the masked positions of a "
    "batch. Its loss is about …",
    {"a": "0.15 × ln 8000 ≈ 1.3: only 15% of the positions count",
     "b": "ln 8000 ≈ 9.0: a nearly uniform guess over the vocabulary",
     "c": "far above ln 8000: random weights make confident wrong guesses"},
    "b",
    "the loss is the mean over the masked positions only (the others are left out, not counted as 0), and "
    "small initial weights give nearly equal logits: about 1/8000 for every piece, so -ln(1/8000) per masked token.",
)
_add_solution("05.1", '''def whole_word_selection(is_continuation, special, probability, generator):
    word_start = ~special & ~is_continuation              # (B, T): the first piece of each word
    word_number = word_start.long().cumsum(-1)            # the pieces of one word share a number
    B, T = special.shape
    draw = torch.rand(B, T + 1, generator=generator) < probability  # one coin per word (at most T in a row)
    return draw.gather(1, word_number) & ~special         # each piece takes its word's coin
''')
_add_solution("05.2", '''def my_masked_cross_entropy(logits, labels):
    labelled = labels != -100                                       # (B, T) bool
    safe_labels = labels.masked_fill(~labelled, 0)                  # any real class: these positions will not count
    per_position = F.cross_entropy(logits.transpose(1, 2), safe_labels, reduction="none")  # (B, T)
    per_position = per_position.masked_fill(~labelled, 0.0)        # unlabelled positions add nothing
    counts = labelled.sum(1)                                        # (B,) labels per sentence
    has_labels = counts > 0                                         # a sentence without labels is left out
    return (per_position.sum(1)[has_labels] / counts[has_labels]).mean()
''')
