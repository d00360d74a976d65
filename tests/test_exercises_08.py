"""The exercise checkers of lesson 08 (zero-shot and few-shot learning)."""

import random
from collections import Counter

import numpy as np
import pytest
import sklearn.dummy
import torch
import torch.nn.functional as F

from fmteach import exercises, fewshot
from fmteach.exercises import lesson08
from fmteach.fewshot import zero_shot


def stratified_guess_accuracy(train_labels, test_labels, num_classes):
    train, test = Counter(train_labels), Counter(test_labels)
    return sum(train[c] / len(train_labels) * test[c] / len(test_labels) for c in range(num_classes))


def numpy_stratified(train_labels, test_labels, num_classes):  # returns a numpy scalar: fine too
    p = np.bincount(train_labels, minlength=num_classes) / len(train_labels)
    q = np.bincount(test_labels, minlength=num_classes) / len(test_labels)
    return p @ q


def _frequencies(labels, num_classes):
    return [labels.count(c) / len(labels) for c in range(num_classes)]


def uniform_guess(train_labels, test_labels, num_classes):
    return 1 / num_classes


def train_majority(train_labels, test_labels, num_classes):
    majority = Counter(train_labels).most_common(1)[0][0]
    return test_labels.count(majority) / len(test_labels)


def guesses_from_test_frequencies(train_labels, test_labels, num_classes):
    return sum(q * q for q in _frequencies(test_labels, num_classes))


def train_frequencies_for_both(train_labels, test_labels, num_classes):
    return sum(p * p for p in _frequencies(train_labels, num_classes))


def sampled_guesses(train_labels, test_labels, num_classes):  # an estimate from random draws, not the expectation
    draw = random.Random(0)
    guesses = draw.choices(train_labels, k=1000 * len(test_labels))
    return sum(g == y for g, y in zip(guesses, test_labels * 1000)) / len(guesses)


def counts_not_frequencies(train_labels, test_labels, num_classes):
    return sum(train_labels.count(c) * test_labels.count(c) for c in range(num_classes))


def with_dummy_classifier(train_labels, test_labels, num_classes):
    model = sklearn.dummy.DummyClassifier(strategy="prior").fit([[0]] * len(train_labels), train_labels)
    return float(model.predict_proba([[0]])[0] @ np.bincount(test_labels, minlength=len(model.classes_))[model.classes_]
                 / len(test_labels))


def prototype_predict(train_x, train_y, test_x, num_classes):
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
    return (F.normalize(test_x, dim=-1) @ F.normalize(prototypes, dim=-1).T).argmax(-1)


def dot_product_predict(train_x, train_y, test_x, num_classes):  # forgets to normalise the prototypes
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
    return (test_x @ prototypes.T).argmax(-1)


def _not_done(*args):
    raise NotImplementedError


def test_checkers_accept_right_answers(capsys):
    exercises.check_stratified_guess(stratified_guess_accuracy)
    exercises.check_prototype_predict(prototype_predict)
    exercises.check_prototype_predict(lambda *a: prototype_predict(*a).tolist())  # a list is fine too
    assert capsys.readouterr().out.count("✅") == 3


def test_checkers_reject_wrong_answers_with_hints():
    with pytest.raises(AssertionError, match=r"raw dot products: lengths still count.*\n.*Hint: one prototype per class"):
        exercises.check_prototype_predict(dot_product_predict)
    with pytest.raises(AssertionError, match="predictions differ"):
        exercises.check_prototype_predict(lambda x, y, t, c: (F.normalize(t, dim=-1) @ F.normalize(x, dim=-1).T).argmax(-1) % c)
    with pytest.raises(AssertionError, match="expected 25 predictions"):
        exercises.check_prototype_predict(lambda x, y, t, c: prototype_predict(x, y, t, c)[:3])


def test_not_attempted_only_reminds(capsys):
    exercises.check_stratified_guess(_not_done)
    exercises.check_stratified_guess(lambda *a: ...)
    exercises.check_prototype_predict(_not_done)
    exercises.check_prototype_predict(lambda *a: ...)
    out = capsys.readouterr().out
    assert out.count("⏳") == 4 and "✅" not in out


# --- 08.1: the expected accuracy of a guesser that follows the training labels --------------------------------

def test_stratified_guess_accepts_other_right_forms(capsys):
    exercises.check_stratified_guess(numpy_stratified)
    exercises.check_stratified_guess(lambda tr, te, c: torch.tensor(numpy_stratified(tr, te, c)))  # a 0-d tensor
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize("wrong, message", [
    (uniform_guess, r"0\.5000 is the uniform guess's accuracy, 1/C"),
    (train_majority, r"0\.1667 is the accuracy of always answering the most frequent training label"),
    (guesses_from_test_frequencies, "you gave the guesser the test split's label frequencies"),
    (train_frequencies_for_both, "you used the training frequencies for the true labels as well"),
    (sampled_guesses, r"got 0\.\d+, expected 0\.\d+\. It is close: if you drew random guesses"),
    (counts_not_frequencies, "an accuracy lies between 0 and 1"),
    (with_dummy_classifier, "your function calls sklearn.dummy.DummyClassifier, which this exercise asks you to do "
                            "without"),
    (lambda tr, te, c: (1 / c, train_majority(tr, te, c)), "return one number, the expected accuracy; got tuple"),
    (lambda tr, te, c: "0.5", "return one number, the expected accuracy; got str '0.5'"),
    (lambda tr, te, c: None, "return one number, got NoneType"),
])
def test_stratified_guess_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message + r"(.|\n)*Hint: a guess is right when it names the true label"):
        exercises.check_stratified_guess(wrong)


def test_stratified_guess_catches_what_the_first_case_lets_through():
    """Mistakes right on the first case meet a later one: a class absent from train, C above every label,
    a split of a different length and frequencies."""
    def bincount_without_minlength(tr, te, c):  # as long as the largest label seen: the splits' lengths differ
        return np.bincount(tr) / len(tr) @ (np.bincount(te) / len(te))

    with pytest.raises(AssertionError, match=r"test labels \[0, 0, 1, 3, 2, 2, 1\], C = 4: your function raised "
                                             r"ValueError: .*Which classes occur in each split"):
        exercises.check_stratified_guess(bincount_without_minlength)
    with pytest.raises(AssertionError, match=r"120 train and 45 test labels over C = 6 classes"):
        exercises.check_stratified_guess(lambda tr, te, c: stratified_guess_accuracy(tr, te, min(c, 5)))


def test_stratified_cases_are_unequal_and_tell_the_mistakes_apart():
    cases = lesson08._stratified_cases()
    assert cases == lesson08._stratified_cases()                         # the same every run
    assert all(len(train) != len(test) for train, test, _ in cases)
    assert any(set(range(c)) - set(train) for train, _, c in cases) and any(set(range(c)) - set(test) for _, test, c in cases)
    train, test, c = cases[0]
    values = [f(train, test, c) for f in (stratified_guess_accuracy, uniform_guess, train_majority,
                                         guesses_from_test_frequencies, train_frequencies_for_both)]
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]) > 0.01  # all different on case 1
    assert sklearn.dummy.DummyClassifier().fit([[0]], [1]).predict([[0]])[0] == 1         # restored after the check


# --- 08.3: cloze scores from a verbalizer, with contextual calibration ----------------------------------------

def label_scores(log_probs, verbalizer_ids):
    return torch.stack([log_probs[..., ids].exp().mean(-1).log() for ids in verbalizer_ids], dim=-1)


def calibrated_cloze_scores(mask_log_probs, content_free_log_probs, verbalizer_ids):
    return label_scores(mask_log_probs, verbalizer_ids) - label_scores(content_free_log_probs, verbalizer_ids)


def test_cloze_calibration_accepts_the_package_rule(capsys):
    exercises.check_cloze_calibration(calibrated_cloze_scores)
    namespace = {"torch": torch}
    exec(exercises.solution("08.3"), namespace)  # noqa: S102  our own source text
    exercises.check_cloze_calibration(namespace["calibrated_cloze_scores"])
    exercises.check_cloze_calibration(lambda lp, cf, ids: torch.stack(  # log-sum-exp minus log(count): the same rule
        [(lp[:, i].logsumexp(-1) - cf[i].logsumexp(-1)) for i in ids], -1))
    assert capsys.readouterr().out.count("✅") == 3


def test_cloze_calibration_mistakes():
    with pytest.raises(AssertionError, match="these are the raw scores.*\n.*Hint: do to the content-free row"):
        exercises.check_cloze_calibration(lambda lp, cf, ids: label_scores(lp, ids))
    with pytest.raises(AssertionError, match="mean over the texts .batch calibration."):
        exercises.check_cloze_calibration(lambda lp, cf, ids: label_scores(lp, ids) - label_scores(lp, ids).mean(0))
    with pytest.raises(AssertionError, match="right for labels with one word, not for labels with several"):
        exercises.check_cloze_calibration(lambda lp, cf, ids: torch.stack(
            [lp[:, i].mean(-1) - cf[i].mean() for i in ids], -1))         # mean of log-probabilities
    with pytest.raises(AssertionError, match="differ from cloze_scores"):  # calibrated in probability, not log space
        exercises.check_cloze_calibration(lambda lp, cf, ids: label_scores(lp, ids).exp() - label_scores(cf, ids).exp())
    with pytest.raises(AssertionError, match=r"expected scores of shape \(N, C\) = \(3, 2\), got \(2, 3\)"):
        exercises.check_cloze_calibration(lambda lp, cf, ids: calibrated_cloze_scores(lp, cf, ids).T)
    with pytest.raises(AssertionError, match="changed the log-probabilities"):
        exercises.check_cloze_calibration(lambda lp, cf, ids: calibrated_cloze_scores(lp, cf.sub_(1), ids))
    with pytest.raises(AssertionError, match="calls fmteach.fewshot.cloze_scores"):
        exercises.check_cloze_calibration(lambda lp, cf, ids: fewshot.cloze_scores(None, None, ["x"], template="",
                                                                                   verbalizer=[]))
    assert fewshot.cloze_scores is zero_shot.cloze_scores and callable(fewshot.cloze_scores)  # restored


def test_cloze_calibration_checks_against_cloze_scores():
    """The checker's inputs are what cloze_scores itself computes: its tiny model, read back through the package."""
    from fmteach.exercises import lesson08

    model, tokenizer = lesson08._tiny_masked_lm()
    for template, verbalizer, texts in lesson08._CLOZE_CASES:
        ids = [tokenizer.convert_tokens_to_ids(words) for words in verbalizer]
        log_probs = lesson08._log_probs_at_mask(model, tokenizer, texts, template)
        raw = fewshot.cloze_scores(model, tokenizer, texts, template=template, verbalizer=verbalizer, calibrate=False)
        torch.testing.assert_close(label_scores(log_probs, ids), raw)
        assert raw.std(0).min() > 0.05 and (raw[:, 0] - raw[:, 1]).abs().min() > 0.01  # inputs matter, labels differ


def test_cloze_calibration_not_attempted(capsys):
    exercises.check_cloze_calibration(_not_done)
    exercises.check_cloze_calibration(lambda *a: ...)
    assert capsys.readouterr().out.count("⏳ cloze scores with contextual calibration: not attempted yet") == 2
