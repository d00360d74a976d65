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


def _patches_in_order(images: torch.Tensor, patch: tuple[int, int], order: tuple[int, ...]) -> torch.Tensor:
    """The images' ``(B, C, rows, ph, cols, pw)`` grid, its axes put in ``order``, flattened to ``(B, n, C * ph * pw)``:
    the right order and the usual wrong ones, for the checker's messages."""
    B, C, H, W = images.shape
    ph, pw = patch
    grid = images.reshape(B, C, H // ph, ph, W // pw, pw).permute(*order)
    return grid.reshape(B, (H // ph) * (W // pw), C * ph * pw)


def check_patchify(fn: Callable) -> None:
    """``fn(images (B, C, H, W), patch (ph, pw)) -> (B, (H // ph) * (W // pw), C * ph * pw)``: patches in
    reading order; inside a patch its values channel by channel, each channel's ``ph x pw`` pixels row by
    row (the order of the weights of ``nn.Conv2d(C, D, kernel_size=patch, stride=patch)``). Without
    ``unfold``: reshape and permute. Images and patches are not square, and some have several channels."""
    hint = ("write down the shape you get from one reshape that splits the height and the width each into "
            "(which block, where inside the block): which of its axes say *which* patch a value belongs to, "
            "and which say *where inside* that patch it sits? The output wants all of the first kind, then "
            "all of the second, each kind in the order the exercise states")
    mistakes = {  # axes of (B, C, rows, ph, cols, pw) in a wrong order -> what the learner did
        (0, 2, 4, 3, 5, 1): "inside each patch the channels vary fastest (ph, pw, C); the order asked is channel "
                            "by channel (C, ph, pw), as a Conv2d stores its weights",
        (0, 4, 2, 1, 3, 5): "the patches go down the columns first; reading order goes along a row of patches, "
                            "then to the next row",
        (0, 2, 4, 1, 5, 3): "inside each patch the pixels go down the columns; read each channel's pixels row by row",
        (0, 1, 2, 4, 3, 5): "one output row holds values of several patches: the channel axis is still in front of "
                            "the axes that say which patch",
    }
    with _exercise("cut images into patches", hint):
        for B, C, H, W, patch in ((2, 1, 6, 8, (3, 2)), (1, 3, 4, 6, (2, 3)), (2, 2, 9, 4, (3, 2))):
            images = torch.arange(B * C * H * W, dtype=torch.float32).reshape(B, C, H, W)
            (ph, pw), what = patch, f"{C}-channel {H}x{W} images, patch (ph, pw) = {patch}"
            try:
                with _forbidden("torch.nn.functional.unfold", "torch.Tensor.unfold"):
                    got = _call(fn, images.clone(), patch)
            except NotImplementedError:  # a RuntimeError too: "not attempted yet", not a mistake
                raise
            except (RuntimeError, TypeError, ValueError) as exc:  # a reshape that does not fit, patch used as a number
                raise AssertionError(f"{what}: your function raised {type(exc).__name__}: {exc}. The images are "
                                     f"(B, C, H, W) = {(B, C, H, W)} and patch is a (height, width) pair") from None
            if got is ...:
                raise _NotAttempted
            expected = torch.stack([images[:, :, r:r + ph, c:c + pw].reshape(B, C * ph * pw)  # one patch at a time
                                    for r in range(0, H, ph) for c in range(0, W, pw)], dim=1)
            if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got, expected):
                if torch.equal(got, images.reshape(B, -1, C * ph * pw)):
                    raise AssertionError(f"{what}: a plain reshape cuts runs of pixels along the rows, "
                                         f"not {ph}x{pw} rectangles")
                for order, why in mistakes.items():
                    if torch.equal(got, _patches_in_order(images, patch, order)):
                        raise AssertionError(f"{what}: {why}")
            _close(got, expected, f"patches of {what}", atol=0)


_add_solution("11.1", '''def cross_attention(x, memory, w_q, w_k, w_v):
    q, k, v = x @ w_q, memory @ w_k, memory @ w_v            # (B, L, dk), (B, S, dk), (B, S, dv)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5    # (B, L, S): one row per decoder position
    return torch.softmax(scores, dim=-1) @ v
''')
_add_solution("11.2", '''def patchify(images, patch):
    B, C, H, W = images.shape
    ph, pw = patch
    grid = images.reshape(B, C, H // ph, ph, W // pw, pw)   # (B, C, rows, ph, cols, pw)
    grid = grid.permute(0, 2, 4, 1, 3, 5)                   # (B, rows, cols, C, ph, pw): which patch, then inside it
    return grid.reshape(B, (H // ph) * (W // pw), C * ph * pw)
''')
