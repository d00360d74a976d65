"""Fill-in-the-blank probes for a masked LM, drawn by a fixed rule from the held-out plays.

The rule was written before any model was scored on it, so nobody picked the sentences that make a
model look good (or bad):

1. a *line* is a line of speech from a validation play: 6-14 words, not a speaker's name (ending in
   ``:``), not a heading or a stage direction (``ACT``, ``SCENE``, ``Enter``, ``Exit``, ``Exeunt``,
   ``Re-enter``), not all capitals;
2. its *blank* is one of its words (not the first) that is among the ``top_words`` commonest words
   of the *training* plays and is a single WordPiece piece; of those, the least common (often a
   content word, but not always: a line's rarer words may lie outside the list), the first on a tie;
3. the line before it, when that is also a line of speech, is kept in front as context;
4. ``n`` probes are taken evenly spaced over all qualifying lines of the plays, in play order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import check_positive
from .assets import load_shakespeare
from .lm_data import DEFAULT_VAL_PLAYS
from .mlm import fill_mask

__all__ = ["ClozeProbe", "training_word_ranks", "cloze_probes", "probe_predictions", "top_k_hit_rate"]

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
NOT_SPEECH = re.compile(r"^(ACT|SCENE|Enter|Exit|Exeunt|Re-enter)\b")


@dataclass(frozen=True)
class ClozeProbe:
    text: str     # context line(s) with one [MASK]
    answer: str   # the hidden word, lower case
    rank: int     # its frequency rank in the training plays (0 = commonest)
    play: str


def training_word_ranks(val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> dict[str, int]:
    """Lower-cased word -> frequency rank over the training plays (every play but ``val_plays``)."""
    corpus = load_shakespeare()
    counts = Counter(w.lower() for name, text in corpus.plays.items() if name not in val_plays
                     for w in WORD.findall(text))
    return {word: i for i, (word, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}


def _is_speech(line: str) -> bool:
    words = line.split()
    return (6 <= len(words) <= 14 and not line.rstrip().endswith(":") and not line.isupper()
            and NOT_SPEECH.match(line.strip()) is None)


def cloze_probes(tokenizer, n: int = 32, *, top_words: int = 500,
                 val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> list[ClozeProbe]:
    """``n`` probes from ``val_plays`` by the rule in the module docstring."""
    check_positive(n=n)
    ranks = training_word_ranks(val_plays)
    corpus = load_shakespeare()
    vocab = tokenizer.get_vocab()
    candidates = []
    for play in val_plays:
        lines = [line.strip() for line in corpus.plays[play].splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if not _is_speech(line):
                continue
            words = [(m.group(), m.start()) for m in WORD.finditer(line)][1:]
            eligible = [(ranks[w.lower()], w, start) for w, start in words
                        if ranks.get(w.lower(), top_words) < top_words and w.lower() in vocab]
            if not eligible:
                continue
            rank, word, start = max(eligible, key=lambda e: (e[0], -e[2]))
            masked = line[:start] + tokenizer.mask_token + line[start + len(word):]
            context = lines[i - 1] + " " if i > 0 and _is_speech(lines[i - 1]) else ""
            candidates.append(ClozeProbe(context + masked, word.lower(), rank, play))
    if len(candidates) < n:
        raise ValueError(f"only {len(candidates)} lines qualify, asked for n={n}")
    step = len(candidates) / n
    return [candidates[int(i * step)] for i in range(n)]


@torch.no_grad()
def probe_predictions(model, tokenizer, probes: Sequence[ClozeProbe], top_k: int = 5) -> list[list[str]]:
    """Each probe's ``top_k`` guesses for its blank, best first."""
    return [[g["token"] for g in fill_mask(model, tokenizer, probe.text, top_k=top_k)[0]] for probe in probes]


def top_k_hit_rate(probes: Sequence[ClozeProbe], guesses: Sequence[Sequence[str]]) -> float:
    """Share of probes whose answer is among its guesses."""
    if len(probes) != len(guesses) or not probes:
        raise ValueError(f"need one list of guesses per probe, got {len(guesses)} for {len(probes)} probes")
    return sum(p.answer in g for p, g in zip(probes, guesses)) / len(probes)
