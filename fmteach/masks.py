"""Attention masks (padding, causal) and BERT's masked-language-model token masking.

Every attention mask here follows torch's convention: **bool, True = may attend**.
"""

from __future__ import annotations

import torch

from ._checks import check_positive

__all__ = [
    "causal_mask",
    "padding_mask",
    "combine_masks",
    "bool_mask_to_additive",
    "mask_tokens_for_mlm",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # the label PyTorch's cross_entropy (and Hugging Face) skip


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(seq_len, seq_len)`` bool mask, True on and below the diagonal: token i sees tokens 0..i."""
    check_positive(seq_len=seq_len)
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's ``(B, S)`` 0/1 ``attention_mask`` into a ``(B, 1, 1, S)`` bool mask.

    The result broadcasts to attention scores ``(B, H, T, S)``: every query may look at every real
    key (1) and at no padding key (0).
    """
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor, got {type(attention_mask).__name__}")
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)}: expected (batch, seq_len) of 0/1"
        )
    if attention_mask.is_floating_point() or attention_mask.is_complex():
        raise TypeError(f"attention_mask has dtype {attention_mask.dtype}: expected 0/1 integers or bool")
    if attention_mask.dtype != torch.bool and not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
        raise ValueError("attention_mask must contain only 0 (padding) and 1 (real token)")
    return attention_mask.bool()[:, None, None, :]


def bool_mask_to_additive(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Bool mask (True = may attend) -> float mask to add to scores: 0 where allowed, -inf where not."""
    if mask.dtype != torch.bool:
        raise TypeError(f"expected a bool mask, got dtype {mask.dtype}")
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return additive.masked_fill(~mask, float("-inf"))


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Combine masks so a key is allowed only if every mask allows it.

    Bool masks are AND-ed; if any mask is float, all are converted to additive form and summed.
    ``None`` entries are skipped; ``combine_masks()`` of nothing (or only ``None``) is ``None``.
    Shapes broadcast: ``combine_masks(causal_mask(T), padding_mask(am))`` is ``(B, 1, T, T)``.
    """
    present = [m for m in masks if m is not None]
    if not present:
        return None
    for i, m in enumerate(present):
        if not isinstance(m, torch.Tensor):
            raise TypeError(f"mask {i} is a {type(m).__name__}, expected a torch.Tensor")
        if m.dtype != torch.bool and not m.is_floating_point():
            raise TypeError(f"mask {i} has dtype {m.dtype}: expected bool or floating")
    try:
        torch.broadcast_shapes(*(m.shape for m in present))
    except RuntimeError:
        raise ValueError(f"mask shapes {[tuple(m.shape) for m in present]} do not broadcast together") from None
    if all(m.dtype == torch.bool for m in present):
        out = present[0]
        for m in present[1:]:
            out = out & m
        return out
    dtype = next(m.dtype for m in present if m.is_floating_point())
    out = None
    for m in present:
        m = bool_mask_to_additive(m, dtype) if m.dtype == torch.bool else m
        out = m if out is None else out + m
    return out


def mask_tokens_for_mlm(
    input_ids: torch.Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_tokens_mask: torch.Tensor | None = None,
    mlm_probability: float = 0.15,
    pad_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking recipe (Devlin et al., 2018), returning ``(masked_input_ids, labels)``.

    1. select each non-special, non-padding position with probability ``mlm_probability`` (15%);
    2. of the selected positions, 80% become ``[MASK]``, 10% a random token, 10% stay unchanged;
    3. ``labels`` holds the original id at selected positions and ``-100`` elsewhere, so the loss
       is computed only where the model has to predict.

    ``special_tokens_mask`` (same shape, 1/True = [CLS], [SEP], [PAD], ...) and ``pad_token_id``
    exclude positions from selection. ``input_ids`` itself is never modified.
    """
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"input_ids has dtype {input_ids.dtype}: expected torch.long token ids")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability={mlm_probability} must be in [0, 1]")
    check_positive(vocab_size=vocab_size)
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id={mask_token_id} is outside the vocabulary [0, {vocab_size})")
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    if special_tokens_mask is not None:
        if special_tokens_mask.shape != input_ids.shape:
            raise ValueError(
                f"special_tokens_mask has shape {tuple(special_tokens_mask.shape)}, "
                f"input_ids has {tuple(input_ids.shape)}: they must match"
            )
        special |= special_tokens_mask.to(device=input_ids.device).bool()
    if pad_token_id is not None:
        special |= input_ids == pad_token_id

    def coin(p: float) -> torch.Tensor:  # one Bernoulli(p) draw per position
        return torch.rand(input_ids.shape, generator=generator, device=input_ids.device) < p

    selected = coin(mlm_probability) & ~special
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

    to_mask = selected & coin(0.8)
    to_random = selected & ~to_mask & coin(0.5)  # half of the remaining 20%
    random_ids = torch.randint(
        vocab_size, input_ids.shape, generator=generator, device=input_ids.device, dtype=input_ids.dtype
    )
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = random_ids[to_random]
    return masked, labels
