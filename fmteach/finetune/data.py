"""Data for fine-tuning: subsets, tokenised splits, label maps and length-sorted batches."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_positive, is_int
from ..text_datasets import TextSplit

__all__ = ["EncodedSplit", "check_texts", "encode", "label_maps", "length_sorted_batches", "subset"]


def check_texts(texts, argument: str = "texts") -> list[str]:
    """``texts`` as a list of strings, with a clear error for one bare string (a classic slip: it
    would be read as a list of characters), an empty list, or an item that is not a string."""
    if isinstance(texts, str):
        raise TypeError(f"{argument} must be a list of strings, not one string: wrap it as [{argument}]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{argument} must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"{argument} is empty: give at least one text")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{argument}[{bad}] is {texts[bad]!r} of type {type(texts[bad]).__name__}, not a string")
    return texts


def label_maps(label_names: Sequence[str]) -> dict:
    """``{"num_labels", "id2label", "label2id"}`` for ``from_pretrained`` / ``AutoConfig``, checked.

    A classifier needs two distinct names or more: with ``num_labels=1`` transformers silently
    trains a *regression* head (mean squared error), and a bare string such as ``"positive"``
    would be read as eight one-letter labels."""
    if isinstance(label_names, str):
        raise TypeError(f"label_names must be a sequence of names such as ('negative', 'positive'), "
                        f"not one string ({label_names!r})")
    try:
        names = list(label_names)
    except TypeError:
        raise TypeError(f"label_names must be a sequence of strings, got {type(label_names).__name__}") from None
    bad = next((n for n in names if not isinstance(n, str) or not n), None)
    if bad is not None:
        raise TypeError(f"label_names must be non-empty strings, got {bad!r} in {names}")
    if len(names) < 2:
        raise ValueError(f"label_names needs at least 2 names for a classifier, got {len(names)}: {names} "
                         f"(with one label transformers builds a regression head)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"label_names must be distinct, got {repeated} more than once in {names}")
    return {"num_labels": len(names), "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)}}


def subset(split: TextSplit, n: int | None) -> TextSplit:
    """The first ``n`` examples (splits are already in a fixed shuffled order); ``None``: all."""
    check_positive(n=n, allow_none=True)  # None: all examples
    if n is None or n >= len(split):
        return split
    return TextSplit(split.texts[:n], split.labels[:n])


class EncodedSplit(torch.utils.data.Dataset):
    """Tokenised examples as a list of dicts (``input_ids``, ``attention_mask``, ..., ``labels``) of
    plain Python lists, *unpadded* unless asked: a collator pads each batch."""

    def __init__(self, features: list[dict], texts: Sequence[str]):
        if len(features) != len(texts):
            raise ValueError(f"{len(features)} features but {len(texts)} texts: one feature per text expected")
        self.features = features
        self.texts = list(texts)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]

    @property
    def labels(self) -> list[int]:
        return [f["labels"] for f in self.features]

    def num_tokens(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)


def _check_labels_are_ints(labels) -> list[int]:
    bad = next((i for i, y in enumerate(labels) if not is_int(y)), None)
    if bad is not None:
        raise TypeError(f"split.labels[{bad}] is {labels[bad]!r}: labels must be class indices (ints), "
                        f"not names or floats (use label_names.index(name))")
    negative = next((i for i, y in enumerate(labels) if y < 0), None)
    if negative is not None:
        raise ValueError(f"split.labels[{negative}] is {labels[negative]}: class indices start at 0")
    return [int(y) for y in labels]


def encode(tokenizer, split: TextSplit, *, max_length: int = 128, padding: bool | str = False) -> EncodedSplit:
    """Tokenise a split. ``padding=False`` (dynamic padding: a ``DataCollatorWithPadding`` pads each
    batch to its longest member) or ``"max_length"`` (the seed text's choice: every example padded
    to ``max_length``)."""
    if padding not in (False, "max_length"):
        raise ValueError(f"padding must be False (dynamic) or 'max_length', got {padding!r}")
    if not isinstance(split, TextSplit):
        raise TypeError(f"split must be a TextSplit (texts and labels), got {type(split).__name__}; "
                        f"for raw texts use predict_proba")
    if not is_int(max_length) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2 ([CLS] and [SEP] take two tokens), got {max_length!r}")
    if len(split.texts) != len(split.labels):  # TextSplit checks at construction; a list may have grown since
        raise ValueError(f"split has {len(split.texts)} texts but {len(split.labels)} labels")
    if len(split) == 0:
        raise ValueError("split is empty: cannot encode 0 examples")
    texts = check_texts(split.texts, "split.texts")
    labels = _check_labels_are_ints(split.labels)
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=padding)
    keys = list(enc.keys())
    features = [{k: enc[k][i] for k in keys} | {"labels": labels[i]} for i in range(len(texts))]
    return EncodedSplit(features, texts)


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of ``texts`` in batches of ``batch_size``, shortest texts first, so that a batch
    holds texts of similar length and little is padded. Callers put results back by index."""
    check_positive(batch_size=batch_size)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
