"""Few-shot classification: ``k`` labelled examples per class (lesson 08).

``k`` examples per class drawn with a seed (:func:`sample_k_shot`); a linear probe on frozen
embeddings (:func:`linear_probe`), full fine-tuning (:func:`finetune_few_shot`), or SetFit's two
steps (Tunstall et al., 2022): contrastive fine-tuning of the sentence encoder on pairs of the k
examples (:func:`contrastive_pairs`, :func:`setfit_finetune`), then the probe; repeated over
several draws (:func:`few_shot_curve`) because with 8 examples *which* 8 matters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .._checks import check_positive, is_number
from ..finetune.data import check_texts
from ..finetune.metrics import check_label_range
from ..progress import progress_bar
from ..seeding import DEFAULT_SEED, seeded
from .zero_shot import mean_pool

__all__ = ["contrastive_pairs", "few_shot_curve", "finetune_few_shot", "linear_probe", "mean_std", "sample_k_shot",
           "setfit_finetune"]


def sample_k_shot(labels: Sequence[int], k: int, seed: int, num_labels: int | None = None) -> list[int]:
    """``k`` indices per class, drawn without replacement with ``seed`` (sorted by class, then draw)."""
    if len(labels) == 0:
        raise ValueError("labels is empty: no pool to draw from")
    check_positive(k=k)  # examples per class
    labels = check_label_range(labels, num_labels, "labels")
    num_labels = num_labels or int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_labels):
        pool = np.flatnonzero(labels == c)
        if len(pool) < k:
            raise ValueError(f"class {c} has only {len(pool)} examples in the pool; cannot draw k={k}")
        chosen.extend(rng.choice(pool, size=k, replace=False).tolist())
    return chosen


def linear_probe(train_x: torch.Tensor, train_y: Sequence[int], *, C: float = 1.0, seed: int = DEFAULT_SEED):
    """A logistic-regression classifier on frozen embeddings (scikit-learn); ``.predict(x)``."""
    from sklearn.linear_model import LogisticRegression

    if len(train_x) != len(train_y):
        raise ValueError(f"{len(train_x)} embeddings but {len(train_y)} labels")
    if len(set(np.asarray(train_y).tolist())) < 2:
        raise ValueError(f"train_y must hold at least 2 classes to fit a classifier, got {sorted(set(np.asarray(train_y).tolist()))}")
    return LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(np.asarray(train_x), np.asarray(train_y))


def finetune_few_shot(name: str, label_names: Sequence[str], texts: Sequence[str], labels: Sequence[int],
                      test_texts: Sequence[str], *, steps: int = 30, batch_size: int = 8, learning_rate: float = 5e-5,
                      max_length: int = 64, seed: int = DEFAULT_SEED, device=None) -> np.ndarray:
    """Full fine-tuning of ``name`` on a handful of examples for a fixed number of steps (no
    validation set: with k examples per class there is none to spare); returns test predictions.
    The new head and the dropout masks come from ``seed`` (inside ``seeded``): the caller's random
    generator is left as it was."""
    from transformers import DataCollatorWithPadding

    from ..finetune import FinetuneRecipe, encode, finetune_loop, label_maps, load_for_classification, predict_proba
    from ..text_datasets import TextSplit

    texts, test_texts = check_texts(texts, "texts"), check_texts(test_texts, "test_texts")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels: one label per text expected")
    labels = check_label_range(labels, label_maps(label_names)["num_labels"], "labels").tolist()
    check_positive(steps=steps, batch_size=batch_size)
    batch_size = min(int(batch_size), len(texts))
    recipe = FinetuneRecipe(model=name, max_length=max_length, batch_size=batch_size, learning_rate=learning_rate,
                            seed=seed, warmup=0.1)
    tokenizer, model = load_for_classification(name, label_names, seed=seed)
    train = encode(tokenizer, TextSplit(texts, labels), max_length=max_length)
    finetune_loop(model, train, None, recipe, collator=DataCollatorWithPadding(tokenizer), device=device,
                  max_steps=steps, progress=False)
    return predict_proba(model, tokenizer, test_texts, max_length=max_length).argmax(-1).numpy()


def contrastive_pairs(labels: Sequence[int], iterations: int, seed: int) -> list[tuple[int, int, float]]:
    """SetFit's pairs: ``iterations`` times, for every example one partner of the same class
    (target 1.0) and one of another class (target 0.0), drawn with ``seed``. -> ``(i, j, target)``."""
    labels = np.asarray(labels)
    check_positive(iterations=iterations)
    if len(set(labels.tolist())) < 2:
        raise ValueError(f"labels: contrastive pairs need examples of at least two classes, got "
                         f"{sorted(set(labels.tolist()))}")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(iterations):
        for i, y in enumerate(labels):
            same = np.flatnonzero((labels == y) & (np.arange(len(labels)) != i))
            other = np.flatnonzero(labels != y)
            if len(same):
                pairs.append((i, int(rng.choice(same)), 1.0))
            pairs.append((i, int(rng.choice(other)), 0.0))
    return pairs


def setfit_finetune(model, tokenizer, texts: Sequence[str], labels: Sequence[int], *, iterations: int = 5,
                    epochs: int = 1, batch_size: int = 16, learning_rate: float = 1e-4, max_length: int = 64,
                    seed: int = DEFAULT_SEED, device=None):
    """SetFit's first step: a copy of the sentence encoder ``model`` fine-tuned so that the cosine
    of two of the labelled texts' mean-pooled embeddings approaches 1 for the same class and 0 for
    different classes (mean squared error; sentence-transformers' ``CosineSimilarityLoss``).
    ``len(texts)`` examples give ``~2 · iterations · len(texts)`` pairs. The learning rate is 5x
    SetFit's 2e-5 because we afford ~10x fewer pairs, so fewer steps (benchmarks/RESULTS.md, lesson
    08). Returns the tuned copy in eval mode; embed with it (:func:`embed`) and fit
    :func:`linear_probe` for SetFit's second step."""
    import copy

    texts = check_texts(texts, "texts")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    check_positive(epochs=epochs, batch_size=batch_size)
    if not is_number(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    pairs = contrastive_pairs(labels, iterations, seed)
    device = device or next(model.parameters()).device
    tuned = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.AdamW(tuned.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)  # the order of the pairs; dropout masks come from seeded(seed)
    with seeded(seed):
        for _ in range(epochs):
            order = rng.permutation(len(pairs))
            for s in range(0, len(pairs), batch_size):
                _setfit_step(tuned, optimizer, tokenizer, texts, [pairs[p] for p in order[s:s + batch_size]],
                             max_length, device)
    return tuned.eval()


def _setfit_step(tuned, optimizer, tokenizer, texts: list[str], batch: list[tuple[int, int, float]], max_length: int,
                 device) -> float:
    """One AdamW step on a batch of pairs: the squared gap between their cosine and their target."""

    def sentence_vectors(batch_texts):
        enc = tokenizer(batch_texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(device)
        return mean_pool(tuned(**enc).last_hidden_state, enc["attention_mask"])

    a = sentence_vectors([texts[i] for i, _, _ in batch])
    b = sentence_vectors([texts[j] for _, j, _ in batch])
    target = torch.tensor([t for _, _, t in batch], device=device)
    loss = torch.nn.functional.mse_loss(torch.nn.functional.cosine_similarity(a, b), target)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def few_shot_curve(labels: Sequence[int], ks: Sequence[int], seeds: Sequence[int],
                   fit_predict: Callable[[list[int]], np.ndarray], test_labels: Sequence[int], *,
                   progress: bool | None = None) -> dict[int, list[float]]:
    """Accuracy for every ``k`` and seed: ``fit_predict(train_indices)`` trains on those pool
    examples and returns predictions for the test set. -> ``{k: [accuracy per seed]}``."""

    test_labels = np.asarray(test_labels)
    if len(ks) == 0 or len(seeds) == 0:
        raise ValueError(f"ks and seeds must each hold at least one value, got ks={list(ks)}, seeds={list(seeds)}")
    curve: dict[int, list[float]] = {}
    with progress_bar(total=len(ks) * len(seeds), desc="few-shot", enabled=progress) as bar:
        for k in ks:
            curve[k] = []
            for seed in seeds:
                predictions = np.asarray(fit_predict(sample_k_shot(labels, k, seed)))
                if predictions.shape != test_labels.shape:
                    raise ValueError(f"fit_predict returned {predictions.shape} predictions for k={k}, seed={seed}; "
                                     f"expected one per test label {test_labels.shape}")
                curve[k].append(float((predictions == test_labels).mean()))
                bar.update(1)
    return curve


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of a list of accuracies."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("values is empty: no accuracies to average")
    return float(values.mean()), float(values.std())
