"""The attention pictures: tokens on the axes, small matrices annotated, shared labels and a colour bar
only when asked, clear errors for a wrong shape or token count."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from fmteach import viz
from fmteach.attention import scaled_dot_product_attention
from fmteach.masks import causal_mask, padding_mask


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
