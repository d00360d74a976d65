"""Lesson 11, translation and images: one head of cross-attention (11.1), and images cut into patches (11.2).
(The lesson's "predict, then run" question is measured: :func:`~._checking.check_measured_prediction`.)"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._checking import _add_solution, _call, _close, _exercise, _forbidden, _fused_attention_calls, _NotAttempted

__all__ = ["check_cross_attention", "check_patchify"]


def check_cross_attention(fn: Callable) -> None:
    """``fn(x (B, L, D), memory (B, S, D), w_q, w_k, w_v) -> (B, L, Dv)``: one head of cross-attention,
    ``q = x @ w_q``, ``k = memory @ w_k``, ``v = memory @ w_v``, without any library attention call."""
    hint = ("it is lesson 01's attention; only the sources change: which sequence asks (queries) and which one "
            "answers (keys and values)? The weights need one row per decoder position")
    forbidden = (*_fused_attention_calls(), "fmteach.attention.attend", "torch.nn.MultiheadAttention.forward")
    with _exercise("cross-attention, one head", hint):
        gen = torch.Generator().manual_seed(11)
        for B, L, S, D, Dk, Dv in ((2, 3, 5, 8, 4, 6), (1, 7, 2, 6, 6, 3)):  # L != S: who asks, who answers
            x, memory = torch.randn(B, L, D, generator=gen, dtype=torch.float64), torch.randn(B, S, D, generator=gen, dtype=torch.float64)
            w_q, w_k = torch.randn(D, Dk, generator=gen, dtype=torch.float64), torch.randn(D, Dk, generator=gen, dtype=torch.float64)
            w_v = torch.randn(D, Dv, generator=gen, dtype=torch.float64)
            q, k, v = x @ w_q, memory @ w_k, memory @ w_v
            expected = torch.softmax(q @ k.transpose(-2, -1) / Dk ** 0.5, dim=-1) @ v
            with _forbidden(*forbidden):
                got = _call(fn, x, memory, w_q, w_k, w_v)
            if got is ...:
                raise _NotAttempted
            if isinstance(got, torch.Tensor) and got.shape == (B, S, Dv) and L != S:
                raise AssertionError(f"output has shape {tuple(got.shape)}: one row per *memory* position; "
                                     f"cross-attention gives one row per query (decoder) position, (B, L, Dv)")
            _close(got, expected, f"output for L={L}, S={S}", atol=1e-10)


def check_patchify(fn: Callable) -> None:
    """``fn(images (B, H, W), patch) -> (B, n_patches, patch * patch)`` in reading order, without
    ``unfold`` (use reshape and permute)."""
    from ..applications.vit import patchify  # here: lesson 01 imports the exercises without lesson 11

    hint = ("see the image as a grid of blocks: one reshape can give every pixel a block row, a row inside the "
            "block, a block column and a column inside the block; then bring the two block axes together")
    with _exercise("cut images into patches", hint):
        for B, H, W, p in ((2, 8, 8, 2), (3, 6, 8, 2), (1, 9, 6, 3)):  # not all square
            images = torch.arange(B * H * W, dtype=torch.float32).reshape(B, H, W)
            with _forbidden("torch.nn.functional.unfold", "torch.Tensor.unfold"):
                got = _call(fn, images.clone(), p)
            if got is ...:
                raise _NotAttempted
            expected = patchify(images, p)
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got, expected):
                if torch.equal(got, images.reshape(B, -1, p * p)):
                    raise AssertionError(f"{H}x{W} images, patch {p}: a plain reshape cuts rows of pixels, not squares")
            _close(got, expected, f"patches of {H}x{W} images with patch {p}", atol=0)


_add_solution("11.1", '''def cross_attention(x, memory, w_q, w_k, w_v):
    q, k, v = x @ w_q, memory @ w_k, memory @ w_v            # (B, L, dk), (B, S, dk), (B, S, dv)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5    # (B, L, S): one row per decoder position
    return torch.softmax(scores, dim=-1) @ v
''')
_add_solution("11.2", '''def patchify(images, patch):
    B, H, W = images.shape
    grid = images.reshape(B, H // patch, patch, W // patch, patch)   # (B, rows, p, cols, p)
    return grid.permute(0, 1, 3, 2, 4).reshape(B, -1, patch * patch)  # (B, rows, cols, p, p) -> (B, n, p*p)
''')
