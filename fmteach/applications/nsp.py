"""Sentence pairs and BERT's second pretraining task, next-sentence prediction (NSP).

A pair is ``[CLS] A [SEP] B [SEP]`` with segment (token type) ids 0 for A and its [SEP], 1 for B
and the last [SEP]. Labels follow Hugging Face's ``BertForNextSentencePrediction``: **0 = B is
the next sentence, 1 = B is not**. Negatives come in three kinds:

* ``"random"``        -- B from another document (BERT's recipe: often a different topic);
* ``"same_document"`` -- B from the same document but not next (same topic, wrong place);
* ``"swapped"``       -- the true pair in the wrong order (ALBERT's sentence-order prediction).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_positive
from ..outputs import ModelOutput
from ..seeding import DEFAULT_SEED

__all__ = ["NSP_LABELS", "NEGATIVE_KINDS", "split_sentences", "documents_from", "make_nsp_pairs", "encode_pairs",
           "pairs_as_seen", "MeanPooledPairClassifier", "classifier_accuracy", "similarity_baseline"]

NSP_LABELS = ("is next", "not next")
NEGATIVE_KINDS = ("random", "same_document", "swapped")
_SENTENCE_END = re.compile(r'(?:(?<=[.!?])|(?<=[.!?]["\']))\s+(?=["\']?[A-Z])')


def split_sentences(text: str) -> list[str]:
    """Sentences of a BBC article, in order (a full stop, ! or ? then a capital). The first one is
    dropped: the loader glued the headline (which has no full stop) onto it."""
    return _SENTENCE_END.split(text.strip())[1:]


def documents_from(texts: Sequence[str], *, min_sentences: int = 4) -> list[list[str]]:
    """Each text split into sentences; documents with fewer than ``min_sentences`` are left out."""
    documents = [split_sentences(t) for t in texts]
    return [d for d in documents if len(d) >= min_sentences]


def _negative(rng: random.Random, documents, d: int, i: int, kind: str) -> tuple[str, str]:
    doc = documents[d]
    if kind == "random":
        other = rng.choice([j for j in range(len(documents)) if j != d] if len(documents) > 1 else [d])
        return doc[i], rng.choice(documents[other])
    if kind == "same_document":
        far = [j for j in range(len(doc)) if abs(j - i) >= 2]
        return doc[i], doc[rng.choice(far)]
    return doc[i + 1], doc[i]  # swapped


def make_nsp_pairs(documents: Sequence[Sequence[str]], n_pairs: int, *, negatives: str = "random",
                   seed: int = DEFAULT_SEED) -> list[tuple[str, str, int]]:
    """``n_pairs`` pairs ``(A, B, label)``, half positives (B follows A) and half negatives of the
    given kind, in a seeded shuffled order."""
    check_positive(n_pairs=n_pairs)
    if negatives not in NEGATIVE_KINDS:
        raise ValueError(f"negatives={negatives!r}: expected one of {', '.join(NEGATIVE_KINDS)}")
    usable = [d for d, doc in enumerate(documents) if len(doc) >= 3]
    if len(usable) < 2:
        raise ValueError(f"documents: {len(usable)} have 3 or more sentences, expected at least 2")
    rng = random.Random(seed)
    pairs = []
    for k in range(n_pairs):
        d = rng.choice(usable)
        i = rng.randrange(len(documents[d]) - 1)
        if k % 2 == 0:
            pairs.append((documents[d][i], documents[d][i + 1], 0))
        else:
            pairs.append((*_negative(rng, documents, d, i, negatives), 1))
    rng.shuffle(pairs)
    return pairs


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str, int]], *, max_length: int = 64) -> dict[str, torch.Tensor]:
    """``[CLS] A [SEP] B [SEP]`` for every pair, padded to the longest: ``input_ids``,
    ``attention_mask``, ``token_type_ids`` ``(N, T)`` and ``labels`` ``(N,)``."""
    if not pairs:
        raise ValueError("pairs is empty: expected a list of (sentence_a, sentence_b, label)")
    first, second, labels = zip(*pairs)
    enc = tokenizer(list(first), list(second), truncation="longest_first", max_length=max_length,
                    padding="longest", return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "token_type_ids": enc["token_type_ids"], "labels": torch.tensor(labels)}


def pairs_as_seen(tokenizer, pairs: Sequence[tuple[str, str, int]], *, max_length: int) -> list[tuple[str, str, int]]:
    """The pairs as a model reading ``encode_pairs(..., max_length=max_length)`` sees them: A and B
    each cut where ``truncation="longest_first"`` cuts them, decoded back to (lower-cased) text.

    Gives a control that reads whole sentences the same text as the fine-tuned model."""
    check_positive(max_length=max_length)
    enc = encode_pairs(tokenizer, pairs, max_length=max_length)
    specials = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id])
    seen = []
    for ids, types, mask, (_, _, label) in zip(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"], pairs):
        real = (mask == 1) & ~torch.isin(ids, specials)
        seen.append((tokenizer.decode(ids[real & (types == 0)]), tokenizer.decode(ids[real & (types == 1)]), label))
    return seen


class MeanPooledPairClassifier(nn.Module):
    """A pair classifier that reads what a sentence-embedding model such as MiniLM was trained to
    give: the mean of the last hidden states over the real tokens of ``[CLS] A [SEP] B [SEP]``, then
    dropout and one ``Linear(hidden, num_labels)`` -- where ``MiniBertForSequenceClassification``
    reads the pooled ``[CLS]``. ``forward`` returns a :class:`~fmteach.outputs.ModelOutput` like the other heads."""

    def __init__(self, encoder: nn.Module, num_labels: int = 2, *, dropout: float = 0.1):
        super().__init__()
        check_positive(num_labels=num_labels)
        self.bert = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)  # BERT's initialisation of a new head
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> ModelOutput:
        from ..fewshot import mean_pool  # lazy, as in _sentence_vectors

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        return ModelOutput(self.classifier(self.dropout(mean_pool(hidden, attention_mask))))


@torch.no_grad()
def classifier_accuracy(model, tensors: dict[str, torch.Tensor], *, batch_size: int = 64,
                        zero_segments: bool = False) -> float:
    """Accuracy of a sequence classifier (ours or Hugging Face's) on encoded pairs.
    ``zero_segments=True`` feeds every token segment id 0: B looks like more of A."""
    model.eval()
    correct = 0
    for start in range(0, len(tensors["labels"]), batch_size):
        part = {k: v[start:start + batch_size] for k, v in tensors.items()}
        segments = torch.zeros_like(part["token_type_ids"]) if zero_segments else part["token_type_ids"]
        out = model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], token_type_ids=segments)
        logits = out.logits
        correct += int((logits.argmax(-1) == part["labels"]).sum())
    return correct / len(tensors["labels"])


@torch.no_grad()
def _sentence_vectors(encoder, tokenizer, sentences: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
    """Unit-length mean of the last hidden states over real tokens: ``(N, H)`` (MiniLM's sentence embedding)."""
    from ..fewshot import mean_pool  # the one mean pooling (lazy: fewshot pulls in the fine-tuning code)

    vectors = []
    for start in range(0, len(sentences), batch_size):
        enc = tokenizer(list(sentences[start:start + batch_size]), padding=True, truncation=True, max_length=64,
                        return_tensors="pt")
        hidden = encoder(enc["input_ids"], enc["attention_mask"]).last_hidden_state  # (B, T, H)
        vectors.append(torch.nn.functional.normalize(mean_pool(hidden, enc["attention_mask"]), dim=-1))
    return torch.cat(vectors)


def similarity_baseline(encoder, tokenizer, train_pairs, test_pairs) -> dict[str, float]:
    """NSP with no training at all: call B "next" when cos(A, B) is above a threshold, the
    threshold chosen on the training pairs. Returns the threshold and both accuracies."""
    def cosines(pairs):
        a = _sentence_vectors(encoder, tokenizer, [p[0] for p in pairs])
        b = _sentence_vectors(encoder, tokenizer, [p[1] for p in pairs])
        return (a * b).sum(-1), torch.tensor([p[2] for p in pairs])

    train_cos, train_y = cosines(train_pairs)
    candidates = train_cos.sort().values
    accuracy = lambda cos, y, t: float(((cos < t).long() == y).float().mean())  # noqa: E731 (label 1 = not next)
    best = max(candidates.tolist(), key=lambda t: accuracy(train_cos, train_y, t))
    test_cos, test_y = cosines(test_pairs)
    return {"threshold": best, "train_accuracy": accuracy(train_cos, train_y, best),
            "test_accuracy": accuracy(test_cos, test_y, best)}
