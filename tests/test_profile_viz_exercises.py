"""Profiles, devices and seeds; the attention pictures; the exercise checkers."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from fmteach import exercises, viz
from fmteach.attention import scaled_dot_product_attention
from fmteach.masks import causal_mask, padding_mask
from fmteach.profile import by_profile, get_device, get_profile, set_seed


def test_profile_switch(monkeypatch):
    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert get_profile() == "smoke" and by_profile(1, 2, 3) == 1
    monkeypatch.setenv("FMTEACH_PROFILE", "GPU")
    assert get_profile() == "gpu" and by_profile(1, 2, 3) == 3
    monkeypatch.delenv("FMTEACH_PROFILE")
    assert get_profile() == ("gpu" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("FMTEACH_PROFILE", "fast")
    with pytest.raises(ValueError, match="FMTEACH_PROFILE='fast' is not a profile; choose one of smoke, cpu, gpu"):
        get_profile()


def test_device_and_seed():
    assert get_device().type in ("cuda", "mps", "cpu")
    assert get_device("cpu") == torch.device("cpu")
    set_seed(7)
    a = torch.randn(3)
    set_seed(7)
    assert torch.equal(a, torch.randn(3))
    with pytest.raises(TypeError):
        set_seed(1.5)


def test_plot_attention_and_grid():
    tokens = ["the", "quick", "fox"]
    _, w = scaled_dot_product_attention(torch.randn(2, 3, 3, 4), torch.randn(2, 3, 3, 4), torch.randn(2, 3, 3, 4))
    ax = viz.plot_attention(w[0, 0], tokens, title="head 0")
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    assert len(ax.texts) == 9  # small matrices are annotated
    fig = viz.plot_attention_grid(w, tokens)  # (layers=2, heads=3, T, S)
    assert len(fig.axes) == 6 and fig.get_supxlabel() == ""  # no shared labels, no colour bar unless asked
    fig = viz.plot_attention_grid(w, tokens, axis_labels=True, colorbar=True)
    assert len(fig.axes) == 7 and fig.axes[-1].get_ylabel() == "attention weight"  # six panels and the bar
    assert (fig.get_supxlabel(), fig.get_supylabel()) == ("key (attended to)", "query (attending)")
    with pytest.raises(ValueError, match=r"4 query tokens given for a matrix with 3 query"):
        viz.plot_attention(w[0, 0], tokens + ["x"])
    with pytest.raises(ValueError, match=r"expected \(queries, keys\)"):
        viz.plot_attention(w[0])
    ax = viz.plot_mask(causal_mask(3), tokens)
    assert [t.get_text() for t in ax.texts].count("✓") == 6
    with pytest.raises(ValueError, match=r"pick one \(T, S\) slice"):
        viz.plot_mask(padding_mask(torch.tensor([[1, 0]])))
    matplotlib.pyplot.close("all")


def _manual_attention(q, k, v, mask):  # exercise 01.1 forbids the fused attention functions
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


def _not_done(*args):
    raise NotImplementedError


def test_checkers_accept_right_answers(capsys):
    exercises.check_attention(_manual_attention)
    exercises.check_causal_mask(lambda L, S: torch.arange(S)[None, :] <= torch.arange(S - L, S)[:, None])
    exercises.check_masked_cross_entropy(lambda logits, labels: torch.stack(  # one weight per sentence
        [torch.nn.functional.cross_entropy(lg[lb != -100], lb[lb != -100]) for lg, lb in zip(logits, labels)
         if (lb != -100).any()]).mean())
    exercises.check_encoder_layer_parameters(384, 1536, 1_774_464)
    exercises.check_next_token_attention(lambda w: torch.diagonal(w, offset=1, dim1=-2, dim2=-1).mean(-1))
    assert capsys.readouterr().out.count("✅") == 5


def test_checkers_reject_wrong_answers_with_hints():
    with pytest.raises(AssertionError, match=r"output with a \(B, 1, L, S\) mask .*differs"):
        exercises.check_attention(lambda q, k, v, m: _manual_attention(q, k, v, None))
    with pytest.raises(AssertionError, match="lets some query see a later key"):
        exercises.check_causal_mask(lambda L, S: torch.arange(S)[None, :] >= torch.arange(S - L, S)[:, None])
    with pytest.raises(AssertionError, match="off by"):
        exercises.check_encoder_layer_parameters(384, 1536, 1_774_000)
    with pytest.raises(AssertionError, match="per-head averages differ"):
        exercises.check_next_token_attention(lambda w: torch.diagonal(w, offset=-1, dim1=-2, dim2=-1).mean(-1))
    with pytest.raises(AssertionError, match=r"the loss for B=2, T=6, V=11, labelled positions per sentence \[1, 2\] differs"):
        exercises.check_masked_cross_entropy(lambda logits, labels: logits.logsumexp(-1).mean())


def test_checkers_tolerate_unattempted_exercises(capsys):
    exercises.check_attention(_not_done)
    exercises.check_causal_mask(_not_done)
    assert capsys.readouterr().out.count("not attempted yet") == 2


def test_lesson_06_hints_name_no_step_of_the_solution(capsys):
    exercises.check_encoder_layer_parameters(384, 1536, ...)
    exercises.check_next_token_attention(_not_done)
    hints = [line.split("Hint: ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert len(hints) == 2 and all("?" in hint for hint in hints)
    assert not [word for word in ("a*b", "a * b", "b biases") if word in hints[0]], hints[0]
    assert not [word for word in ("diagonal", "offset", "then average") if word in hints[1]], hints[1]
