import numpy as np
import pytest

from fmteach.thresholds import precision_recall_at, reliability, threshold_for

PROBS = np.array([0.1, 0.3, 0.35, 0.4, 0.6, 0.65, 0.7, 0.9])
LABELS = np.array([0, 0, 1, 0, 1, 0, 1, 1])


def test_precision_recall_at_counts_the_cells():
    assert precision_recall_at(PROBS, LABELS, 0.5) == (3 / 4, 3 / 4)
    assert precision_recall_at(PROBS, LABELS, 0.66) == (1.0, 2 / 4)
    assert precision_recall_at(PROBS, LABELS, 0.95) == (1.0, 0.0)  # nothing called positive


def test_threshold_for_precision_keeps_the_most_recall():
    t = threshold_for(PROBS, LABELS, min_precision=0.99)
    assert t == 0.7
    p, r = precision_recall_at(PROBS, LABELS, t)
    assert p == 1.0 and r == 0.5
    # a looser target allows a lower threshold and more recall
    assert threshold_for(PROBS, LABELS, min_precision=0.6) == 0.35


def test_threshold_for_recall_keeps_the_most_precision():
    assert threshold_for(PROBS, LABELS, min_recall=1.0) == 0.35
    assert threshold_for(PROBS, LABELS, min_recall=0.5) == 0.7


def test_unreachable_precision_and_bad_arguments_are_named():
    with pytest.raises(ValueError, match="precision 1.0"):
        threshold_for([0.9, 0.8], [0, 0], min_precision=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        threshold_for(PROBS, LABELS)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        threshold_for(PROBS, LABELS + 1, min_recall=0.5)
    with pytest.raises(ValueError, match="1-D"):
        precision_recall_at(np.ones((2, 2)), [0, 1], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        precision_recall_at([1.5, 0.2], [0, 1], 0.5)


def test_reliability_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    calibrated = reliability(p, (rng.uniform(size=p.size) < p).astype(int))
    assert calibrated.ece < 0.02 and calibrated.counts.sum() == p.size
    overconfident = reliability(np.where(p > 0.5, 0.99, 0.01), (rng.uniform(size=p.size) < p).astype(int))
    assert overconfident.ece > 0.2
    np.testing.assert_allclose(overconfident.mean_predicted, [0.01, 0.99])
    with pytest.raises(ValueError, match="n_bins"):
        reliability(p, p > 0.5, n_bins=0)


def _threshold_by_brute_force(probs, labels, min_precision=None, min_recall=None):
    """The definition, scored at every distinct probability (what threshold_for did before it used
    scikit-learn's precision_recall_curve): it must choose the same float."""
    candidates = np.unique(probs)
    scores = [precision_recall_at(probs, labels, t) for t in candidates]
    if min_precision is not None:
        ok = [t for t, (p, _) in zip(candidates, scores, strict=True) if p >= min_precision]
        return float(min(ok)) if ok else None
    return float(max(t for t, (_, r) in zip(candidates, scores, strict=True) if r >= min_recall))


def test_threshold_for_matches_the_definition_on_random_inputs():
    rng = np.random.default_rng(0)
    for trial in range(120):
        n = int(rng.integers(1, 60))
        probs = rng.random(n)
        if trial % 3 == 0:
            probs = np.round(probs, 1)  # ties, as a classifier's rounded outputs have
        labels = (rng.random(n) < rng.random()).astype(int)
        if not labels.any():
            labels[int(rng.integers(n))] = 1
        for target in (0.05, 0.3, 0.5, 0.8, 0.95, 1.0, float(rng.random()) or 0.5):
            assert threshold_for(probs, labels, min_recall=target) == _threshold_by_brute_force(
                probs, labels, min_recall=target)
            expected = _threshold_by_brute_force(probs, labels, min_precision=target)
            if expected is None:
                with pytest.raises(ValueError, match="no threshold reaches precision"):
                    threshold_for(probs, labels, min_precision=target)
            else:
                assert threshold_for(probs, labels, min_precision=target) == expected
    with pytest.raises(ValueError, match="no positive example"):
        threshold_for([0.2, 0.7], [0, 0], min_recall=0.5)
