"""Token classification: one label per word, predicted from each word's first WordPiece.

Our task needs no annotators: **punctuation restoration**. Strip the marks from real text and ask,
for every word, which mark followed it (``none``, ``comma``, ``period``, ``question``). The same
model and the same label alignment do named-entity recognition; :func:`load_conll2003` fetches
the standard data set (CoNLL-2003) when online.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive
from .._io import hub_offline
from ..bert import MiniBertModel
from ..bert_config import BertConfig
from ..bert_loading import load_hf_bert_state_dict
from ..cache import MissingAssetError
from ..masks import IGNORE_INDEX
from ..outputs import ModelOutput
from ..seeding import DEFAULT_SEED, seeded
from .nsp import split_sentences

__all__ = ["PUNCT_LABELS", "words_and_labels", "tagging_chunks", "align_labels", "encode_tagging",
           "MiniBertForTokenClassification", "load_task_model", "predict_word_labels", "per_class_report",
           "load_conll2003"]

PUNCT_LABELS = ("none", "comma", "period", "question")
_MARKS = {"?": 3, ".": 2, "!": 2, ",": 1, ";": 1, ":": 1}  # the strongest mark after a word wins


def words_and_labels(text: str) -> tuple[list[str], list[int]]:
    """Words without their surrounding punctuation, and for each the mark that followed it
    (an index into :data:`PUNCT_LABELS`). ``"Hello, world?"`` -> ``(["Hello", "world"], [1, 3])``."""
    words, labels = [], []
    for token in text.split():
        core = token.strip("\"'“”‘’()[]{}.,!?;:-—–")
        if not core:
            continue
        tail = token[token.rfind(core) + len(core):]
        label = max((_MARKS[c] for c in tail if c in _MARKS), default=0)
        words.append(core)
        labels.append(label)
    return words, labels


def tagging_chunks(texts: Sequence[str], *, words_per_chunk: int = 32, max_chunks: int | None = None):
    """Consecutive windows of ``words_per_chunk`` words (with their labels) from each article,
    headline left out; at most ``max_chunks``, taken article by article."""
    check_positive(words_per_chunk=words_per_chunk)
    chunks = []
    for text in texts:
        words, labels = words_and_labels(" ".join(split_sentences(text)))
        for start in range(0, len(words) - words_per_chunk + 1, words_per_chunk):
            chunks.append((words[start:start + words_per_chunk], labels[start:start + words_per_chunk]))
            if max_chunks is not None and len(chunks) >= max_chunks:
                return chunks
    return chunks


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Word labels -> one label per WordPiece: the first piece of a word gets the word's label,
    later pieces and special tokens (``word_id`` None) get -100, which the loss ignores."""
    aligned, previous = [], None
    for word_id in word_ids:
        if word_id is None or word_id == previous:
            aligned.append(IGNORE_INDEX)
        else:
            if not 0 <= word_id < len(word_labels):
                raise ValueError(f"word_ids refers to word {word_id} but word_labels has {len(word_labels)} labels")
            aligned.append(int(word_labels[word_id]))
        previous = word_id
    return aligned


def encode_tagging(tokenizer, chunks, *, max_length: int = 64) -> dict[str, torch.Tensor]:
    """Pre-split words -> WordPiece tensors ``(N, T)`` with aligned ``labels`` (-100 where ignored)."""
    if not chunks:
        raise ValueError("chunks is empty: expected a list of (words, labels)")
    enc = tokenizer([w for w, _ in chunks], is_split_into_words=True, truncation=True, max_length=max_length,
                    padding="longest", return_tensors="pt")
    labels = [align_labels(enc.word_ids(i), word_labels) for i, (_, word_labels) in enumerate(chunks)]
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "token_type_ids": enc["token_type_ids"], "labels": torch.tensor(labels)}


class MiniBertForTokenClassification(nn.Module):
    """Encoder + dropout + one linear layer applied at every position (Hugging Face's
    ``BertForTokenClassification``): ids ``(B, T)`` -> logits ``(B, T, num_labels)``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = MiniBertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        """-> :class:`~fmteach.outputs.ModelOutput`: ``logits`` ``(B, T, num_labels)``, ``loss`` when ``labels``
        are given (-100 = ignored), the encoder's ``hidden_states``."""
        out = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, C)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return ModelOutput(logits, loss, out.hidden_states)


def load_task_model(model_class, path: str, *, num_labels: int, seed: int = DEFAULT_SEED,
                    train_top_layers: int | None = None):
    """``model_class`` (ours) with the encoder weights of a Hugging Face BERT folder and a fresh,
    seeded head. ``train_top_layers=k`` freezes the embeddings and all but the top ``k`` layers."""
    from pathlib import Path

    config = BertConfig.from_json(Path(path) / "config.json")
    with seeded(seed):  # the fresh head; the caller's RNG is left as it was
        model = model_class(BertConfig(**{**config.__dict__, "num_labels": num_labels}))
    with warnings.catch_warnings():  # "head freshly initialised" / "pooler unused" are expected here
        warnings.simplefilter("ignore", UserWarning)
        load_hf_bert_state_dict(model.bert, Path(path) / "model.safetensors")  # the encoder only
    if train_top_layers is not None:
        layers = model.bert.encoder.layer
        if not 0 <= train_top_layers <= len(layers):
            raise ValueError(f"train_top_layers={train_top_layers}: expected 0..{len(layers)}")
        frozen = [model.bert.embeddings, *layers[:len(layers) - train_top_layers]]
        for module in frozen:
            module.requires_grad_(False)
    return model.eval()


@torch.no_grad()
def predict_word_labels(model, tensors: dict[str, torch.Tensor], *, batch_size: int = 64):
    """``(gold, predicted)`` label arrays over the labelled positions (first pieces) only."""
    model.eval()
    gold, predicted = [], []
    for start in range(0, len(tensors["labels"]), batch_size):
        part = {k: v[start:start + batch_size] for k, v in tensors.items()}
        logits = model(part["input_ids"], part["attention_mask"], part["token_type_ids"]).logits
        keep = part["labels"] != IGNORE_INDEX
        gold.append(part["labels"][keep])
        predicted.append(logits.argmax(-1)[keep])
    return torch.cat(gold).numpy(), torch.cat(predicted).numpy()


def per_class_report(gold, predicted, label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for every class, plus ``macro`` averages (scikit-learn).

    The macro row averages over the classes that occur in ``gold`` only: a class with no gold example
    has an undefined recall (reported as 0), and averaging that 0 in would understate the others.
    Its ``support`` is the total count, and ``classes`` names the classes it averages."""
    from sklearn.metrics import precision_recall_fscore_support

    gold, predicted = np.asarray(gold), np.asarray(predicted)
    if gold.shape != predicted.shape:
        raise ValueError(f"gold has shape {gold.shape} but predicted has {predicted.shape}: they must match")
    labels = list(range(len(label_names)))
    p, r, f, s = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    report = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
              for i, name in enumerate(label_names)}
    present = s > 0
    report["macro"] = {"precision": float(p[present].mean()), "recall": float(r[present].mean()),
                       "f1": float(f[present].mean()), "support": int(s.sum()),
                       "classes": [name for name, keep in zip(label_names, present) if keep]}
    return report


def load_conll2003():
    """CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003; 9 BIO tags over PER, ORG, LOC,
    MISC) from the Hugging Face hub, **online only**: ``datasets.load_dataset("eriktks/conll2003")``.
    Offline it raises :class:`~fmteach.cache.MissingAssetError` saying so."""
    if hub_offline():
        raise MissingAssetError("conll2003 comes from the Hugging Face hub but HF_HUB_OFFLINE is set; on an online "
                                "machine (e.g. Colab) unset it, or use the offline punctuation task of this lesson")
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise MissingAssetError("conll2003 needs the `datasets` package: pip install datasets") from exc
    try:
        return load_dataset("eriktks/conll2003")
    except Exception as exc:
        raise MissingAssetError(f"could not download CoNLL-2003 ({type(exc).__name__}: {exc}); this needs internet access") from exc
