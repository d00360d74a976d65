"""The base of scoring: label checks and the four classification metrics.

The loop, evaluation and the Trainer's ``compute_metrics`` all stand on this module; it imports no
other submodule of ``fmteach.finetune``.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive

__all__ = ["check_label_range", "classification_metrics"]


def _as_class_indices(values, argument: str) -> np.ndarray:
    """``values`` as a 1-D integer array; whole-number floats are accepted, fractions are not."""
    array = np.asarray(values)
    if array.dtype == bool:
        array = array.astype(np.int64)
    if array.ndim != 1:
        raise ValueError(f"{argument} must be one class index per example (1-D), got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)) \
                or not np.all(array == np.round(array)):
            example = array.flat[0].item()
            raise TypeError(f"{argument} must hold class indices (integers), got {array.dtype} values such as "
                            f"{example!r}; for probabilities or logits pass .argmax(-1)")
        array = array.astype(np.int64)
    return array


def check_label_range(labels, num_labels: int | None, argument: str = "labels") -> np.ndarray:
    """``labels`` as an integer array, every value in ``0 .. num_labels - 1`` (``num_labels=None``:
    only ``>= 0``). A label outside the label set is a ``ValueError`` that names ``argument``,
    the value, where it is and the set expected -- not an ``IndexError`` or a CUDA assert deep in
    torch's cross-entropy."""
    array = _as_class_indices(labels, argument)
    check_positive(num_labels=num_labels, allow_none=True)
    bad = np.flatnonzero((array < 0) | (array >= num_labels if num_labels is not None else False))
    if bad.size:
        expected = f"0..{num_labels - 1} (num_labels={num_labels})" if num_labels is not None else ">= 0"
        raise ValueError(f"{argument} holds {array[bad[0]]} at index {bad[0]} ({bad.size} value(s) in all) outside "
                         f"the label set: expected class indices {expected}")
    return array


def classification_metrics(labels, predictions, num_labels: int | None = None) -> dict[str, float]:
    """Accuracy, precision, recall and F1 with scikit-learn (``evaluate.load`` needs the network).

    Two classes: precision/recall/F1 of the positive class (label 1). More: macro averages, so
    that every class counts the same however rare it is. ``num_labels=None``: the largest class
    index seen, plus one.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = _as_class_indices(labels, "labels")
    predictions = _as_class_indices(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape: "
                         f"one prediction per label expected")
    if labels.size == 0:
        raise ValueError("labels is empty: no examples to score")
    check_label_range(labels, num_labels, "labels")
    check_label_range(predictions, num_labels, "predictions")
    num_labels = num_labels or int(max(labels.max(), predictions.max()) + 1)
    average = "binary" if num_labels == 2 else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average=average, labels=None if average == "binary" else list(range(num_labels)),
        zero_division=0)
    return {"accuracy": float(accuracy_score(labels, predictions)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}
