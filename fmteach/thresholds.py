"""Decision thresholds and calibration for a binary classifier's probabilities (lesson 07).

A classifier outputs P(positive); "predict positive when P >= 0.5" is only one choice. Two models
that rank examples equally well can sit on different sides of 0.5 and so trade precision for
recall. Choose the threshold on validation data for the precision (or recall) the application
needs, then report the test set at that threshold. Calibration asks a different question: of the
examples given P = 0.8, are 80 % positive?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_positive


def _binary_inputs(probabilities, labels) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 1:
        raise ValueError(f"probabilities must be 1-D P(positive) per example, got shape {probs.shape}")
    if labels.shape != probs.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} differ in shape")
    if len(probs) == 0:
        raise ValueError("probabilities is empty")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    if np.isnan(probs).any() or (probs < 0).any() or (probs > 1).any():
        raise ValueError("probabilities must lie in [0, 1]")
    return probs, labels.astype(np.int64)


def precision_recall_at(probabilities, labels, threshold: float) -> tuple[float, float]:
    """Precision and recall of "positive when P >= threshold" (precision 1.0 when nothing is called positive)."""
    probs, labels = _binary_inputs(probabilities, labels)
    called = probs >= threshold
    tp = int((called & (labels == 1)).sum())
    precision = tp / int(called.sum()) if called.any() else 1.0
    recall = tp / int((labels == 1).sum()) if (labels == 1).any() else 0.0
    return precision, recall


def threshold_for(probabilities, labels, *, min_precision: float | None = None,
                  min_recall: float | None = None) -> float:
    """The threshold that meets one target and is best on the other metric.

    ``min_precision=p``: the lowest threshold whose precision is at least ``p`` (so the highest
    recall that keeps that precision). ``min_recall=r``: the highest threshold whose recall is at
    least ``r`` (so the best precision). Choose it on validation data, never on the test set.
    The candidates are the distinct probabilities; scikit-learn's ``precision_recall_curve`` scores
    them all in one sort, O(N log N).
    """
    from sklearn.metrics import precision_recall_curve

    if (min_precision is None) == (min_recall is None):
        raise ValueError("give exactly one of min_precision and min_recall")
    target = min_precision if min_precision is not None else min_recall
    if not 0 < target <= 1:
        raise ValueError(f"the target must be in (0, 1], got {target!r}")
    probs, labels = _binary_inputs(probabilities, labels)
    if not labels.any():  # no positive example: every precision is 0 and recall is undefined
        if min_precision is not None:
            raise ValueError(f"no threshold reaches precision {min_precision} on these examples")
        raise ValueError("labels hold no positive example: no threshold has any recall")
    # one point per distinct probability t, ascending, for "positive when P >= t"; the last point
    # (precision 1, recall 0) belongs to no threshold
    precision, recall, candidates = precision_recall_curve(labels, probs)
    precision, recall = precision[:-1], recall[:-1]
    if min_precision is not None:
        ok = candidates[precision >= min_precision]
        if not len(ok):
            raise ValueError(f"no threshold reaches precision {min_precision} on these examples")
        return float(ok.min())
    return float(candidates[recall >= min_recall].max())  # the lowest candidate has recall 1.0: never empty


@dataclass
class Reliability:
    """Per bin of predicted P(positive): mean prediction, observed share of positives, count."""

    mean_predicted: np.ndarray
    fraction_positive: np.ndarray
    counts: np.ndarray
    ece: float  # expected calibration error: sum over bins of (count / N) * |mean_predicted - fraction_positive|


def reliability(probabilities, labels, n_bins: int = 10) -> Reliability:
    """A reliability diagram's points and the expected calibration error, with equal-width bins."""
    check_positive(n_bins=n_bins)
    probs, labels = _binary_inputs(probabilities, labels)
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    used = counts > 0
    mean_predicted = np.bincount(bins, weights=probs, minlength=n_bins)[used] / counts[used]
    fraction_positive = np.bincount(bins, weights=labels, minlength=n_bins)[used] / counts[used]
    ece = float((counts[used] / len(probs) * np.abs(mean_predicted - fraction_positive)).sum())
    return Reliability(mean_predicted, fraction_positive, counts[used], ece)
