"""What makes the course's plots readable, checked on the objects fmteach.viz returns: labels a
learner can read, legends off the data, a run that lies on another still visible, a baseline drawn
above the curve that reaches it."""

import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fmteach import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_single_characters_stay_upright_words_turn():
    weights = torch.softmax(torch.randn(2, 3, 5, 5), -1)  # (layers, heads, T, T)
    fig = viz.plot_attention_grid(weights, list("To be"), tick_fontsize=9, axis_labels=True, colorbar=True)
    bottom_left = fig.axes[3]  # layer 1, head 0: the panel with both token axes
    assert {t.get_rotation() for t in bottom_left.get_xticklabels()} == {0.0}
    assert {t.get_fontsize() for t in bottom_left.get_yticklabels()} == {9.0}
    ax = viz.plot_attention(weights[0, 0], ["the", "cat", "sat", "on", "it"])
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {90.0}
    ax = viz.plot_attention(torch.softmax(torch.randn(40, 40), -1), list("abcdefghij" * 4))
    assert {t.get_rotation() for t in ax.get_xticklabels()} == {0.0}
    assert {t.get_fontsize() for t in ax.get_xticklabels()} == {8.0}  # many labels: a smaller font


def test_lm_losses_evaluations_are_not_joined():
    result = types.SimpleNamespace(step_losses=[4.0, 3.0, 2.5, 2.4],
                                   history=[{"step": 0, "train_loss": 4.1, "val_loss": 4.1},
                                            {"step": 3, "train_loss": 2.4, "val_loss": 2.45}])
    ax = viz.plot_lm_losses(result, baseline=3.3).axes[0]
    evaluated = [line for line in ax.lines if line.get_label() in ("train (evaluated)", "validation (held-out plays)")]
    assert len(evaluated) == 2 and all(line.get_linestyle() == "None" for line in evaluated)


def test_mlm_curves_baseline_above_the_curve_and_plain_perplexity_ticks():
    history = [{"step": s, "train_loss": 9 - s / 100, "mlm_loss": 9 - s / 120, "accuracy_at_mask": a, "perplexity": p}
               for s, a, p in ((0, 0.0, 8000.0), (100, 0.062, 900.0), (200, 0.062, 740.0))]
    loss_ax, acc_ax, ppl_ax = viz.plot_mlm_curves(history, baseline=0.062).axes
    curve, line = acc_ax.lines[0], acc_ax.lines[1]
    assert line.get_label().startswith("most frequent token") and line.get_zorder() > curve.get_zorder()
    assert acc_ax.get_ylim()[1] > 0.062 * 1.2  # the line is not drawn on the frame
    ppl_ax.figure.canvas.draw()
    labels = [t.get_text() for t in ppl_ax.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in t and "times" not in t for t in labels)
    assert not [t.get_text() for t in ppl_ax.get_yticklabels(minor=True) if t.get_text()]


def test_plateau_exit_legend_is_off_the_accuracy_panel():
    evals = [{"step": s, "mlm_loss": 6 - s / 2000, "accuracy_at_mask": 0.06 if s < 2000 else 0.2,
              "top5_at_mask": 0.18 if s < 2000 else 0.4} for s in range(0, 4001, 500)]
    fig = viz.plot_plateau_exit(evals, baseline=0.06, others={"previous model": 0.068})
    loss_ax, acc_ax = fig.axes
    assert acc_ax.get_legend() is None and len(fig.legends) == 1
    assert "unigram plateau" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_accuracy_curves_later_runs_thinner_legends_below():
    history = [{"epoch": e, "train_accuracy": 1.0, "eval_accuracy": 0.7, "eval_loss": 0.6} for e in (1, 2, 3)]
    axes = viz.plot_accuracy_curves({"plain": history, "same again": history})
    widths = [line.get_linewidth() for line in axes[1].lines]
    assert widths[0] > widths[1]  # the second run, identical, shows inside the first
    for ax in axes:
        anchor = ax.get_legend().get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        assert anchor.y0 < 0  # below the panel
