"""Pictures of attention: heatmaps with tokens on both axes, for one head or a grid of heads/layers."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["plot_attention", "plot_attention_grid", "plot_mask"]


def _as_2d(weights, what: str) -> torch.Tensor:
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(f"{what} has shape {tuple(w.shape)}: expected (queries, keys)")
    return w


def _check_tokens(tokens: Sequence[str] | None, n: int, axis: str) -> None:
    if tokens is not None and len(tokens) != n:
        raise ValueError(f"{len(tokens)} {axis} tokens given for a matrix with {n} {axis}")


def _key_rotation(tokens: Sequence[str]) -> int:
    """Single characters stay upright under their column (a turned letter is hard to read); words turn 90°."""
    return 0 if all(len(t) <= 1 for t in tokens) else 90


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
    fontsize = 8 if max(w.shape) > 30 else None  # long character sequences: a smaller font keeps labels apart
    if tokens is not None:
        ax.set_yticks(range(w.shape[0]), tokens, fontsize=fontsize)
    if key_tokens is not None:
        ax.set_xticks(range(w.shape[1]), key_tokens, rotation=_key_rotation(key_tokens), fontsize=fontsize)
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
    axis_labels: bool = False,
    colorbar: bool = False,
    tick_fontsize: float = 8,
):
    """A grid of heatmaps. ``weights`` is ``(heads, T, S)`` or ``(layers, heads, T, S)`` (a leading
    batch dim of 1 is dropped). Several layers: one row per layer. One layer: heads wrap after
    ``ncols`` panels. ``axis_labels`` names the axes once for the whole grid (keys across, queries
    down, as :func:`plot_attention` does); ``colorbar`` adds one colour bar (0 to 1) beside it.
    Token labels (at most 16 tokens) are drawn on the outer panels only, in ``tick_fontsize``;
    single characters stay upright."""
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
    layout = "constrained" if axis_labels or colorbar else None  # room for the shared labels and the bar
    fig, axes = plt.subplots(rows, cols, figsize=(cell_size * cols, cell_size * rows), squeeze=False, layout=layout)
    show_labels = tokens is not None and w.shape[-1] <= 16
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= len(panels):
            ax.axis("off")
            continue
        layer, head = panels[index]
        r, c = divmod(index, cols)
        image = ax.imshow(w[layer, head].numpy(), cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_title(f"layer {layer} head {head}" if len(layers) == 1 else f"head {head}", fontsize=9)
        if len(layers) > 1 and c == 0:
            ax.set_ylabel(f"layer {layer}", fontsize=9)
        if show_labels and index + cols >= len(panels):  # bottom panel of its column
            ax.set_xticks(range(len(tokens)), tokens, rotation=_key_rotation(tokens), fontsize=tick_fontsize)
        if show_labels and c == 0:
            ax.set_yticks(range(len(tokens)), tokens, fontsize=tick_fontsize)
    if suptitle:
        fig.suptitle(suptitle)
    if axis_labels:
        fig.supxlabel("key (attended to)", fontsize=10)
        fig.supylabel("query (attending)", fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=axes, shrink=0.5, label="attention weight")
    if layout is None:
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
