"""Zero-shot and few-shot classification with a pretrained encoder (lesson 08).

Zero-shot, two ways, no labelled example at all:

* **embedding similarity** -- embed each text and a description of each label with the same
  sentence encoder (mean pooling over the packaged MiniLM, as sentence-transformers does for
  all-MiniLM-L6-v2) and pick the label whose description is closest (cosine);
* **cloze prompts** -- wrap the text in a template with a ``[MASK]`` ("... It was [MASK].") and
  let a masked language model choose between label words ("terrible" / "great").

Few-shot: ``k`` labelled examples per class, drawn with a seed (:func:`sample_k_shot`); a linear
probe on frozen embeddings (:func:`linear_probe`), full fine-tuning (:func:`finetune_few_shot`), or
SetFit's two steps (Tunstall et al., 2022): contrastive fine-tuning of the sentence encoder on
pairs of the k examples (:func:`contrastive_pairs`, :func:`setfit_finetune`), then the probe;
repeated over several draws (:func:`few_shot_curve`) because with 8 examples *which* 8 matters.
"""

from __future__ import annotations

import hashlib
import numbers
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._io import CheckpointError, atomic_torch_save, eval_mode, torch_load
from .assets import cache_dir, pretrained_bert
from .finetune.data import check_texts, length_sorted_batches
from .finetune.metrics import check_label_range
from .profile import DEFAULT_SEED, seeded
from .progress import progress_bar

__all__ = [
    "LABEL_DESCRIPTIONS",
    "CLOZE_PROMPTS",
    "load_embedder",
    "mean_pool",
    "embed",
    "label_embeddings",
    "similarity_scores",
    "cloze_scores",
    "sample_k_shot",
    "linear_probe",
    "finetune_few_shot",
    "contrastive_pairs",
    "setfit_finetune",
    "few_shot_curve",
    "mean_std",
]

# One description per label, in label order; each is turned into a sentence by DESCRIPTION_TEMPLATE.
# Chosen by accuracy on each data set's *validation* split (never test), with MiniLM at max_length 128.
LABEL_DESCRIPTIONS: dict[str, list[str]] = {
    "bbc-news": [
        "business, companies, markets, profits and the economy",
        "entertainment: films, music, television, actors and awards",
        "politics: the government, elections, parties and parliament",
        "sport: football, rugby, tennis, cricket and athletics",
        "technology: computers, the internet, software, mobile phones and video games",
    ],
    "trec": [  # rewritten as the questions themselves: 0.513 -> 0.599 accuracy on trec's validation split
        "what does the abbreviation or acronym stand for",
        "what is the definition, description, reason, or manner",
        "what thing, animal, object, food, colour, substance or term",
        "who: which person, people or organization",
        "where: which place, city, country, state or location",
        "how many, how much, when, what year, what date, what number",
    ],
    "movie-reviews": [  # 0.684 -> 0.728 accuracy on the validation split (was "a negative review: a bad, boring, awful film")
        "a terrible, boring film that I hated",
        "a great, enjoyable film that I loved",
    ],
    "sms-spam": [
        "an ordinary personal message between friends",
        "spam: an advertisement, a prize, a free offer, call or text now",
    ],
}
DESCRIPTION_TEMPLATE = "This text is about {}."

# Cloze prompts: a template with {text} and [MASK], and one (single-token) word per label.
CLOZE_PROMPTS: dict[str, dict] = {
    "movie-reviews": {"template": "{text} It was [MASK].", "verbalizer": [["terrible", "bad"], ["great", "good"]]},
    "sms-spam": {"template": "{text} This message is [MASK].", "verbalizer": [["personal"], ["spam"]]},
}


# ----------------------------------------------------------------------------------------------
# Sentence embeddings


def load_embedder(name: str = "minilm"):
    """``(tokenizer, AutoModel)`` in eval mode: the encoder only, no classification head."""
    from transformers import AutoModel, AutoTokenizer

    path = pretrained_bert(name)
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors ``(B, T, H)`` over real tokens only (``attention_mask`` 1), -> ``(B, H)``."""
    if hidden.ndim != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(f"hidden must be (B, T, H) and attention_mask (B, T); got {tuple(hidden.shape)} "
                         f"and {tuple(attention_mask.shape)}")
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _embedding_cache_path(model, texts: Sequence[str], max_length: int, normalize: bool):
    h = hashlib.sha256()
    h.update(f"{getattr(model.config, '_name_or_path', '')}|{max_length}|{normalize}|".encode())
    first = next(model.parameters())
    h.update(f"{first.shape}|{first.double().sum().item():.10e}".encode())  # these weights, not a name
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return cache_dir() / f"embeddings-{h.hexdigest()[:16]}.pt"


def _load_cached_embeddings(path, n_texts: int, hidden: int) -> torch.Tensor | None:
    """The cached ``(n_texts, hidden)`` tensor at ``path``, or None (to compute it again) when the
    file is missing, unreadable or of another shape -- a cache is never worth a crash."""
    if not path.exists():
        return None
    try:
        cached = torch_load(path, map_location="cpu", expected="an embedding cache written by fmteach.fewshot.embed")
    except CheckpointError as error:
        warnings.warn(f"{error}; computing the embeddings again", stacklevel=3)
        return None
    if not isinstance(cached, torch.Tensor) or tuple(cached.shape) != (n_texts, hidden):
        warnings.warn(f"{path} does not hold a ({n_texts}, {hidden}) tensor; computing the embeddings again",
                      stacklevel=3)
        return None
    return cached


def _positive_int(value, argument: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return int(value)


@torch.no_grad()
def embed(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 64,
          normalize: bool = True, device=None, cache: bool = False, progress: bool | None = None) -> torch.Tensor:
    """Sentence embeddings ``(N, H)`` (float32, on the CPU): mean of the last layer's token vectors
    over real tokens, L2-normalised. Texts are batched by length so that little is padded; the
    model runs in eval mode (no dropout) for the call. ``cache=True`` keeps the result in
    ``data/cache`` (keyed by the texts and the weights); ``progress=None`` shows a bar unless the
    profile is ``smoke`` (see :mod:`fmteach.progress`)."""
    texts = check_texts(texts, "texts")
    _positive_int(max_length, "max_length")
    path = _embedding_cache_path(model, texts, max_length, normalize) if cache else None
    cached = _load_cached_embeddings(path, len(texts), model.config.hidden_size) if path is not None else None
    if cached is not None:
        return cached
    device = device or next(model.parameters()).device
    out = torch.empty(len(texts), model.config.hidden_size)
    with eval_mode(model):
        for idx in progress_bar(length_sorted_batches(texts, batch_size), desc="embedding", enabled=progress):
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt").to(device)
            vectors = mean_pool(model(**enc).last_hidden_state.float(), enc["attention_mask"])
            out[idx] = (torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors).cpu()
    if path is not None:
        atomic_torch_save(out, path)
    return out


def label_embeddings(model, tokenizer, descriptions: Sequence[str], *, template: str = DESCRIPTION_TEMPLATE):
    """One normalised embedding per label, from ``template.format(description)``."""
    descriptions = check_texts(descriptions, "descriptions")
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(f"template must be a string with one '{{}}' for the description, got {template!r}")
    return embed(model, tokenizer, [template.format(d) for d in descriptions])


def similarity_scores(text_embeddings: torch.Tensor, label_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every text to every label, ``(N, C)``; the prediction is the argmax."""
    if text_embeddings.ndim != 2 or label_embeddings.ndim != 2 or text_embeddings.shape[1] != label_embeddings.shape[1]:
        raise ValueError(f"expected (N, H) and (C, H) embeddings, got {tuple(text_embeddings.shape)} and "
                         f"{tuple(label_embeddings.shape)}")
    if label_embeddings.shape[0] == 0:
        raise ValueError("label_embeddings is empty (0 labels): nothing to compare the texts with")
    t = torch.nn.functional.normalize(text_embeddings.float(), dim=-1)
    return t @ torch.nn.functional.normalize(label_embeddings.float(), dim=-1).T


# ----------------------------------------------------------------------------------------------
# Cloze prompts with a masked language model


def _verbalizer_ids(tokenizer, verbalizer: Sequence[Sequence[str]]) -> list[list[int]]:
    """One list of token ids per label; every label word must be one token of the vocabulary."""
    if isinstance(verbalizer, str) or not isinstance(verbalizer, Sequence):
        raise TypeError(f"verbalizer must be a list with one list of label words per label, such as "
                        f"[['terrible'], ['great']], got {verbalizer!r}")
    if len(verbalizer) < 2:
        raise ValueError(f"verbalizer needs words for at least 2 labels, got {len(verbalizer)}: {verbalizer!r}")
    ids = []
    for label, words in enumerate(verbalizer):
        words = [words] if isinstance(words, str) else list(words)
        if not words or not all(isinstance(w, str) for w in words):
            raise TypeError(f"verbalizer[{label}] must be one or more label words (strings), got {verbalizer[label]!r}")
        row = []
        for w in words:
            pieces = tokenizer.tokenize(w)
            if len(pieces) != 1 or tokenizer.convert_tokens_to_ids(pieces[0]) == tokenizer.unk_token_id:
                raise ValueError(f"label word {w!r} is not one token of this vocabulary (it becomes {pieces}); "
                                 f"choose words the tokenizer keeps whole")
            row.append(tokenizer.convert_tokens_to_ids(pieces[0]))
        ids.append(row)
    return ids


def _cloze_prompts(tokenizer, texts: Sequence[str], template: str, budget: int) -> list[str]:
    """``template`` filled with each text cut to ``budget`` tokens -- the text, never the prompt, is
    cut, so the mask survives truncation -- with ``[MASK]`` spelled as this tokenizer's mask token."""
    out = []
    for t in texts:
        pieces = tokenizer.tokenize(t)[:budget]
        out.append(template.format(text=tokenizer.convert_tokens_to_string(pieces)).replace("[MASK]", tokenizer.mask_token))
    return out


def _mask_log_probs(mlm, tokenizer, prompts: list[str], word_ids: list[list[int]], device) -> torch.Tensor:
    """``(B, C)``: log of the mean probability of each label's words at each prompt's one mask."""
    from .bert import logits_of

    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    logits = logits_of(mlm(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)))
    is_mask = enc["input_ids"].to(device) == tokenizer.mask_token_id
    if (is_mask.sum(1) != 1).any():
        raise ValueError("each prompt must hold exactly one mask token")
    log_probs = logits[is_mask].float().log_softmax(-1)  # (B, V)
    return torch.stack([log_probs[:, ids].exp().mean(-1).log() for ids in word_ids], dim=-1).cpu()


@torch.no_grad()
def cloze_scores(mlm, tokenizer, texts: Sequence[str], *, template: str, verbalizer: Sequence[Sequence[str]],
                 max_length: int | None = None, batch_size: int = 32, calibrate: bool = True, device=None) -> torch.Tensor:
    """Zero-shot scores ``(N, C)`` from a masked LM: the log-probability, at the ``[MASK]`` of
    ``template.format(text=...)``, of each label's words (averaged in probability over a label's
    words). ``calibrate=True`` subtracts the same scores for a content-free text ("N/A"), so a
    model that simply prefers "great" to "terrible" everywhere is not rewarded (Zhao et al., 2021).
    Prompts are cut to ``max_length`` tokens (default: 128, or less if the model has fewer positions).

    Works for our :class:`~fmteach.bert.MiniBertForMaskedLM` and any Hugging Face masked LM.
    """
    if not isinstance(template, str) or "{text}" not in template or "[MASK]" not in template:
        raise ValueError(f"template must contain '{{text}}' and '[MASK]', got {template!r}")
    texts = check_texts(texts, "texts")
    _positive_int(batch_size, "batch_size")
    word_ids = _verbalizer_ids(tokenizer, verbalizer)
    device = device or next(mlm.parameters()).device
    max_length = min(max_length or 128, getattr(mlm.config, "max_position_embeddings", 512))
    budget = max(1, max_length - len(tokenizer(template.format(text=""))["input_ids"]))

    def score(batch: list[str]) -> torch.Tensor:
        return _mask_log_probs(mlm, tokenizer, _cloze_prompts(tokenizer, batch, template, budget), word_ids, device)

    with eval_mode(mlm):
        scores = torch.cat([score(texts[s:s + batch_size]) for s in range(0, len(texts), batch_size)])
        if calibrate:
            scores = scores - score(["N/A"])
    return scores


# ----------------------------------------------------------------------------------------------
# Few-shot


def sample_k_shot(labels: Sequence[int], k: int, seed: int, num_labels: int | None = None) -> list[int]:
    """``k`` indices per class, drawn without replacement with ``seed`` (sorted by class, then draw)."""
    if len(labels) == 0:
        raise ValueError("labels is empty: no pool to draw from")
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be an int >= 1 (examples per class), got {k!r}")
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

    from .assets import TextSplit
    from .finetune import FinetuneRecipe, encode, finetune_loop, label_maps, load_for_classification, predict_proba

    texts, test_texts = check_texts(texts, "texts"), check_texts(test_texts, "test_texts")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels: one label per text expected")
    labels = check_label_range(labels, label_maps(label_names)["num_labels"], "labels").tolist()
    _positive_int(steps, "steps")
    batch_size = min(_positive_int(batch_size, "batch_size"), len(texts))
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
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
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
    SetFit's 2e-5 because we afford ~10x fewer pairs (measured: at 2e-5 and ~10 steps nothing
    changes; at 1e-4 the 2-shot accuracy on bbc-news rose from 0.751 to 0.770). Returns the tuned copy in
    eval mode; embed with it (:func:`embed`) and fit :func:`linear_probe` for SetFit's second step."""
    import copy

    texts = check_texts(texts, "texts")
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise ValueError(f"epochs ({epochs}), batch_size ({batch_size}) and learning_rate ({learning_rate}) must be positive")
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
