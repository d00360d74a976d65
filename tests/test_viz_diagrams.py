"""The course's diagrams are drawn by fmteach.viz: each returns a Figure holding the labelled boxes
the lessons talk about (a box's patch carries its label as gid)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fmteach import viz  # noqa: E402


def boxes(fig):
    return [p.get_gid() for ax in fig.axes for p in ax.patches if p.get_gid()]


def texts(fig):
    return {t.get_text() for ax in fig.axes for t in ax.texts} | {ax.get_title() for ax in fig.axes}


@pytest.mark.parametrize("draw, expected", [
    (viz.attention_flow_diagram,
     ["queries' tokens", "keys' tokens", "Q = X_q W_Q", "K = X_kv W_K", "V = X_kv W_V", "QKᵀ / √d_k", "mask",
      "softmax", "A V", "output"]),
    (viz.gpt_vs_bert_diagram,
     ["the  cat  sat", "token + position embedding", "N × decoder block", "LM head (tied)", "next token: 'on'",
      "[CLS] the [MASK] sat [SEP]", "token + position + segment", "N × encoder block", "MLM head",
      "masked token: 'cat'"]),
])
def test_diagrams_hold_their_labelled_boxes(draw, expected):
    fig = draw()
    try:
        assert isinstance(fig, Figure)
        assert boxes(fig) == expected
        assert set(expected) <= texts(fig)  # each box shows its label
    finally:
        plt.close(fig)


def test_transformer_block_diagram_orders_layernorm_as_pre_and_post_ln():
    fig = viz.transformer_block_diagram()
    try:
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        pre, post = ([p.get_gid() for p in ax.patches if p.get_gid()] for ax in fig.axes)
        assert "pre-LN" in fig.axes[0].get_title() and "post-LN" in fig.axes[1].get_title()
        # pre-LN: LayerNorm before each sub-layer, the sum after it; post-LN: the sum, then LayerNorm
        assert pre == ["x (residual stream)", "LayerNorm 1", "multi-head attention", "⊕", "LayerNorm 2",
                       "feed-forward (FFN)", "⊕", "to the next block"]
        assert post == ["x", "multi-head attention", "⊕", "LayerNorm 1", "feed-forward (FFN)", "⊕", "LayerNorm 2",
                        "to the next block"]
        residual_arrows = [p for p in fig.axes[0].patches if type(p).__name__ == "FancyArrowPatch"
                           and p.get_edgecolor()[:3] != (0.26666666666666666,) * 3]
        assert len(residual_arrows) == 2  # one residual connection around each sub-layer
    finally:
        plt.close(fig)


def test_gpt_vs_bert_draws_each_attention_mask():
    fig = viz.gpt_vs_bert_diagram()
    try:
        masks = [inset.images[0].get_array() for ax in fig.axes for inset in ax.child_axes if inset.images]
        assert len(masks) == 2
        causal, full = masks
        assert (causal[0, 1:] == 0).all() and (causal.diagonal() == 1).all()  # GPT: nothing above the diagonal
        assert (full == 1).all()                                              # BERT: every token sees every token
    finally:
        plt.close(fig)


def test_course_map_has_a_row_for_every_lesson():
    """The README's course map: one box per notebook (notebooks/NN_*.ipynb), in order, each showing
    its number, title, what is built and what it proves."""
    from pathlib import Path

    from fmteach.viz.diagrams import COURSE_LESSONS

    folder = Path(__file__).resolve().parents[1] / "notebooks"
    notebooks = sorted(p.name[:2] for p in folder.glob("[0-9][0-9]_*.ipynb"))
    assert [number for number, *_ in COURSE_LESSONS] == notebooks
    fig = viz.course_map()
    try:
        assert isinstance(fig, Figure)
        assert boxes(fig) == [f"{number} {title}" for number, title, *_ in COURSE_LESSONS]
        shown = " ".join(texts(fig)).replace("\n", " ")
        for number, title, part, builds, proves in COURSE_LESSONS:
            for text in (number, title, part, builds, proves):
                assert text in shown, text
        assert {"lesson", "you build", "it proves"} <= texts(fig)
    finally:
        plt.close(fig)


def test_course_map_bands_consecutive_lessons_of_one_part():
    lessons = [("01", "A", "first", "a", "b"), ("02", "B", "first", "c", "d"), ("03", "C", "second", "e", "f")]
    fig = viz.course_map(lessons)
    try:
        assert boxes(fig) == ["01 A", "02 B", "03 C"]
        assert [t.get_text() for t in fig.axes[0].texts if t.get_rotation() == 90] == ["first", "second"]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="at least one lesson"):
        viz.course_map([])
