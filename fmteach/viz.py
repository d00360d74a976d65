"""Pictures of attention: heatmaps with tokens on both axes, for one head or a grid of heads/layers."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["plot_attention", "plot_attention_grid", "plot_mask", "attention_flow_diagram",
           "transformer_block_diagram", "gpt_vs_bert_diagram"]


def _as_2d(weights, what: str) -> torch.Tensor:
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(f"{what} has shape {tuple(w.shape)}: expected (queries, keys)")
    return w


def _check_tokens(tokens: Sequence[str] | None, n: int, axis: str) -> None:
    if tokens is not None and len(tokens) != n:
        raise ValueError(f"{len(tokens)} {axis} tokens given for a matrix with {n} {axis}")


def plot_attention(
    weights,
    tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    annotate: bool | None = None,
    cmap: str = "viridis",
    vmax: float | None = 1.0,
    colorbar: bool = True,
):
    """Heatmap of one head's ``(queries, keys)`` weights: row i = where query token i looks.

    ``tokens`` label the rows (and the columns too, unless ``key_tokens`` is given). Values are
    written in the cells when the matrix is small (≤ 12 × 12) or ``annotate=True``.
    """
    w = _as_2d(weights, "weights")
    key_tokens = tokens if key_tokens is None else key_tokens
    _check_tokens(tokens, w.shape[0], "query")
    _check_tokens(key_tokens, w.shape[1], "key")
    if ax is None:
        size = min(10.0, 2.5 + 0.38 * max(w.shape))
        _, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(w.numpy(), cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    if tokens is not None:
        ax.set_yticks(range(w.shape[0]), tokens)
    if key_tokens is not None:
        ax.set_xticks(range(w.shape[1]), key_tokens, rotation=90)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if annotate or (annotate is None and max(w.shape) <= 12):
        top = float(w.max()) if vmax is None else vmax
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                value = float(w[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if value > 0.6 * top else "white")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_attention_grid(
    weights,
    tokens: Sequence[str] | None = None,
    *,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    ncols: int = 6,
    cell_size: float = 2.2,
    cmap: str = "viridis",
    suptitle: str | None = None,
):
    """A grid of heatmaps. ``weights`` is ``(heads, T, S)`` or ``(layers, heads, T, S)`` (a leading
    batch dim of 1 is dropped). Several layers: one row per layer. One layer: heads wrap after
    ``ncols`` panels."""
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() == 5 and w.shape[1] == 1:  # (layers, batch=1, heads, T, S)
        w = w[:, 0]
    if w.dim() == 3:
        w = w[None]
    if w.dim() != 4:
        raise ValueError(f"weights has shape {tuple(w.shape)}: expected (heads, T, S) or (layers, heads, T, S)")
    _check_tokens(tokens, w.shape[-1], "key")
    layers = list(range(w.shape[0])) if layers is None else list(layers)
    heads = list(range(w.shape[1])) if heads is None else list(heads)
    panels = [(layer, head) for layer in layers for head in heads]
    cols = len(heads) if len(layers) > 1 else min(ncols, len(heads))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell_size * cols, cell_size * rows), squeeze=False)
    show_labels = tokens is not None and w.shape[-1] <= 16
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= len(panels):
            ax.axis("off")
            continue
        layer, head = panels[index]
        r, c = divmod(index, cols)
        ax.imshow(w[layer, head].numpy(), cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_title(f"layer {layer} head {head}" if len(layers) == 1 else f"head {head}", fontsize=9)
        if len(layers) > 1 and c == 0:
            ax.set_ylabel(f"layer {layer}", fontsize=9)
        if show_labels and index + cols >= len(panels):  # bottom panel of its column
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        if show_labels and c == 0:
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_mask(mask, tokens: Sequence[str] | None = None, *, ax=None, title: str | None = None):
    """Draw a ``(T, S)`` bool mask: dark = may attend (True), light = blocked (False)."""
    m = torch.as_tensor(mask).detach().cpu()
    if m.dim() != 2:
        raise ValueError(f"mask has shape {tuple(m.shape)}: pick one (T, S) slice to draw, e.g. mask[0, 0]")
    if m.dtype != torch.bool:
        raise TypeError(f"mask has dtype {m.dtype}: plot_mask draws bool masks (True = may attend)")
    if ax is None:
        size = min(8.0, 1.5 + 0.35 * max(m.shape))
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m.float().numpy(), cmap="Blues", vmin=0.0, vmax=1.3)
    if tokens is not None:
        _check_tokens(tokens, m.shape[0], "query")
        ax.set_yticks(range(m.shape[0]), tokens)
        if m.shape[1] == len(tokens):
            ax.set_xticks(range(m.shape[1]), tokens, rotation=90)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, "✓" if m[i, j] else "·", ha="center", va="center",
                    color="white" if m[i, j] else "grey", fontsize=9)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    return ax



# ----------------------------------------------------------------------------------------------
# Diagrams: boxes and arrows drawn with matplotlib (no external assets). Each box's patch carries
# its label as gid, so a test can find it.

_COLOURS = {"input": "#e8eef7", "proj": "#d6e9c6", "op": "#fce5cd", "norm": "#ead1dc", "attn": "#cfe2f3",
            "ffn": "#fff2cc", "out": "#eeeeee", "head": "#f4cccc"}


def _box(ax, x: float, y: float, label: str, *, kind: str = "op", width: float = 2.2, height: float = 0.62,
         note: str | None = None, fontsize: float = 9.5):
    """A rounded box centred at (x, y) whose patch has gid=label; ``note`` is a smaller second line."""
    from matplotlib.patches import FancyBboxPatch

    patch = FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02,rounding_size=0.1",
                           facecolor=_COLOURS[kind], edgecolor="#444444", linewidth=1.0, gid=label)
    ax.add_patch(patch)
    if note:
        ax.text(x, y + 0.1, label, ha="center", va="center", fontsize=fontsize)
        ax.text(x, y - 0.15, note, ha="center", va="center", fontsize=fontsize - 2, color="#555555")
    else:
        ax.text(x, y, label, ha="center", va="center", fontsize=fontsize)
    return patch


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], *, colour: str = "#444444",
           style: str = "-|>", connection: str = "arc3", linestyle: str = "-"):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour, linewidth=1.1,
                                 connectionstyle=connection, linestyle=linestyle, shrinkA=0, shrinkB=0))


def _canvas(ax, xlim: tuple[float, float], ylim: tuple[float, float], title: str | None = None):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)


def attention_flow_diagram():
    """Lesson 01: the data flow of scaled dot-product attention, from X to softmax(QKᵀ/√d_k)V.
    Returns the Figure (shapes written in every box: L queries, S keys)."""
    fig, ax = plt.subplots(figsize=(11, 3.6))
    _canvas(ax, (-0.4, 16.4), (-0.2, 4.8), "Scaled dot-product attention: who looks at whom, then a weighted average")
    _box(ax, 0.9, 3.6, "queries' tokens", kind="input", width=1.9, note="X_q  (L × d)")
    _box(ax, 0.9, 1.4, "keys' tokens", kind="input", width=1.9, note="X_kv  (S × d)")
    _box(ax, 3.6, 3.6, "Q = X_q W_Q", kind="proj", note="(L × d_k)")
    _box(ax, 3.6, 2.3, "K = X_kv W_K", kind="proj", note="(S × d_k)")
    _box(ax, 3.6, 0.6, "V = X_kv W_V", kind="proj", note="(S × d_v)")
    _box(ax, 6.7, 3.0, "QKᵀ / √d_k", kind="op", note="scores (L × S)")
    _box(ax, 9.5, 4.2, "mask", kind="input", width=1.6, note="blocked → −∞")
    _box(ax, 9.5, 3.0, "softmax", kind="op", width=1.9, note="each row sums to 1")
    _box(ax, 12.2, 1.8, "A V", kind="op", width=1.7, note="weighted average")
    _box(ax, 15.0, 1.8, "output", kind="out", width=1.9, note="(L × d_v)")
    _arrow(ax, (1.85, 3.6), (2.5, 3.6))
    _arrow(ax, (1.85, 1.5), (2.5, 2.2))
    _arrow(ax, (1.85, 1.3), (2.5, 0.7))
    _arrow(ax, (4.7, 3.5), (5.6, 3.1))
    _arrow(ax, (4.7, 2.4), (5.6, 2.9))
    _arrow(ax, (7.8, 3.0), (8.55, 3.0))
    _arrow(ax, (9.5, 3.89), (9.5, 3.31))
    _arrow(ax, (10.45, 2.8), (11.35, 2.0))
    ax.text(10.95, 2.65, "A (L × S)", fontsize=8, color="#555555")
    _arrow(ax, (4.7, 0.6), (11.35, 1.65))
    _arrow(ax, (13.05, 1.8), (14.05, 1.8))
    fig.tight_layout()
    return fig


def _block_column(ax, x: float, steps: Sequence[tuple[str, str]], y0: float, dy: float, residual_pairs):
    """Draw boxes bottom-to-top at x; ``residual_pairs`` = [(from_index, add_index)]: a skip arrow from
    below step ``from_index`` into the ⊕ at ``add_index``."""
    ys = [y0 + i * dy for i in range(len(steps))]
    for i, ((label, kind), y) in enumerate(zip(steps, ys)):
        if label == "⊕":
            from matplotlib.patches import Circle

            ax.add_patch(Circle((x, y), 0.22, facecolor="white", edgecolor="#444444", gid="⊕"))
            ax.text(x, y, "+", ha="center", va="center", fontsize=12)
        else:
            _box(ax, x, y, label, kind=kind, width=2.6, height=0.56)
        if i:
            gap_bottom = ys[i - 1] + (0.22 if steps[i - 1][0] == "⊕" else 0.28)
            gap_top = y - (0.22 if label == "⊕" else 0.28)
            _arrow(ax, (x, gap_bottom), (x, gap_top))
    for start, add in residual_pairs:
        y_from, y_to = ys[start] - dy / 2, ys[add]
        _arrow(ax, (x + 1.3, y_from), (x + 0.22, y_to), colour="#1f77b4", connection="angle,angleA=90,angleB=180")
        ax.plot([x, x + 1.3], [y_from, y_from], color="#1f77b4", linewidth=1.1)
    return ys


def transformer_block_diagram():
    """Lesson 03: one transformer block, pre-LN (GPT-2, this course's MiniGPT) next to post-LN (the
    original Transformer, BERT). Blue arrows are the residual connections."""
    fig, (pre, post) = plt.subplots(1, 2, figsize=(10, 5.6))
    for ax, title in ((pre, "pre-LN (GPT-2, our MiniGPT)"), (post, "post-LN (2017 Transformer, BERT)")):
        _canvas(ax, (-2.2, 2.6), (-0.3, 7.6), title)
    _block_column(pre, 0, [("x (residual stream)", "input"), ("LayerNorm 1", "norm"), ("multi-head attention", "attn"),
                           ("⊕", "op"), ("LayerNorm 2", "norm"), ("feed-forward (FFN)", "ffn"), ("⊕", "op"),
                           ("to the next block", "out")], 0.3, 1.0, [(1, 3), (4, 6)])
    _block_column(post, 0, [("x", "input"), ("multi-head attention", "attn"), ("⊕", "op"), ("LayerNorm 1", "norm"),
                            ("feed-forward (FFN)", "ffn"), ("⊕", "op"), ("LayerNorm 2", "norm"),
                            ("to the next block", "out")], 0.3, 1.0, [(1, 2), (4, 5)])
    pre.text(-2.1, -0.15, "x + f(LN(x)): the stream itself is never normalised", fontsize=8.5, color="#1f77b4")
    post.text(-2.1, -0.15, "LN(x + f(x)): every block normalises the stream", fontsize=8.5, color="#1f77b4")
    fig.tight_layout()
    return fig


def gpt_vs_bert_diagram():
    """Lesson 05: GPT (decoder, causal mask, next-token head) next to BERT (encoder, bidirectional,
    masked-language-model head), with each one's attention mask drawn as a small matrix."""
    fig, (gpt, bert) = plt.subplots(1, 2, figsize=(11, 5.8))
    _canvas(gpt, (-2.6, 3.6), (-0.4, 7.4), "GPT: causal language model")
    _canvas(bert, (-2.6, 3.6), (-0.4, 7.4), "BERT: masked language model")
    for ax, steps in (
        (gpt, [("the  cat  sat", "input", None), ("token + position embedding", "proj", None),
               ("N × decoder block", "attn", "pre-LN, causal mask"), ("LM head (tied)", "head", None),
               ("next token: 'on'", "out", None)]),
        (bert, [("[CLS] the [MASK] sat [SEP]", "input", None), ("token + position + segment", "proj", None),
                ("N × encoder block", "attn", "post-LN, bidirectional"), ("MLM head", "head", None),
                ("masked token: 'cat'", "out", None)]),
    ):
        ys = [0.3 + 1.5 * i for i in range(len(steps))]
        for i, ((label, kind, note), y) in enumerate(zip(steps, ys)):
            _box(ax, 0, y, label, kind=kind, width=3.4, height=0.7, note=note)
            if i:
                _arrow(ax, (0, ys[i - 1] + 0.35), (0, y - 0.35))
    n = 5
    for ax, mask, caption in ((gpt, torch.ones(n, n).tril().numpy(), "token i sees 0..i"),
                              (bert, torch.ones(n, n).numpy(), "every token sees all")):
        inset = ax.inset_axes((2.0, 2.6, 1.4, 1.4), transform=ax.transData)
        inset.imshow(mask, cmap="Blues", vmin=0, vmax=1.3)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_title("attention mask", fontsize=8)
        inset.set_xlabel(caption, fontsize=7.5)
    gpt.text(-2.5, -0.35, "loss: every position predicts the next token", fontsize=8.5)
    bert.text(-2.5, -0.35, "loss: only the ~15% selected tokens are predicted", fontsize=8.5)
    fig.tight_layout()
    return fig
