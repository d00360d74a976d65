"""The exercise checkers of lesson 07 (fine-tuning): right answers pass, wrong ones fail, none is a reminder."""

import pytest

from fmteach import exercises


def binary_metrics(tp, fp, fn, tn):
    p, r = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": p, "recall": r, "f1": 2 * p * r / (p + r)}


def padded_tokens(lengths, batch_size, max_length):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return len(lengths) * max_length, sum(len(b) * max(b) for b in batches)


def test_binary_metrics(capsys):
    exercises.check_binary_metrics(binary_metrics)
    assert "correct" in capsys.readouterr().out
    swapped = lambda tp, fp, fn, tn: binary_metrics(tp, fn, fp, tn)  # noqa: E731  precision and recall swapped
    with pytest.raises(AssertionError, match="precision"):
        exercises.check_binary_metrics(swapped)
    with pytest.raises(AssertionError, match="keys"):
        exercises.check_binary_metrics(lambda *a: {"accuracy": 1.0})


def test_padded_tokens(capsys):
    exercises.check_padded_tokens(padded_tokens)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected"):
        exercises.check_padded_tokens(lambda lengths, bs, ml: (len(lengths) * ml, sum(lengths)))  # no padding at all


def test_not_attempted_is_a_reminder(capsys):
    def todo(*args):
        raise NotImplementedError

    exercises.check_binary_metrics(todo)
    exercises.check_padded_tokens(lambda *a: ...)
    assert capsys.readouterr().out.count("not attempted") == 2
