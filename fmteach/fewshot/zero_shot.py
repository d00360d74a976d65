"""Zero-shot classification with a pretrained encoder, no labelled example at all (lesson 08).

* **embedding similarity** -- embed each text and a description of each label with the same
  sentence encoder (mean pooling over the packaged MiniLM, as sentence-transformers does for
  all-MiniLM-L6-v2) and pick the label whose description is closest (cosine);
* **cloze prompts** -- wrap the text in a template with a ``[MASK]`` ("... It was [MASK].") and
  let a masked language model choose between label words ("terrible" / "great").
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence

import torch

from .._checks import check_positive, is_int
from .._io import CheckpointError, atomic_torch_save, eval_mode, torch_load
from ..assets import pretrained_bert
from ..cache import cache_dir
from ..finetune.data import check_texts, length_sorted_batches
from ..lm_data import DEFAULT_VAL_PLAYS
from ..progress import progress_bar

__all__ = ["CLOZE_PROMPTS", "THOU_YOU", "thou_or_you", "DESCRIPTION_TEMPLATE", "LABEL_DESCRIPTIONS", "cloze_scores", "embed", "label_embeddings",
           "load_embedder", "mean_pool", "similarity_scores"]

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
    # thou_or_you below: the pronoun that began a line of Shakespeare, put back as the blank
    "thou-or-you": {"template": "[MASK] {text}", "verbalizer": [["thou"], ["you"]]},
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


def _embedding_cache_path(model, tokenizer, texts: Sequence[str], max_length: int, normalize: bool):
    """Keyed by everything the vectors depend on: every weight, the tokenizer, the texts and the options."""
    h = hashlib.sha256()
    h.update(f"{getattr(model.config, '_name_or_path', '')}|{max_length}|{normalize}|".encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)  # vocabulary, normaliser and all, as JSON
    h.update((backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))).encode())
    for name, tensor in model.state_dict().items():  # every weight, byte for byte: these weights, not a name
        h.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
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


@torch.no_grad()
def embed(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 64,
          normalize: bool = True, device=None, cache: bool = False, progress: bool | None = None) -> torch.Tensor:
    """Sentence embeddings ``(N, H)`` (float32, on the CPU): mean of the last layer's token vectors
    over real tokens, L2-normalised. Texts are batched by length so that little is padded; the
    model runs in eval mode (no dropout) for the call. ``cache=True`` keeps the result in
    ``data/cache`` (keyed by the texts and the weights); ``progress=None`` shows a bar unless the
    profile is ``smoke`` (see :mod:`fmteach.progress`)."""
    texts = check_texts(texts, "texts")
    check_positive(max_length=max_length)
    path = _embedding_cache_path(model, tokenizer, texts, max_length, normalize) if cache else None
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
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    logits = mlm(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
    is_mask = enc["input_ids"].to(device) == tokenizer.mask_token_id
    if (is_mask.sum(1) != 1).any():
        raise ValueError("each prompt must hold exactly one mask token")
    log_probs = logits[is_mask].float().log_softmax(-1)  # (B, V)
    return torch.stack([log_probs[:, ids].exp().mean(-1).log() for ids in word_ids], dim=-1).cpu()


@torch.no_grad()
def cloze_scores(mlm, tokenizer, texts: Sequence[str], *, template: str, verbalizer: Sequence[Sequence[str]],
                 max_length: int | None = None, batch_size: int = 32, calibrate: bool | str = True,
                 device=None) -> torch.Tensor:
    """Zero-shot scores ``(N, C)`` from a masked LM: the log-probability, at the ``[MASK]`` of
    ``template.format(text=...)``, of each label's words (averaged in probability over a label's
    words). Calibration removes the model's preference for some label words whatever the input,
    so that a model that simply prefers "great" to "terrible" everywhere is not rewarded:

    * ``calibrate=True`` or ``"content-free"`` subtracts the scores of a content-free text, "N/A"
      (contextual calibration, Zhao et al., 2021);
    * ``calibrate="batch"`` subtracts the mean score over ``texts`` themselves (batch calibration,
      Zhou et al., 2023): no label is used, only the unlabelled inputs, and "N/A" is not needed to
      be neutral for this model;
    * ``calibrate=False``: the raw scores.

    Prompts are cut to ``max_length`` tokens (default: 128, or less if the model has fewer positions).

    Works for our :class:`~fmteach.bert.MiniBertForMaskedLM` and any Hugging Face masked LM.
    """
    if not isinstance(template, str) or "{text}" not in template or "[MASK]" not in template:
        raise ValueError(f"template must contain '{{text}}' and '[MASK]', got {template!r}")
    if calibrate not in (False, True, "content-free", "batch") or is_int(calibrate):  # 0 == False, 1 == True
        raise ValueError(f"calibrate must be False, True, 'content-free' or 'batch', got {calibrate!r}")
    texts = check_texts(texts, "texts")
    check_positive(batch_size=batch_size)
    word_ids = _verbalizer_ids(tokenizer, verbalizer)
    device = device or next(mlm.parameters()).device
    max_length = min(max_length or 128, getattr(mlm.config, "max_position_embeddings", 512))
    budget = max(1, max_length - len(tokenizer(template.format(text=""))["input_ids"]))

    def score(batch: list[str]) -> torch.Tensor:
        return _mask_log_probs(mlm, tokenizer, _cloze_prompts(tokenizer, batch, template, budget), word_ids, device)

    with eval_mode(mlm):
        scores = torch.cat([score(texts[s:s + batch_size]) for s in range(0, len(texts), batch_size)])
        if calibrate == "batch":
            scores = scores - scores.mean(0)
        elif calibrate:
            scores = scores - score(["N/A"])
    return scores


# ----------------------------------------------------------------------------------------------
# A cloze task the course mini-BERT's pretraining teaches (lesson 08)

THOU_YOU = ("thou", "you")


def thou_or_you(plays: Sequence[str] = DEFAULT_VAL_PLAYS, *, min_chars: int = 10):
    """Shakespeare's T-V distinction as a labelled task with no annotator: every line of ``plays``
    that begins with *thou* (familiar or contemptuous) or *you* (formal), the pronoun removed.

    Returns a :class:`~fmteach.text_datasets.TextSplit`: ``texts`` the rest of each line (at least
    ``min_chars`` characters), ``labels`` 0 for *thou*, 1 for *you*. A cloze prompt puts the blank
    back: ``"[MASK] {text}"``. The default plays are the ones every course model holds out."""
    import re

    from ..assets import load_shakespeare
    from ..text_datasets import TextSplit

    plays = (plays,) if isinstance(plays, str) else tuple(plays)
    corpus = load_shakespeare()
    unknown = [p for p in plays if p not in corpus.plays]
    if not plays or unknown:
        raise ValueError(f"plays must be names of the 38 plays (e.g. {DEFAULT_VAL_PLAYS[0]!r}), got {list(plays)!r}")
    check_positive(min_chars=min_chars)
    pattern = re.compile(rf"^({'|'.join(THOU_YOU)})\s+(\S.{{{min_chars - 1},}})$", re.IGNORECASE)
    texts, labels = [], []
    for play in plays:
        for line in corpus.plays[play].splitlines():
            match = pattern.match(line.strip())
            if match:
                texts.append(match.group(2))
                labels.append(THOU_YOU.index(match.group(1).lower()))
    return TextSplit(texts, labels)
