"""Starting points for fine-tuning: a pretrained (or randomly initialised) classifier, our mini-BERT's
encoder under a new head, and copies. Every random draw happens inside ``seeded(seed)``: the same
seed gives the same head, and the caller's random number generator is left as it was."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

from .._checks import is_int
from ..assets import pretrained_bert
from ..seeding import DEFAULT_SEED, seeded
from .data import label_maps

__all__ = ["classifier_from_mlm", "copy_model", "load_for_classification"]


def load_for_classification(name: str = "minilm", label_names: Sequence[str] = ("negative", "positive"), *,
                            seed: int = DEFAULT_SEED, random_init: bool = False, attn_implementation: str | None = None):
    """``(tokenizer, AutoModelForSequenceClassification)`` with a new, seeded classifier head.

    ``name``: ``"minilm"`` (packaged, offline), a saved model folder, or a hub id such as
    ``"bert-base-uncased"`` (online only). ``label_names``: two distinct names or more, in label
    order. ``random_init=True`` keeps the architecture and tokenizer but throws the pretrained
    weights away -- the control that shows what pretraining buys. ``attn_implementation="eager"``
    when you want attention maps.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be 'minilm', a model folder or a hub id (a non-empty string), got {name!r}")
    labels = label_maps(label_names)
    if not isinstance(random_init, bool):
        raise TypeError(f"random_init must be True or False, got {random_init!r}")
    if attn_implementation is not None and not isinstance(attn_implementation, str):
        raise TypeError(f"attn_implementation must be a string such as 'eager' or None, got {attn_implementation!r}")
    path = pretrained_bert(name)
    extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    tokenizer = AutoTokenizer.from_pretrained(path)
    with seeded(seed):  # the new head (and, for random_init, every weight) is drawn here
        if random_init:
            config = AutoConfig.from_pretrained(path, **labels)
            model = AutoModelForSequenceClassification.from_config(config, **extra)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(path, **labels, **extra)
    return tokenizer, model


def classifier_from_mlm(mlm_model, num_labels: int, *, seed: int = DEFAULT_SEED):
    """Our :class:`~fmteach.bert.MiniBertForSequenceClassification` with the encoder of a pretrained
    :class:`~fmteach.bert.MiniBertForMaskedLM` (lesson 05); pooler and classifier start fresh."""
    from ..bert import MiniBertForMaskedLM, MiniBertForSequenceClassification

    if not isinstance(mlm_model, MiniBertForMaskedLM):
        raise TypeError(f"mlm_model must be a fmteach.bert.MiniBertForMaskedLM, got {type(mlm_model).__name__} "
                        f"(for a Hugging Face checkpoint use load_for_classification)")
    if not is_int(num_labels) or num_labels < 2:
        raise ValueError(f"num_labels must be an int >= 2 (a classifier needs two classes), got {num_labels!r}")
    with seeded(seed):
        model = MiniBertForSequenceClassification(replace(mlm_model.config, num_labels=int(num_labels)))
    missing, unexpected = model.bert.load_state_dict(mlm_model.bert.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"encoder weights do not match: missing {missing}, unexpected {unexpected}")
    return model


def copy_model(model):
    """A deep copy (to fine-tune one starting point several ways)."""
    return copy.deepcopy(model)
