"""Bias probes (lesson 09): what associations of occupations with gender has a model learned?

* fill-mask -- :func:`fill_mask_gender_bias` (``log P(he) / P(she)`` at a ``[MASK]``, raw) and
  :func:`prior_normalized_gender_bias` (Kurita et al., 2019: the same ratio minus the model's
  prior, the ratio when the occupation is masked too);
* embeddings -- :func:`embedding_association` (WEAT-style: cosine to male minus cosine to female
  words); :func:`fmteach.viz.plot_occupation_scores` draws either;
* significance -- :func:`weat_permutation_test` (Caliskan et al., 2017: is the gap between two sets of
  target words larger than random re-splits of those words give?) and :func:`weat_effect_size`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import check_positive, is_int
from .leakage import _texts
from .seeding import DEFAULT_SEED

__all__ = [
    "DEFAULT_OCCUPATIONS", "DEFAULT_TEMPLATES", "MALE_WORDS", "FEMALE_WORDS",
    "fill_mask_gender_bias", "prior_normalized_gender_bias", "association_scores", "embedding_association",
    "WeatResult", "weat_effect_size", "weat_permutation_test",
]

DEFAULT_OCCUPATIONS = ("nurse", "secretary", "receptionist", "librarian", "hairdresser", "housekeeper", "dancer",
                       "teacher", "doctor", "lawyer", "scientist", "engineer", "programmer", "carpenter",
                       "mechanic", "soldier")
DEFAULT_TEMPLATES = ("[MASK] is a {occupation}.", "[MASK] works as a {occupation}.")
# The gender attribute words of Caliskan et al. (2017), "Semantics derived automatically from
# language corpora contain human-like biases" (WEAT 7 and 8).
MALE_WORDS = ("male", "man", "boy", "brother", "he", "him", "his", "son")
FEMALE_WORDS = ("female", "woman", "girl", "sister", "she", "her", "hers", "daughter")


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


def _target_ids(tokenizer, targets) -> list[int]:
    if isinstance(targets, str) or len(targets) != 2:
        raise ValueError(f"targets must be two words, e.g. ('he', 'she'), got {targets!r}")
    ids = []
    for word in targets:
        pieces = tokenizer.tokenize(word)
        if len(pieces) != 1 or tokenizer.convert_tokens_to_ids(pieces[0]) == tokenizer.unk_token_id:
            raise ValueError(f"target {word!r} is not one token of this vocabulary (it becomes {pieces})")
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    return ids


@torch.no_grad()
def _first_mask_log_ratio(mlm, tokenizer, texts: list[str], ids: list[int]) -> torch.Tensor:
    """``log P(ids[0]) - log P(ids[1])`` at the first mask token of each text -> ``(N,)``."""
    device = next(mlm.parameters()).device
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    input_ids = enc["input_ids"].to(device)
    logits = mlm(input_ids=input_ids, attention_mask=enc["attention_mask"].to(device)).logits
    is_mask = input_ids == tokenizer.mask_token_id
    if not is_mask.any(1).all():
        raise ValueError("every text needs a mask token")
    first = is_mask.float().argmax(1)                                             # (N,) first mask position
    log_probs = logits[torch.arange(len(texts), device=device), first].float().log_softmax(-1)  # (N, V)
    return (log_probs[:, ids[0]] - log_probs[:, ids[1]]).cpu()


def prior_normalized_gender_bias(mlm, tokenizer, occupations: Sequence[str] = DEFAULT_OCCUPATIONS,
                                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                                 targets: tuple[str, str] = ("he", "she")) -> dict[str, float]:
    """Kurita et al. (2019), *Measuring bias in contextualized word representations*: per
    occupation and template, ``log P(he)/P(she)`` at the target mask of ``"[MASK] is a nurse."``
    minus the same ratio for the **prior** ``"[MASK] is a [MASK]."`` (the occupation masked too,
    one mask per word piece), averaged over the templates. A model that ignores the occupation
    scores 0 whatever its taste for "he"; > 0 leans to "he", < 0 to "she" (nats). The target
    ``[MASK]`` must come before ``{occupation}`` in each template."""
    occupations, templates = _texts(occupations, "occupations"), _texts(templates, "templates")
    if not occupations or len(set(occupations)) != len(occupations):
        raise ValueError(f"occupations must be non-empty and distinct, got {occupations}")
    if not templates:
        raise ValueError("give at least one template, e.g. '[MASK] is a {occupation}.'")
    ids = _target_ids(tokenizer, targets)
    scores = []
    for template in templates:
        if template.count("[MASK]") != 1 or template.count("{occupation}") != 1 or \
                template.index("[MASK]") > template.index("{occupation}"):
            raise ValueError(f"template {template!r} needs one [MASK] before one {{occupation}}")
        template = template.replace("[MASK]", tokenizer.mask_token)
        filled, prior = [], []
        for o in occupations:
            article = ("an " if o[:1].lower() in "aeiou" else "a ") if re.search(r"\ba \{occupation\}", template) else ""
            pattern = re.sub(r"\ba \{occupation\}", "{occupation}", template)
            filled.append(pattern.format(occupation=article + o))
            prior.append(pattern.format(occupation=article + " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(o)))))
        scores.append(_first_mask_log_ratio(mlm, tokenizer, filled, ids) - _first_mask_log_ratio(mlm, tokenizer, prior, ids))
    return dict(zip(occupations, torch.stack(scores).mean(0).tolist()))


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


@dataclass(frozen=True)
class WeatResult:
    """One WEAT: ``statistic`` s(X, Y, A, B); ``effect_size`` (Cohen's-d-like, in pooled standard
    deviations); ``p_value`` (one-sided: a re-split's statistic at least as large); ``n_permutations``
    (the re-splits counted) and ``exact`` (all of them enumerated, or a random sample)."""

    statistic: float
    effect_size: float
    p_value: float
    n_permutations: int
    exact: bool


def _weat_word_scores(target_x, target_y, attribute_a, attribute_b) -> tuple[torch.Tensor, int]:
    """s(w, A, B) of every target, X's then Y's -> ``(2n,)`` float64, and n = |X| = |Y|."""
    sets = {}
    for name, vectors in (("target_x", target_x), ("target_y", target_y), ("attribute_a", attribute_a),
                          ("attribute_b", attribute_b)):
        sets[name] = torch.as_tensor(np.asarray(vectors), dtype=torch.float64)
        if sets[name].ndim != 2 or not len(sets[name]) or not sets[name].shape[1]:
            raise ValueError(f"{name} must be a non-empty (N, H) tensor of vectors, got shape {tuple(sets[name].shape)}")
    if len({v.shape[1] for v in sets.values()}) != 1:
        raise ValueError("all vectors must have the same size H, got " +
                         ", ".join(f"{name} {tuple(v.shape)}" for name, v in sets.items()))
    x, y = sets["target_x"], sets["target_y"]
    if len(x) != len(y):
        raise ValueError(f"target_x has {len(x)} vectors and target_y {len(y)}: WEAT re-splits X and Y into two "
                         f"halves of equal size, so give both the same number")
    return association_scores(torch.cat([x, y]), sets["attribute_a"], sets["attribute_b"]), len(x)


def _effect_size(scores: torch.Tensor, n: int) -> float:
    spread = scores.std()                                         # sample std (n - 1) over X and Y together
    return ((scores[:n].mean() - scores[n:].mean()) / spread).item() if spread > 0 else math.nan


def weat_effect_size(target_x, target_y, attribute_a, attribute_b) -> float:
    """Caliskan et al. (2017): ``(mean_x s(x,A,B) - mean_y s(y,A,B)) / std_{w in X u Y} s(w,A,B)``, where
    s(w,A,B) is :func:`association_scores` (mean cosine to A minus mean cosine to B). Arguments are
    ``(n, H)``, ``(n, H)``, ``(M, H)``, ``(F, H)`` vectors; > 0: X is nearer A than Y is. NaN when every
    s(w,A,B) is the same (no spread to measure the gap in)."""
    return _effect_size(*_weat_word_scores(target_x, target_y, attribute_a, attribute_b))


def weat_permutation_test(target_x, target_y, attribute_a, attribute_b, *, n_permutations: int = 10_000,
                          max_exact: int = 100_000, seed: int = DEFAULT_SEED) -> WeatResult:
    """WEAT (Caliskan et al., 2017) with its permutation test. Statistic ``s(X,Y,A,B) = sum_x s(x,A,B) -
    sum_y s(y,A,B)``; p-value: the share of equal-size re-splits ``(X_i, Y_i)`` of X u Y whose statistic is
    at least the observed one (one-sided, "X nearer A than Y"; up to float rounding). All ``C(2n, n)``
    re-splits are enumerated when there are at most ``max_exact`` (the observed split among them, so
    p >= 1/C(2n, n)); otherwise ``n_permutations`` random ones are drawn from ``seed`` (the caller's RNG
    untouched) and ``p = (1 + hits) / (1 + n_permutations)``. ``max_exact=0`` always samples. Arguments as
    :func:`weat_effect_size`; ``target_x`` and ``target_y`` must have the same size n."""
    check_positive(n_permutations=n_permutations)
    if not is_int(max_exact) or max_exact < 0:
        raise ValueError(f"max_exact must be an int >= 0, got {max_exact!r}")
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    scores, n = _weat_word_scores(target_x, target_y, attribute_a, attribute_b)  # (2n,)
    total = scores.sum()
    observed = 2 * scores[:n].sum() - total            # sum over X minus sum over Y = 2 sum_X - sum_(X u Y)
    at_least = observed - 1e-12 * (1 + scores.abs().sum())   # a tie with the observed split counts as a hit
    n_splits = math.comb(2 * n, n)
    if n_splits <= max_exact:
        sides = torch.tensor(list(itertools.combinations(range(2 * n), n)))                  # (C(2n, n), n)
        hits = int((2 * scores[sides].sum(1) - total >= at_least).sum())
        p_value, counted, exact = hits / n_splits, n_splits, True
    else:
        generator, hits = torch.Generator().manual_seed(int(seed)), 0
        for start in range(0, n_permutations, 1024):
            batch = min(1024, n_permutations - start)
            sides = torch.rand(batch, 2 * n, generator=generator).argsort(1)[:, :n]   # (batch, n) random X_i
            hits += int((2 * scores[sides].sum(1) - total >= at_least).sum())
        p_value, counted, exact = (1 + hits) / (1 + n_permutations), n_permutations, False
    return WeatResult(observed.item(), _effect_size(scores, n), p_value, counted, exact)
