"""Diagrams drawn with matplotlib patches: how attention flows, one transformer block, GPT vs BERT, and
the course map the README shows."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["COURSE_LESSONS", "attention_flow_diagram", "course_map", "gpt_vs_bert_diagram", "transformer_block_diagram"]


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


# The course map: (number, short title, part, what you build, what it proves). The numbers are the
# notebooks' (notebooks/NN_*.ipynb; tests/test_viz_diagrams.py checks that every lesson is here).
COURSE_LESSONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("01", "Scaled dot-product attention", "attention, built",
     "softmax(QKᵀ/√d_k)V in five lines",
     "equals PyTorch's attention; why √d_k, measured; reproduces MiniLM's layer 0"),
    ("02", "Masking", "attention, built",
     "padding and causal masks; BERT's 15 % masking (80/10/10)",
     "no token sees the future; equal to Hugging Face's MLM collator"),
    ("03", "The transformer block", "attention, built",
     "MiniGPT: multi-head attention, feed-forward, residuals",
     "its logits equal GPT-2's; without residuals 48 blocks collapse"),
    ("04", "Training a small transformer", "pretraining",
     "MiniGPT trained on Shakespeare: loop, schedule, sampling",
     "loss far below the unigram baseline on unseen plays; exact resume"),
    ("05", "Pretraining a mini-BERT", "pretraining",
     "WordPiece; BERT's masked-LM pretraining",
     "what a small masked LM learns from 38 plays, and what it does not"),
    ("06", "BERT inside out", "using BERT",
     "our MiniBert, holding real MiniLM weights",
     "every hidden state equals Hugging Face's; where each layer's heads look"),
    ("07", "Fine-tuning BERT", "using BERT",
     "Trainer and a plain PyTorch loop; thresholds and calibration",
     "the two loops agree; accuracy vs F1 on imbalanced data"),
    ("08", "Zero- and few-shot learning", "using BERT",
     "sentence embeddings, zero-shot, cloze prompts, a probe vs SetFit",
     "which method wins at how many labels, over seeded draws"),
    ("09", "Challenges", "in practice",
     "leakage and overfitting checks, memorisation and bias probes",
     "a naive TREC split leaks its test set into training"),
    ("10", "One encoder, many tasks", "in practice",
     "sentence-pair, tagging and answer-span heads",
     "each head equals its BertFor… class; NSP against a cosine control"),
    ("11", "Translation and images", "in practice",
     "cross-attention, an encoder–decoder, a tiny ViT",
     "cross-attention equals PyTorch's; a ViT vs logistic regression on digits"),
    ("12", "Adapt, deploy, multimodal", "in practice",
     "LoRA from scratch; bf16 and int8 deployment; a tiny CLIP",
     "LoRA equals peft's; what int8 saves on MiniLM; prompts classify digits"),
)

_PART_COLOURS = ("#cfe2f3", "#d9ead3", "#fce5cd", "#ead1dc", "#fff2cc", "#eeeeee")


def course_map(lessons: Sequence[tuple[str, str, str, str, str]] = COURSE_LESSONS):
    """The course on one page: a row per lesson (number, title, what you build, what it proves), the
    rows banded by part. ``lessons`` holds (number, title, part, builds, proves); consecutive lessons
    with the same part share a band. Returns the Figure; each lesson's box has gid "NN title".

    Drawn for the README at GitHub's width: ``course_map().savefig("docs/course_map.png", dpi=100)``."""
    import textwrap

    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch

    if not lessons:
        raise ValueError("course_map needs at least one lesson, got none")
    row, top = 0.74, 0.62
    height = top + row * len(lessons) + 0.1
    fig = Figure(figsize=(10, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(height, 0)
    ax.axis("off")
    columns = ((1.05, "lesson", 24), (3.8, "you build", 32), (6.72, "it proves", 37))
    for x, header, _ in columns:
        ax.text(x, 0.36, header, fontsize=12, fontweight="bold", color="#333333", va="center")
    parts: list[tuple[str, int, int]] = []  # (part, first row, last row)
    for i, (_, _, part, _, _) in enumerate(lessons):
        if parts and parts[-1][0] == part:
            parts[-1] = (part, parts[-1][1], i)
        else:
            parts.append((part, i, i))
    for k, (part, first, last) in enumerate(parts):
        y0, y1 = top + first * row + 0.04, top + (last + 1) * row - 0.04
        colour = _PART_COLOURS[k % len(_PART_COLOURS)]
        ax.add_patch(FancyBboxPatch((0.08, y0), 0.34, y1 - y0, boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=colour, edgecolor="none"))
        ax.text(0.25, (y0 + y1) / 2, part, rotation=90, ha="center", va="center", fontsize=9.5, color="#333333")
        for i in range(first, last + 1):
            number, title, _, builds, proves = lessons[i]
            y = top + (i + 0.5) * row
            ax.add_patch(FancyBboxPatch((0.5, y - row / 2 + 0.05), 9.42, row - 0.1,
                                        boxstyle="round,pad=0,rounding_size=0.08", facecolor=colour,
                                        edgecolor="#999999", linewidth=0.8, alpha=0.55, gid=f"{number} {title}"))
            ax.add_patch(Circle((0.78, y), 0.2, facecolor="white", edgecolor="#444444", linewidth=1.0))
            ax.text(0.78, y, number, ha="center", va="center", fontsize=10.5, fontweight="bold")
            for (x, _, width), text, weight in zip(columns, (title, builds, proves), ("bold", "normal", "normal")):
                ax.text(x, y, textwrap.fill(text, width, break_on_hyphens=False), ha="left", va="center",
                        fontsize=11, fontweight=weight, linespacing=1.15)
    return fig
