"""The exercise checkers of lessons 10 (one encoder, many tasks) and 11 (translation and images): right
answers pass, wrong ones fail with a hint, forbidden calls are refused and restored; the measured
"predict, then run" check; hints guide without giving the method."""

import pytest
import torch

from fmteach import exercises
from fmteach.applications import tagging
from tests.tiny import assert_hint_guides


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


def patches(images, patch):
    B, C, H, W = images.shape
    ph, pw = patch
    grid = images.reshape(B, C, H // ph, ph, W // pw, pw).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(B, -1, C * ph * pw)


def patches_in(order):  # the right reshape, the axes of (B, C, rows, ph, cols, pw) in another order
    def fn(images, patch):
        B, C, H, W = images.shape
        ph, pw = patch
        return images.reshape(B, C, H // ph, ph, W // pw, pw).permute(*order).reshape(B, -1, C * ph * pw)
    return fn


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
    with pytest.raises(AssertionError, match="a plain reshape cuts runs of pixels"):
        exercises.check_patchify(lambda images, p: images.reshape(len(images), -1, images[0].numel() // (
            images.shape[2] // p[0] * images.shape[3] // p[1])))
    with pytest.raises(AssertionError, match=r"\(ph, pw\) = \(2, 3\): inside each patch the channels vary fastest"):
        exercises.check_patchify(patches_in((0, 2, 4, 3, 5, 1)))  # channels last: right for the 1-channel case only
    with pytest.raises(AssertionError, match="the patches go down the columns first"):
        exercises.check_patchify(patches_in((0, 4, 2, 1, 3, 5)))
    with pytest.raises(AssertionError, match="the pixels go down the columns"):
        exercises.check_patchify(patches_in((0, 2, 4, 1, 5, 3)))
    with pytest.raises(AssertionError, match="the channel axis is still in front"):
        exercises.check_patchify(patches_in((0, 1, 2, 4, 3, 5)))
    with pytest.raises(AssertionError, match=r"patches of 1-channel 6x8 images, .* has shape \(2, 12, 4\), "
                                             r"expected \(2, 8, 6\)"):  # the square case of the lesson, patch p x p
        exercises.check_patchify(lambda images, p: patches(images, (p[1], p[1])))
    with pytest.raises(AssertionError, match=r"raised TypeError: .*patch is a \(height, width\) pair"):
        exercises.check_patchify(lambda images, p: images.reshape(len(images), -1, p * p))  # lesson's square code
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
     lambda images, p: torch.nn.functional.unfold(images, p, stride=p).transpose(1, 2), "F.unfold"),
    (exercises.check_patchify,
     lambda images, p: images.unfold(2, p[0], p[0]).unfold(3, p[1], p[1]).permute(0, 2, 3, 1, 4, 5).reshape(
         len(images), -1, images.shape[1] * p[0] * p[1]), "Tensor.unfold"),
])
def test_checkers_refuse_the_forbidden_shortcuts(checker, cheat, forbidden):
    with pytest.raises(AssertionError, match=f"calls {forbidden}, which this exercise asks you to do without"):
        checker(cheat)
    assert torch.nn.functional.unfold(torch.ones(1, 1, 2, 2), 2).shape == (1, 4, 1)  # restored afterwards
    assert torch.arange(4.0).unfold(0, 2, 2).shape == (2, 2)
    assert "unfold" not in vars(torch.Tensor)  # inherited again, not a copy left on the subclass


def test_patch_order_is_that_of_unfold_and_of_a_strided_conv():
    """Exercise 11.2's order (channel by channel, rows of pixels inside) is F.unfold's, and a linear layer on
    such patches computes what Conv2d(kernel_size=patch, stride=patch) computes: the lesson's claim."""
    images = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    got = patches(images, (3, 2))
    torch.testing.assert_close(got, torch.nn.functional.unfold(images, (3, 2), stride=(3, 2)).transpose(1, 2))
    conv = torch.nn.Conv2d(3, 5, kernel_size=(3, 2), stride=(3, 2)).double()
    linear = got @ conv.weight.flatten(1).T + conv.bias  # (B, n, 5)
    torch.testing.assert_close(linear, conv(images).flatten(2).transpose(1, 2))


# what a hint must not say: a call or a step of the reference solution
GIVEAWAYS = {
    "10.1": ("differs", "previous", "before it", "!=", "is not None", "first piece"),
    "10.2": ("together", "broadcast", "None]", "masked_fill", "-inf", "rule out", "illegal", "argmax", "flat"),
    "11.1": ("x @ w_q", "memory @ w_k", "softmax", "transpose"),
    "11.2": ("permute(", "0, 2, 4", "rows, cols", "transpose", "(B, C, rows"),
}
HINTED = {"10.1": exercises.check_align_labels, "10.2": exercises.check_best_span,
          "11.1": exercises.check_cross_attention,
          "11.2": exercises.check_patchify}


@pytest.mark.parametrize("exercise_id", sorted(GIVEAWAYS))
def test_hints_guide_without_giving_the_method(exercise_id, capsys):
    assert_hint_guides(HINTED[exercise_id], GIVEAWAYS[exercise_id], capsys)
