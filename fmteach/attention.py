r"""Scaled dot-product attention, written from scratch.

.. math::  \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V

Shapes: ``q`` is ``(..., L, E)``, ``k`` is ``(..., S, E)``, ``v`` is ``(..., S, Ev)``; the leading
dimensions broadcast. The output is ``(..., L, Ev)`` and the weights ``(..., L, S)``.

Mask convention, exactly as :func:`torch.nn.functional.scaled_dot_product_attention`:

* a **boolean** mask: ``True`` means "query may attend to this key", ``False`` blocks it;
* a **float** mask is *added* to the scores (``0`` keeps, ``-inf`` blocks, other values bias).

The mask must broadcast to ``(..., L, S)`` without growing it. A query row whose keys are *all*
blocked gets zero weights and a zero output -- never NaN -- since there is nothing it may look at.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .masks import causal_mask, combine_masks

__all__ = ["scaled_dot_product_attention", "attend", "stable_softmax", "check_qkv", "check_mask"]


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Size:
    """Validate q, k, v; return the broadcast score shape ``(..., L, S)``. Raises a clear error."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} has shape {_shape(t)}: expected at least 2 dims (..., seq_len, dim)")
        if not t.is_floating_point():
            raise TypeError(f"{name} has dtype {t.dtype}: expected a floating dtype (float32, float64, ...)")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}; cast them to one dtype")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v are on different devices: {q.device}, {k.device}, {v.device}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q has shape {_shape(q)}, k has {_shape(k)}: last dims (head dim d_k) must match"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k has shape {_shape(k)}, v has {_shape(v)}: k and v need the same sequence length (dim -2)"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"leading dims of q {_shape(q)}, k {_shape(k)}, v {_shape(v)} do not broadcast"
        ) from None
    return torch.Size((*batch, q.shape[-2], k.shape[-2]))


def check_mask(mask: torch.Tensor, score_shape: torch.Size, device: torch.device) -> None:
    """Validate an attention mask against the score shape ``(..., L, S)``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"mask has dtype {mask.dtype}: use a bool mask (True = may attend) or a float mask "
            f"(added to the scores); convert a 0/1 mask with mask.bool()"
        )
    if mask.device != device:
        raise ValueError(f"mask is on {mask.device} but q, k, v are on {device}")
    try:
        grown = torch.broadcast_shapes(mask.shape, score_shape)
    except RuntimeError:
        grown = None
    if grown != score_shape:
        raise ValueError(
            f"mask has shape {_shape(mask)} which does not broadcast to the attention scores "
            f"{tuple(score_shape)} (..., L, S)"
        )


def stable_softmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax that subtracts the row maximum first (no overflow) and maps all -inf rows to zeros."""
    row_max = scores.amax(dim=dim, keepdim=True)
    # A row of only -inf has max -inf; (-inf) - (-inf) would be NaN, so shift it by 0 instead.
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exp = torch.exp(scores - row_max)  # every entry in [0, 1]; blocked entries are exactly 0
    total = exp.sum(dim=dim, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ · scale + mask) v, returning ``(output, weights)``.

    q ``(..., L, E)``, k ``(..., S, E)``, v ``(..., S, Ev)`` -> output ``(..., L, Ev)``, weights
    ``(..., L, S)``. ``mask``: bool (True = may attend) or float (added), broadcastable to
    ``(..., L, S)``. ``scale`` defaults to ``1/sqrt(E)``. With ``dropout_p > 0`` dropout is applied
    to the weights (as torch's function does whenever ``dropout_p > 0``), and the returned weights
    are the ones actually used, so ``output == weights @ v`` always holds.
    """
    score_shape = check_qkv(q, k, v)
    if mask is not None:
        check_mask(mask, score_shape, q.device)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p={dropout_p} must be in [0, 1)")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (..., L, S)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = stable_softmax(scores, dim=-1)
    if dropout_p > 0.0:
        keep = torch.empty_like(weights).bernoulli_(1.0 - dropout_p, generator=generator)
        weights = weights * keep / (1.0 - dropout_p)
    return torch.matmul(weights, v), weights


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The attention call of every fmteach model: two paths, the same numbers.

    ``need_weights=True`` takes the teaching path above and returns the weights (for pictures);
    otherwise torch's fused kernel runs (flash attention on a GPU; the (L, S) weights are never
    stored) and the weights are ``None``. ``is_causal`` adds the causal mask.
    """
    if need_weights:
        if is_causal:
            mask = combine_masks(causal_mask(q.shape[-2], device=q.device), mask)
        return scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p)
    if is_causal and mask is not None:  # torch takes either a mask or is_causal, not both
        mask, is_causal = combine_masks(causal_mask(q.shape[-2], device=q.device), mask), False
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal), None
