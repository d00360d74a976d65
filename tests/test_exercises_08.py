"""The exercise checkers of lesson 08 (zero-shot and few-shot learning)."""

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from fmteach import exercises, fewshot
from fmteach.fewshot import zero_shot


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
