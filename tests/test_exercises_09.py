"""The early-stopping exercise of lesson 09 (09.3): the rule on validation losses, its edge cases (ties, no
improvement, patience longer than the run, one epoch) and its errors (no losses, patience below 1)."""

import numpy as np
import pytest

from fmteach import exercises


def reference():
    namespace = {}
    exec(exercises.solution("09.3"), namespace)  # noqa: S102  our own source text
    return namespace["early_stopping"]


def test_reference_solution_and_edge_cases(capsys):
    early_stopping = reference()
    exercises.check_early_stopping(early_stopping)
    assert "✅ early stopping on the validation loss: correct" in capsys.readouterr().out
    assert early_stopping([0.9, 0.7, 0.6, 0.65, 0.7, 0.5], 2) == (5, 3)   # epoch 6 is never seen
    assert early_stopping([0.8, 0.8, 0.8], 2) == (3, 1)                   # a tie does not improve
    assert early_stopping([0.4], 1) == (1, 1)
    for losses, patience in (([], 2), ([0.5], 0), ([0.5], -1), ([0.5], 1.5), ([0.5], True)):
        with pytest.raises(ValueError):
            early_stopping(losses, patience)


def test_numpy_ints_are_fine(capsys):
    early_stopping = reference()
    exercises.check_early_stopping(lambda losses, p: tuple(np.int64(e) for e in early_stopping(losses, p)))
    assert "✅" in capsys.readouterr().out


def with_errors(rule):
    """A rule on valid input, with the errors the exercise asks for."""
    def fn(losses, patience):
        if not losses or patience < 1:
            raise ValueError("no losses, or patience below 1")
        return rule(losses, patience)
    return fn


def test_usual_mistakes_fail_with_a_hint():
    right = reference()
    overall_best = with_errors(lambda losses, p: (right(losses, p)[0], losses.index(min(losses)) + 1))
    with pytest.raises(AssertionError, match=r"got \(5, 6\), expected .* = \(5, 3\) \(early stopping cannot know the "
                                             r"losses after it stops\)\n.*Hint: walk through"):
        exercises.check_early_stopping(overall_best)
    with pytest.raises(AssertionError, match=r"\(epochs are counted from 1\)"):
        exercises.check_early_stopping(with_errors(lambda losses, p: tuple(e - 1 for e in right(losses, p))))

    def ties_improve(losses, patience):  # <= instead of <: the last of equal losses becomes the best
        best, waited = 1, 0
        for epoch in range(2, len(losses) + 1):
            if losses[epoch - 1] <= losses[best - 1]:
                best, waited = epoch, 0
            else:
                waited += 1
                if waited == patience:
                    return epoch, best
        return len(losses), best

    with pytest.raises(AssertionError, match=r"val_losses=\[0.8, 0.8, 0.8, 0.8\], patience=2: got \(4, 4\)"):
        exercises.check_early_stopping(with_errors(ties_improve))

    def no_reset(losses, patience):  # the count of bad epochs never starts again
        best, bad = 1, 0
        for epoch in range(2, len(losses) + 1):
            if losses[epoch - 1] < losses[best - 1]:
                best = epoch
            else:
                bad += 1
                if bad == patience:
                    return epoch, best
        return len(losses), best

    with pytest.raises(AssertionError, match=r"val_losses=\[0.6, 0.7, 0.5, 0.55, 0.45, 0.5, 0.6\], patience=2: "
                                             r"got \(4, 3\), expected"):
        exercises.check_early_stopping(with_errors(no_reset))


def test_errors_and_inputs():
    right = reference()
    with pytest.raises(AssertionError, match="no losses at all should raise ValueError with a clear message, got "
                                             "IndexError"):
        exercises.check_early_stopping(lambda losses, p: right(losses, p) if losses else losses[0])
    with pytest.raises(AssertionError, match=r"patience 0 \(val_losses=\[0.5, 0.4\], patience=0\) should raise "
                                             r"ValueError, got \(2, 2\)"):
        exercises.check_early_stopping(lambda losses, p: right(losses, max(p, 1)) if losses else right(losses, p))
    def refuses_patience_2(losses, patience):
        if patience < 3:
            raise ValueError("patience must be at least 3")
        return right(losses, patience)

    with pytest.raises(AssertionError, match="patience=2 is a valid input, yet your function raised ValueError"):
        exercises.check_early_stopping(refuses_patience_2)
    with pytest.raises(AssertionError, match="changed the list it was given"):
        exercises.check_early_stopping(lambda losses, p: right(sorted(losses) if losses.sort() else losses, p))
    with pytest.raises(AssertionError, match="return a pair of ints"):
        exercises.check_early_stopping(lambda losses, p: [float(e) for e in right(losses, p)])


def test_not_attempted_only_reminds(capsys):
    def todo(losses, patience):
        raise NotImplementedError

    exercises.check_early_stopping(todo)
    exercises.check_early_stopping(lambda *a: ...)
    exercises.check_early_stopping(lambda *a: (..., ...))
    assert capsys.readouterr().out.count("⏳ early stopping on the validation loss: not attempted yet") == 3
