"""Bias probes (lesson 09): what associations of occupations with gender has a model learned?

* fill-mask -- :func:`fill_mask_gender_bias` (``log P(he) / P(she)`` at a ``[MASK]``, raw) and
  :func:`prior_normalized_gender_bias` (Kurita et al., 2019: the same ratio minus the model's
  prior, the ratio when the occupation is masked too);
* embeddings -- :func:`embedding_association` (WEAT-style: cosine to male minus cosine to female
  words); :func:`fmteach.viz.plot_occupation_scores` draws either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .leakage import _texts

__all__ = [
    "DEFAULT_OCCUPATIONS", "DEFAULT_TEMPLATES", "MALE_WORDS", "FEMALE_WORDS",
    "fill_mask_gender_bias", "prior_normalized_gender_bias", "association_scores", "embedding_association",
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
    from .bert import logits_of

    device = next(mlm.parameters()).device
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    input_ids = enc["input_ids"].to(device)
    logits = logits_of(mlm(input_ids=input_ids, attention_mask=enc["attention_mask"].to(device)))
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


