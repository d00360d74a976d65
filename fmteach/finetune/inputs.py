"""The base of the model calls: what a batch hands to a classifier, and how many classes it has.

Both the loop and evaluation stand on this module; it imports no other submodule of ``fmteach.finetune``.
"""

from __future__ import annotations

import torch

from .._checks import is_int

__all__ = ["MODEL_INPUT_KEYS", "model_inputs", "num_labels_of"]

# What a BERT classifier's forward takes from a batch; ``labels`` stay out (we compute the loss).
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(batch, device) -> dict[str, torch.Tensor]:
    """The model's inputs from a collated batch (or a tokenizer's output), moved to ``device``."""
    return {k: batch[k].to(device) for k in MODEL_INPUT_KEYS if k in batch}


def num_labels_of(model) -> int | None:
    """How many classes ``model`` scores: its config's ``num_labels`` (Hugging Face's and our
    ``MiniBertForSequenceClassification``), or ``None`` for a model without one."""
    value = getattr(getattr(model, "config", None), "num_labels", None)
    return value if is_int(value) else None
