"""Lesson 10, one encoder, many tasks: word labels aligned to WordPiece pieces (10.1), and the best answer
span (10.2). (The lesson's "predict, then run" question is measured: :func:`~._checking.check_measured_prediction`.)"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import _add_solution, _call, _exercise, _NotAttempted

__all__ = ["check_align_labels", "check_best_span"]


def check_align_labels(fn: Callable) -> None:
    """``fn(word_ids, word_labels) -> list`` of one label per piece: the first piece of each word
    gets its word's label, other pieces and special tokens (``None``) get -100."""
    from ..applications.tagging import align_labels  # here: lesson 01 imports the exercises without lesson 10

    hint = ("write out the word_ids of one word cut into three pieces, [None, 4, 4, 4, None]: looking only at "
            "the ids, what marks the first 4 as the start of the word, and not the second or the third? And "
            "which positions belong to no word at all?")
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
    from ..applications.qa import best_span

    hint = ("try the first test on paper: start_logits [0, 5, 0, 0, 0, 1], end_logits [4, 0, 0, 0, 0, 3], "
            "max_answer_len 3. Which span do the best start and the best end give, each chosen on its own, and may "
            "it be returned? Which (start, end) spans may be returned, and which of those scores highest?")
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


_add_solution("10.1", '''def align_labels(word_ids, word_labels):
    aligned, previous = [], None
    for word_id in word_ids:
        first_piece = word_id is not None and word_id != previous
        aligned.append(word_labels[word_id] if first_piece else -100)
        previous = word_id
    return aligned
''')
_add_solution("10.2", '''def best_span(start_logits, end_logits, max_answer_len):
    T = len(start_logits)
    scores = start_logits[:, None] + end_logits[None, :]           # (T, T): row = start, column = end
    length = torch.arange(T)[None, :] - torch.arange(T)[:, None]  # end - start
    scores = scores.masked_fill((length < 0) | (length >= max_answer_len), float("-inf"))
    flat = int(scores.argmax())
    return flat // T, flat % T
''')
