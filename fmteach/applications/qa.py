"""Extractive question answering, the mechanics: start/end logits, the span search, long contexts.

The model scores every token twice -- "the answer starts here", "the answer ends here" -- and the
answer is the span ``start <= end < start + max_answer_len`` with the highest ``start + end``
score. Contexts longer than the model reads are cut into overlapping windows (``stride`` tokens
of overlap, Hugging Face's name), and the best span over all windows wins.

The data is synthetic, so that every answer is known and the task fits in seconds: the context is
a row of random words, the question names the first and the last word of the answer, and exactly
one span of at most ``max_answer_len`` words starts and ends with them (either word may also
appear elsewhere, as a distractor).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive
from ..bert import MiniBertModel
from ..bert_config import BertConfig
from ..outputs import QuestionAnsweringOutput
from ..seeding import DEFAULT_SEED

__all__ = ["SpanVocab", "MiniBertForQuestionAnswering", "best_span", "context_windows", "make_span_context",
           "qa_input", "make_qa_set", "span_exact_match", "answer_long_context"]


@dataclass(frozen=True)
class SpanVocab:
    """Token ids of the synthetic task: 0 [PAD], 1 [CLS], 2 [SEP], then ``n_symbols`` words ``w0, w1, ...``."""

    n_symbols: int = 20

    PAD, CLS, SEP = 0, 1, 2

    @property
    def size(self) -> int:
        return 3 + self.n_symbols

    def symbol(self, i: int) -> int:
        return 3 + i

    def name(self, token: int) -> str:
        return {0: "[PAD]", 1: "[CLS]", 2: "[SEP]"}.get(token, f"w{token - 3}")


class MiniBertForQuestionAnswering(nn.Module):
    """Encoder + ``qa_outputs``, one linear layer to 2 numbers per token (Hugging Face's
    ``BertForQuestionAnswering``): ids ``(B, T)`` -> start and end logits, each ``(B, T)``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = MiniBertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        nn.init.normal_(self.qa_outputs.weight, std=0.02)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, start_positions=None, end_positions=None):
        """-> :class:`~fmteach.outputs.QuestionAnsweringOutput`: ``start_logits`` and ``end_logits`` ``(B, T)``,
        and with both positions ``loss``, the mean of the start and end cross-entropies, as Hugging Face's."""
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        start_logits, end_logits = self.qa_outputs(hidden).unbind(-1)  # 2 x (B, T)
        if attention_mask is not None:  # padding can never be an answer
            start_logits = start_logits.masked_fill(attention_mask == 0, float("-inf"))
            end_logits = end_logits.masked_fill(attention_mask == 0, float("-inf"))
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
        return QuestionAnsweringOutput(start_logits, end_logits, loss)


def best_span(start_logits: torch.Tensor, end_logits: torch.Tensor, *, max_answer_len: int,
              allowed: torch.Tensor | None = None) -> tuple[int, int, float]:
    """The span ``(start, end, score)`` maximising ``start_logits[start] + end_logits[end]`` with
    ``start <= end < start + max_answer_len``; ``allowed`` (T,) bool marks where a span may lie
    (the context tokens). One example: both logits ``(T,)``."""
    check_positive(max_answer_len=max_answer_len)
    if start_logits.dim() != 1 or start_logits.shape != end_logits.shape:
        raise ValueError(f"start_logits {tuple(start_logits.shape)} and end_logits {tuple(end_logits.shape)}: "
                         f"expected two (T,) tensors of one example")
    T = start_logits.shape[0]
    scores = start_logits[:, None] + end_logits[None, :]  # (T, T): row = start, column = end
    offset = torch.arange(T)[None, :] - torch.arange(T)[:, None]  # end - start
    ok = (offset >= 0) & (offset < max_answer_len)
    if allowed is not None:
        ok &= allowed[:, None] & allowed[None, :]
    scores = scores.masked_fill(~ok, float("-inf"))
    flat = int(scores.argmax())
    return flat // T, flat % T, float(scores.flatten()[flat])


def context_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` windows of at most ``window`` tokens covering ``n_tokens``, consecutive
    windows sharing ``stride`` tokens (Hugging Face's ``stride``: the overlap, not the step)."""
    check_positive(n_tokens=n_tokens, window=window)
    if not 0 <= stride < window:
        raise ValueError(f"stride={stride} is the overlap between windows: expected 0 <= stride < window={window}")
    spans, start = [], 0
    while True:
        spans.append((start, min(start + window, n_tokens)))
        if start + window >= n_tokens:
            return spans
        start += window - stride


def make_span_context(rng: random.Random, vocab: SpanVocab, length: int, max_answer_len: int = 4):
    """``length`` random words and an answer span of 1..``max_answer_len`` words; the question is
    the answer's (first word, last word), and no other span of legal length starts and ends with
    those two words. Returns ``(question, context, (start, end))``, end inclusive."""
    check_positive(length=length, max_answer_len=max_answer_len)
    while True:
        context = [vocab.symbol(rng.randrange(vocab.n_symbols)) for _ in range(length)]
        n = rng.randint(1, min(max_answer_len, length))
        start = rng.randrange(length - n + 1)
        question = (context[start], context[start + n - 1])
        matches = [(i, j) for i in range(length) for j in range(i, min(length, i + max_answer_len))
                   if (context[i], context[j]) == question]
        if matches == [(start, start + n - 1)]:
            return question, context, (start, start + n - 1)


def qa_input(question: tuple[int, int], context: list[int], answer, window=None):
    """``[CLS] q1 q2 [SEP] context[window] [SEP]`` -> ``(ids, token_type_ids, start, end, offset)``.
    The answer's positions are shifted into the input; an answer not wholly inside the window
    points at [CLS] (position 0), BERT's "no answer here" convention for SQuAD 2.0."""
    lo, hi = window or (0, len(context))
    ids = [SpanVocab.CLS, *question, SpanVocab.SEP] + context[lo:hi] + [SpanVocab.SEP]
    types = [0] * 4 + [1] * (hi - lo + 1)
    offset = 4 - lo  # input position = context position + offset
    start, end = answer
    inside = lo <= start and end < hi
    return ids, types, (start + offset if inside else 0), (end + offset if inside else 0), offset


def make_qa_set(vocab: SpanVocab, n: int, *, lengths=(8, 32), window: int | None = None, seed: int = DEFAULT_SEED):
    """``n`` examples as padded tensors. With ``window``, a context longer than that is cut to one
    random window of ``window`` words (so some examples have no answer: start = end = 0)."""
    check_positive(n=n)
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        question, context, answer = make_span_context(rng, vocab, rng.randint(*lengths))
        span = None
        if window is not None and len(context) > window:
            lo = rng.randrange(len(context) - window + 1)
            span = (lo, lo + window)
        rows.append(qa_input(question, context, answer, span)[:4])
    T = max(len(r[0]) for r in rows)
    pad = lambda seq: seq + [0] * (T - len(seq))  # noqa: E731
    return {"input_ids": torch.tensor([pad(r[0]) for r in rows]), "token_type_ids": torch.tensor([pad(r[1]) for r in rows]),
            "attention_mask": torch.tensor([pad([1] * len(r[0])) for r in rows]),
            "start_positions": torch.tensor([r[2] for r in rows]), "end_positions": torch.tensor([r[3] for r in rows])}


@torch.no_grad()
def span_exact_match(model, tensors: dict[str, torch.Tensor], *, max_answer_len: int = 4) -> float:
    """Share of examples whose best span (over the whole input, [CLS] = no answer) is exactly right."""
    model.eval()
    out = model(tensors["input_ids"], tensors["attention_mask"], tensors["token_type_ids"])
    starts, ends = out.start_logits, out.end_logits
    right = 0
    for i in range(len(starts)):
        s, e, _ = best_span(starts[i], ends[i], max_answer_len=max_answer_len)
        right += (s, e) == (int(tensors["start_positions"][i]), int(tensors["end_positions"][i]))
    return right / len(starts)


@torch.no_grad()
def answer_long_context(model, question: tuple[int, int], context: list[int], *, window: int, stride: int,
                        max_answer_len: int = 4) -> tuple[int, int] | None:
    """Answer over a context of any length: score every window, keep the best non-[CLS] span of
    each, return the best one's ``(start, end)`` in context positions (None if no window answers)."""
    model.eval()
    best, best_score = None, float("-inf")
    for lo, hi in context_windows(len(context), window, stride):
        ids, types, _, _, offset = qa_input(question, context, (0, 0), (lo, hi))
        out = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), torch.tensor([types]))
        starts, ends = out.start_logits, out.end_logits
        allowed = torch.tensor(types, dtype=torch.bool)
        allowed[-1] = False  # the final [SEP]
        s, e, score = best_span(starts[0], ends[0], max_answer_len=max_answer_len, allowed=allowed)
        null_score = float(starts[0, 0] + ends[0, 0])
        if score > null_score and score > best_score:
            best, best_score = (s - offset, e - offset), score
    return best
