"""Lesson 07, fine-tuning BERT: binary metrics from a confusion matrix (07.1), tokens with max-length vs
dynamic padding (07.2), and the prediction 07.p1 (raising the decision threshold)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ._checking import _add_prediction, _add_solution, _call, _exercise, _NotAttempted

__all__ = ["check_binary_metrics", "check_padded_tokens"]


def check_binary_metrics(fn: Callable) -> None:
    """``fn(tp, fp, fn, tn)`` -> dict of accuracy, precision, recall, f1 (checked against scikit-learn)."""
    from ..finetune import classification_metrics  # here: lesson 01 imports the exercises without fine-tuning

    hint = ("every metric is a ratio of confusion-matrix cells: which cells were called positive? which are "
            "truly positive? F1 is the harmonic mean of precision and recall, not the arithmetic one")
    with _exercise("binary metrics from a confusion matrix", hint):
        for tp, fp, fn_, tn in ((40, 10, 5, 45), (3, 1, 7, 89), (12, 12, 12, 12)):
            labels = [1] * tp + [0] * fp + [1] * fn_ + [0] * tn
            preds = [1] * tp + [1] * fp + [0] * fn_ + [0] * tn
            expected = classification_metrics(labels, preds, num_labels=2)
            got = _call(fn, tp, fp, fn_, tn)
            if got is ...:
                raise _NotAttempted
            if not isinstance(got, dict) or set(got) != set(expected):
                raise AssertionError(f"return a dict with keys {sorted(expected)}, got {got!r}")
            for key, value in expected.items():
                if not math.isclose(float(got[key]), value, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{key} for tp={tp}, fp={fp}, fn={fn_}, tn={tn}: got {float(got[key]):.6f}, "
                                         f"expected {value:.6f}")


def check_padded_tokens(fn: Callable) -> None:
    """``fn(lengths, batch_size, max_length)`` -> (tokens padded to max_length, tokens padded per batch)."""
    hint = ("with max_length padding every example costs the same; with dynamic padding each batch is a "
            "rectangle as wide as one of its members -- which one? The last batch may be short")
    with _exercise("tokens with max-length vs dynamic padding", hint):
        for lengths, bs, ml in (([5, 9, 3, 7], 2, 16), ([12, 4, 4, 4, 30], 3, 32), ([8], 4, 8)):
            got = _call(fn, list(lengths), bs, ml)
            if got is ...:
                raise _NotAttempted
            batches = [lengths[i:i + bs] for i in range(0, len(lengths), bs)]
            expected = (len(lengths) * ml, sum(len(b) * max(b) for b in batches))
            if tuple(got) != expected:
                raise AssertionError(f"lengths={lengths}, batch_size={bs}, max_length={ml}: got {tuple(got)}, expected {expected}")


_add_prediction(
    "07.p1",
    "Raise the decision threshold of a binary classifier from 0.5 to 0.55 on the same examples. Then",
    {"a": "precision and recall both rise", "b": "recall falls (or stays); precision usually rises",
     "c": "precision falls, recall rises"},
    "b",
    "a higher threshold calls fewer examples positive. Every example it still calls positive was called positive "
    "before, so recall (found / all positives) cannot grow; the ones it drops are the least sure, more often "
    "wrong, so precision usually rises. Only precision can move either way: on few examples it may dip.",
)
_add_solution("07.1", '''def binary_metrics(tp, fp, fn, tn):
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}
''')
_add_solution("07.2", '''def padded_tokens(lengths, batch_size, max_length):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return len(lengths) * max_length, sum(len(b) * max(b) for b in batches)
''')
