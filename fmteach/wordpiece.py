"""WordPiece for the mini-BERTs: the pretraining text, the piece learner and the tokenizer.

:func:`pretraining_lines` says what a mini-BERT learns from (:data:`CORPORA`);
:func:`learn_wordpiece_vocab` learns the pieces from its words, deterministically;
:func:`train_wordpiece_tokenizer` wraps them as a BERT-style tokenizer (cached). The MLM data and
metrics that use them are in :mod:`fmteach.mlm`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from transformers import PreTrainedTokenizerFast

from ._io import sha256_hex
from .assets import load_shakespeare
from .cache import cache_dir
from .distributed import build_once
from .lm_data import DEFAULT_VAL_PLAYS

__all__ = ["SPECIAL_TOKENS", "CORPORA", "MIXED_DATASETS", "pretraining_lines", "learn_wordpiece_vocab",
           "train_wordpiece_tokenizer", "load_wordpiece_tokenizer", "check_corpus", "corpus_cache_key"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, as in BERT's order of use


CORPORA = {
    "shakespeare": "the training plays of the Shakespeare corpus",
    "mixed": "the training plays plus the training splits (never validation or test) of the course's four "
             "English data sets: BBC news, movie reviews, SMS messages and TREC questions",
}
MIXED_DATASETS = ("bbc-news", "movie-reviews", "sms-spam", "trec")


def check_corpus(corpus: str) -> None:
    if corpus not in CORPORA:
        raise ValueError(f"corpus={corpus!r} is not a pretraining corpus; choose one of {', '.join(CORPORA)}")


def pretraining_lines(corpus: str = "shakespeare", val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> list[str]:
    """The lines a mini-BERT pretrains on (see :data:`CORPORA`): the plays not held out, and for
    ``"mixed"`` also every *training* text of :data:`MIXED_DATASETS`, one line each. No held-out
    play and no validation or test text of a labelled set is ever in it (tests/test_mlm.py checks)."""
    check_corpus(corpus)
    plays = load_shakespeare().plays
    lines = [line for name, text in plays.items() if name not in val_plays for line in text.splitlines() if line]
    if corpus == "mixed":
        from .text_datasets import load_text_classification

        lines += [text for name in MIXED_DATASETS for text in load_text_classification(name).train.texts]
    return lines


def corpus_cache_key(vocab_size: int, val_plays: Sequence[str], corpus: str = "shakespeare") -> str:
    extra = "" if corpus == "shakespeare" else f"|{corpus}"  # the Shakespeare files keep their names
    return sha256_hex(f"{vocab_size}|{sorted(val_plays)}|v3{extra}".encode())[:12]


def learn_wordpiece_vocab(word_counts: dict[str, int], vocab_size: int, min_frequency: int = 2) -> list[str]:
    """Learn WordPiece pieces by merging the most frequent adjacent pair, as Hugging Face's trainer.

    Ours breaks ties between equally frequent pairs alphabetically, so the vocabulary is the same
    in every run (the Rust trainer breaks them by hash order, which changes from run to run).
    Words start as ``["u", "##n", "##f", ...]``; merging ``u`` + ``##n`` gives ``un``.
    """
    words = [[w[0]] + ["##" + c for c in w[1:]] for w in sorted(word_counts)]
    counts = [word_counts[w] for w in sorted(word_counts)]
    vocab = sorted({piece for word in words for piece in word})
    pair_count: dict[tuple[str, str], int] = {}
    where: dict[tuple[str, str], set[int]] = {}
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_count[pair] = pair_count.get(pair, 0) + counts[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    known = set(vocab)
    while len(vocab) < vocab_size - len(SPECIAL_TOKENS) and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:  # stale entry: the count changed since it was pushed
            continue
        if -neg < min_frequency:
            break
        merged = pair[0] + pair[1].removeprefix("##")
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        touched: dict[tuple[str, str], int] = {}
        for i in sorted(where.pop(pair, ())):
            word, c = words[i], counts[i]
            for p in zip(word, word[1:]):
                touched[p] = touched.get(p, 0) - c
            j, out = 0, []
            while j < len(word):
                if j + 1 < len(word) and (word[j], word[j + 1]) == pair:
                    out.append(merged)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                touched[p] = touched.get(p, 0) + c
                where.setdefault(p, set()).add(i)
        for p, delta in touched.items():
            if delta:
                pair_count[p] = pair_count.get(p, 0) + delta
                if pair_count[p] > 0:
                    heapq.heappush(heap, (-pair_count[p], p))
        pair_count.pop(pair, None)
    return vocab


def train_wordpiece_tokenizer(vocab_size: int = 8000, *, val_plays: Sequence[str] = DEFAULT_VAL_PLAYS,
                              use_cache: bool = True, corpus: str = "shakespeare") -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer (lower-cased, ``##`` continuation pieces) learned from the
    pretraining ``corpus`` only (:func:`pretraining_lines`), so validation text is never seen.
    Deterministic: the same vocabulary on every machine; cached in ``cache_dir()``."""
    check_corpus(corpus)
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    def learn() -> Tokenizer:
        normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        word_counts: dict[str, int] = {}
        for line in pretraining_lines(corpus, val_plays):
            for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
                word_counts[word] = word_counts.get(word, 0) + 1
        pieces = learn_wordpiece_vocab(word_counts, vocab_size)
        tokenizer = Tokenizer(WordPiece(vocab={p: i for i, p in enumerate(SPECIAL_TOKENS + pieces)}, unk_token="[UNK]"))
        tokenizer.normalizer = normalizer
        tokenizer.pre_tokenizer = pre_tokenizer
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))])
        tokenizer.decoder = decoders.WordPiece()
        return tokenizer

    if not use_cache:
        return _as_transformers_tokenizer(learn())
    path = cache_dir() / f"wordpiece-{corpus}-{vocab_size}-{corpus_cache_key(vocab_size, val_plays, corpus)}.json"
    build_once(path, lambda tmp: learn().save(str(tmp)))  # under torchrun: one process learns it
    return _as_transformers_tokenizer(Tokenizer.from_file(str(path)))


def _as_transformers_tokenizer(tokenizer) -> PreTrainedTokenizerFast:
    # tokenizer_object=... (BertTokenizerFast(vocab_file=...) would silently ignore our vocabulary)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def load_wordpiece_tokenizer(path) -> PreTrainedTokenizerFast:
    """A tokenizer saved by ``tokenizer.backend_tokenizer.save(path)`` (e.g. a course model's), as BERT's."""
    from tokenizers import Tokenizer

    return _as_transformers_tokenizer(Tokenizer.from_file(str(path)))
