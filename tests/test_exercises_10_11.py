"""The exercise checkers of lessons 10 (one encoder, many tasks) and 11 (translation and images): right
answers pass, wrong ones fail with a hint, forbidden calls are refused and restored; the measured
"predict, then run" check."""

import pytest
import torch

from fmteach import exercises
from fmteach.applications import tagging


def _not_attempted(*args):
    raise NotImplementedError


def best(start, end, max_len):
    scores = start[:, None] + end[None, :]
    offset = torch.arange(len(end))[None, :] - torch.arange(len(start))[:, None]
    flat = int(scores.masked_fill((offset < 0) | (offset >= max_len), float("-inf")).argmax())
    return flat // len(end), flat % len(end)


def cross(x, memory, w_q, w_k, w_v):
    q, k, v = x @ w_q, memory @ w_k, memory @ w_v
    return torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1) @ v


def patches(images, p):
    B, H, W = images.shape
    return images.reshape(B, H // p, p, W // p, p).permute(0, 1, 3, 2, 4).reshape(B, -1, p * p)


def test_checkers_pass_the_solutions(capsys):
    exercises.check_align_labels(lambda ids, labels: tagging.align_labels(ids, labels))
    exercises.check_best_span(best)
    exercises.check_cross_attention(cross)
    exercises.check_patchify(patches)
    exercises.check_measured_prediction("windows", 4, 4, explanation="count them")
    assert capsys.readouterr().out.count("✅") == 5


def test_checkers_report_not_attempted(capsys):
    for check in (exercises.check_align_labels, exercises.check_best_span, exercises.check_cross_attention,
                  exercises.check_patchify):
        check(_not_attempted)
    exercises.check_measured_prediction("windows", ..., 4, explanation="count them")
    out = capsys.readouterr().out
    assert out.count("⏳") == 5 and "count them" not in out  # the reminder does not give the explanation away


def test_checkers_catch_the_usual_mistakes():
    with pytest.raises(AssertionError, match="every piece of a word is labelled"):
        exercises.check_align_labels(lambda ids, labels: [-100 if w is None else labels[w] for w in ids])
    with pytest.raises(AssertionError, match="not a legal span"):
        exercises.check_best_span(lambda s, e, m: (int(s.argmax()), int(e.argmax())))
    with pytest.raises(AssertionError, match="one row per query"):
        exercises.check_cross_attention(
            lambda x, mem, wq, wk, wv: torch.softmax((mem @ wk) @ (x @ wq).transpose(-2, -1), -1) @ (x @ wv))
    with pytest.raises(AssertionError, match="a plain reshape cuts rows"):
        exercises.check_patchify(lambda images, p: images.reshape(len(images), -1, p * p))
    with pytest.raises(AssertionError, match="you predicted 3, the run measured 4.*\n.*Why: count them"):
        exercises.check_measured_prediction("windows", 3, 4, explanation="count them")


def test_measured_prediction_with_a_tolerance(capsys):
    exercises.check_measured_prediction("share", 0.3, 0.27, explanation="a third", tolerance=0.05)
    assert "✅" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"within 0.05 counts as right.*\n.*a third"):
        exercises.check_measured_prediction("share", 0.5, 0.27, explanation="a third", tolerance=0.05)
    with pytest.raises(TypeError, match="should be a number"):
        exercises.check_measured_prediction("share", "a third", 0.27, explanation="a third", tolerance=0.05)


@pytest.mark.parametrize("checker, cheat, forbidden", [
    (exercises.check_cross_attention,
     lambda x, m, wq, wk, wv: torch.nn.functional.scaled_dot_product_attention(x @ wq, m @ wk, m @ wv),
     "F.scaled_dot_product_attention"),
    (exercises.check_cross_attention,
     lambda x, m, wq, wk, wv: __import__("fmteach").scaled_dot_product_attention(x @ wq, m @ wk, m @ wv)[0],
     "fmteach.scaled_dot_product_attention"),
    (exercises.check_patchify,
     lambda images, p: torch.nn.functional.unfold(images[:, None], p, stride=p).transpose(1, 2), "F.unfold"),
    (exercises.check_patchify,
     lambda images, p: images.unfold(1, p, p).unfold(2, p, p).reshape(len(images), -1, p * p), "Tensor.unfold"),
])
def test_checkers_refuse_the_forbidden_shortcuts(checker, cheat, forbidden):
    with pytest.raises(AssertionError, match=f"calls {forbidden}, which this exercise asks you to do without"):
        checker(cheat)
    assert torch.nn.functional.unfold(torch.ones(1, 1, 2, 2), 2).shape == (1, 4, 1)  # restored afterwards
    assert torch.arange(4.0).unfold(0, 2, 2).shape == (2, 2)
    assert "unfold" not in vars(torch.Tensor)  # inherited again, not a copy left on the subclass
