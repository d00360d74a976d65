"""The exercise checkers of lesson 08 (zero-shot and few-shot learning)."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from fmteach import exercises


def chance_baselines(train_labels, test_labels, num_classes):
    majority = Counter(train_labels).most_common(1)[0][0]
    return 1 / num_classes, sum(y == majority for y in test_labels) / len(test_labels)


def prototype_predict(train_x, train_y, test_x, num_classes):
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
    return (F.normalize(test_x, dim=-1) @ F.normalize(prototypes, dim=-1).T).argmax(-1)


def dot_product_predict(train_x, train_y, test_x, num_classes):  # forgets to normalise the prototypes
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
    return (test_x @ prototypes.T).argmax(-1)


def _not_done(*args):
    raise NotImplementedError


def test_checkers_accept_right_answers(capsys):
    exercises.check_chance_baselines(chance_baselines)
    exercises.check_prototype_predict(prototype_predict)
    exercises.check_prototype_predict(lambda *a: prototype_predict(*a).tolist())  # a list is fine too
    assert capsys.readouterr().out.count("✅") == 3


def test_checkers_reject_wrong_answers_with_hints():
    with pytest.raises(AssertionError, match=r"random accuracy .* expected 0\.2000\n.*Hint: how often is a uniform"):
        exercises.check_chance_baselines(lambda tr, te, c: (1 / len(set(tr)), chance_baselines(tr, te, c)[1]))
    with pytest.raises(AssertionError, match="majority accuracy"):  # the majority of the *test* labels: a peek
        exercises.check_chance_baselines(lambda tr, te, c: (1 / c, chance_baselines(te, te, c)[1]))
    with pytest.raises(AssertionError, match="pair"):
        exercises.check_chance_baselines(lambda tr, te, c: 1 / c)
    with pytest.raises(AssertionError, match=r"raw dot products: lengths still count.*\n.*Hint: one prototype per class"):
        exercises.check_prototype_predict(dot_product_predict)
    with pytest.raises(AssertionError, match="predictions differ"):
        exercises.check_prototype_predict(lambda x, y, t, c: (F.normalize(t, dim=-1) @ F.normalize(x, dim=-1).T).argmax(-1) % c)
    with pytest.raises(AssertionError, match="expected 25 predictions"):
        exercises.check_prototype_predict(lambda x, y, t, c: prototype_predict(x, y, t, c)[:3])


def test_not_attempted_only_reminds(capsys):
    exercises.check_chance_baselines(_not_done)
    exercises.check_chance_baselines(lambda *a: ...)
    exercises.check_chance_baselines(lambda *a: (..., ...))
    exercises.check_prototype_predict(_not_done)
    exercises.check_prototype_predict(lambda *a: ...)
    out = capsys.readouterr().out
    assert out.count("⏳") == 5 and "✅" not in out
