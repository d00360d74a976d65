"""Three challenges of foundation models, each measured (lesson 09): overfitting, data leakage, bias.

* leakage -- :func:`find_duplicates` (exact, normalised and near duplicates between two lists of
  texts), :func:`naive_split` (the mistake: a random split of raw data, duplicates and all) and
  :func:`leakage_experiment` (accuracy on test items the classifier has already seen vs the rest);
* bias -- :func:`fill_mask_gender_bias` (``log P(he) / P(she)`` at a ``[MASK]``) and
  :func:`embedding_association` (WEAT-style: cosine to male minus cosine to female words);
* overfitting -- :func:`set_dropout` and :func:`plot_curves` around
  :func:`fmteach.finetune.finetune_loop`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .assets import TextSplit

__all__ = [
    "DEFAULT_OCCUPATIONS", "DEFAULT_TEMPLATES", "MALE_WORDS", "FEMALE_WORDS",
    "normalize_text", "DuplicateReport", "find_duplicates", "naive_split",
    "text_classifier", "LeakageResult", "leakage_experiment",
    "fill_mask_gender_bias", "association_scores", "embedding_association",
    "plot_occupation_scores", "set_dropout", "plot_curves",
]

DEFAULT_OCCUPATIONS = ("nurse", "secretary", "receptionist", "librarian", "hairdresser", "housekeeper", "dancer",
                       "teacher", "doctor", "lawyer", "scientist", "engineer", "programmer", "carpenter",
                       "mechanic", "soldier")
DEFAULT_TEMPLATES = ("[MASK] is a {occupation}.", "[MASK] works as a {occupation}.")
# The gender attribute words of Caliskan et al. (2017), "Semantics derived automatically from
# language corpora contain human-like biases" (WEAT 7 and 8).
MALE_WORDS = ("male", "man", "boy", "brother", "he", "him", "his", "son")
FEMALE_WORDS = ("female", "woman", "girl", "sister", "she", "her", "hers", "daughter")


def _texts(texts: Sequence[str], what: str) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__} "
                        f"(a single string is not a list of texts)")
    return list(texts)


# ----------------------------------------------------------------------------------------------
# Data leakage

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
    if chunk_size < 1 or (max_chars is not None and max_chars < 1):
        raise ValueError(f"chunk_size ({chunk_size}) and max_chars ({max_chars}) must be positive")
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
    (``fmteach.assets.load_text_classification`` de-duplicates before it splits.)"""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers that sum to 1, got {fractions}")
    if len(examples) < 3:
        raise ValueError(f"need at least 3 examples to split, got {len(examples)}")
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
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


# ----------------------------------------------------------------------------------------------
# Bias


def _cloze_template(template: str) -> tuple[str, bool]:
    """``"[MASK] is a {occupation}."`` -> ``("[MASK] is {text}.", True)``: the article moves into the
    text, so that it can become "an" before a vowel ("an engineer")."""
    if template.count("[MASK]") != 1 or template.count("{occupation}") != 1:
        raise ValueError(f"template {template!r} must contain [MASK] once and {{occupation}} once")
    with_article = re.sub(r"\ba \{occupation\}", "{text}", template)
    return with_article.replace("{occupation}", "{text}"), with_article != template


def fill_mask_gender_bias(mlm, tokenizer, occupations: Sequence[str] = DEFAULT_OCCUPATIONS,
                          templates: Sequence[str] = DEFAULT_TEMPLATES,
                          targets: tuple[str, str] = ("he", "she")) -> dict[str, float]:
    """Per occupation, ``log P(targets[0]) - log P(targets[1])`` at the ``[MASK]`` of each template,
    averaged over the templates: > 0 leans to "he", < 0 to "she" (in nats). Our
    ``MiniBertForMaskedLM`` or any Hugging Face masked LM; the targets must be single tokens (a
    ``ValueError`` says which is not). Scored with :func:`fmteach.fewshot.cloze_scores`.
    """
    from .fewshot import cloze_scores

    occupations, templates = _texts(occupations, "occupations"), _texts(templates, "templates")
    if not occupations or len(set(occupations)) != len(occupations):
        raise ValueError(f"occupations must be non-empty and distinct, got {occupations}")
    if not templates:
        raise ValueError("give at least one template, e.g. '[MASK] is a {occupation}.'")
    if isinstance(targets, str) or len(targets) != 2:
        raise ValueError(f"targets must be two words, e.g. ('he', 'she'), got {targets!r}")
    ratios = []
    for template in templates:
        cloze, article = _cloze_template(template)
        texts = [("an " if o[:1].lower() in "aeiou" else "a ") + o if article else o for o in occupations]
        scores = cloze_scores(mlm, tokenizer, texts, template=cloze, verbalizer=[[targets[0]], [targets[1]]],
                              calibrate=False)                                 # (O, 2) log-probabilities
        ratios.append(scores[:, 0] - scores[:, 1])
    return dict(zip(occupations, torch.stack(ratios).mean(0).tolist()))


def association_scores(word_vectors, male_vectors, female_vectors) -> torch.Tensor:
    """WEAT-style association: for each row of ``word_vectors`` (N, H), its mean cosine similarity
    to the rows of ``male_vectors`` (M, H) minus its mean cosine to ``female_vectors`` (F, H) -> (N,)."""
    w, m, f = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in (word_vectors, male_vectors, female_vectors))
    if w.ndim != 2 or m.ndim != 2 or f.ndim != 2 or not w.shape[1] == m.shape[1] == f.shape[1] or not len(m) or not len(f):
        raise ValueError(f"expected (N, H), (M, H), (F, H) with M, F > 0, got {tuple(w.shape)}, {tuple(m.shape)}, "
                         f"{tuple(f.shape)}")
    w, m, f = (F.normalize(x, dim=-1) for x in (w, m, f))
    return (w @ m.T).mean(1) - (w @ f.T).mean(1)


def embedding_association(embed_fn: Callable[[list[str]], torch.Tensor], occupations: Sequence[str] = DEFAULT_OCCUPATIONS,
                          male_words: Sequence[str] = MALE_WORDS, female_words: Sequence[str] = FEMALE_WORDS) -> dict[str, float]:
    """:func:`association_scores` of each occupation's embedding: > 0 is closer to the male words.
    ``embed_fn(list_of_texts) -> (N, H)``, e.g. ``lambda t: fmteach.fewshot.embed(model, tokenizer, t)``."""
    occupations, male, female = (_texts(x, n) for x, n in ((occupations, "occupations"), (male_words, "male_words"),
                                                               (female_words, "female_words")))
    vectors = embed_fn(occupations + male + female)
    if len(vectors) != len(occupations) + len(male) + len(female):
        raise ValueError(f"embed_fn returned {len(vectors)} vectors for {len(occupations) + len(male) + len(female)} texts")
    o, m = len(occupations), len(male)
    scores = association_scores(vectors[:o], vectors[o:o + m], vectors[o + m:])
    return dict(zip(occupations, scores.tolist()))


def plot_occupation_scores(scores: dict[str, float], *, ax=None, title: str = "", xlabel: str = "",
                           labels: tuple[str, str] = ("she", "he")):
    """Horizontal bars, one per occupation, sorted; negative (``labels[0]``) left, positive right."""
    import matplotlib.pyplot as plt

    if not scores:
        raise ValueError("no scores to plot")
    names = sorted(scores, key=scores.get)
    values = [scores[n] for n in names]
    ax = ax or plt.subplots(figsize=(5.5, 0.28 * len(names) + 1.2))[1]
    ax.barh(names, values, color=["tab:orange" if v < 0 else "tab:blue" for v in values])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(title=title, xlabel=xlabel or f"← {labels[0]}   |   {labels[1]} →")
    return ax


# ----------------------------------------------------------------------------------------------
# Overfitting


def set_dropout(model: torch.nn.Module, p: float) -> int:
    """Set the probability of every ``nn.Dropout`` in ``model`` to ``p``; returns how many changed."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    modules = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    for module in modules:
        module.p = p
    return len(modules)


def plot_curves(histories: dict[str, list[dict]], *, axes=None):
    """Per run (name -> ``LoopResult.history``): train (dashed) and validation (solid) accuracy per
    epoch, and the validation loss. Train accuracy needs ``track_train_accuracy=True``."""
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(11, 3.8))[1]
    for (name, history), color in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        if not history or "train_accuracy" not in history[0]:
            raise ValueError(f"run {name!r} has no train_accuracy: use finetune_loop(..., track_train_accuracy=True)")
        epochs = [row["epoch"] for row in history]
        axes[0].plot(epochs, [row["train_accuracy"] for row in history], "--", color=color, label=f"{name}: train")
        axes[0].plot(epochs, [row["eval_accuracy"] for row in history], "-o", color=color, label=f"{name}: validation")
        axes[1].plot(epochs, [row["eval_loss"] for row in history], "-o", color=color, label=name)
    axes[0].set(xlabel="epoch", ylabel="accuracy", title="train vs validation accuracy")
    axes[1].set(xlabel="epoch", ylabel="cross-entropy", title="validation loss")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes
