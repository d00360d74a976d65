"""Character-level language-model data: a tokenizer, a split by play, batches, a unigram baseline.

Validation is a set of *whole plays* the model never trains on, not random lines: neighbouring
lines of one scene share names and words, so a random split would flatter the model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ._checks import check_positive

__all__ = [
    "DEFAULT_VAL_PLAYS",
    "CharTokenizer",
    "split_by_play",
    "get_batch",
    "unigram_baseline_loss",
    "CharData",
    "load_shakespeare_chars",
]

# Four plays (about 9% of the characters), one from each large genre, so that validation is
# neither all kings nor all lovers: a tragedy, a comedy, a history and a romance.
DEFAULT_VAL_PLAYS = ("macbeth", "twelfth-night", "richard-ii", "the-tempest")


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters of ``text``."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty string to build its vocabulary from")
        self.chars = "".join(sorted(set(text)))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """``"To be"`` -> ``[T, o, ' ', b, e]`` ids; raises a ValueError naming an unknown character."""
        try:
            return [self.stoi[ch] for ch in text]
        except KeyError as err:
            ch = err.args[0]
            raise ValueError(
                f"character {ch!r} (position {text.index(ch)}) is not in the vocabulary of "
                f"{self.vocab_size} characters"
            ) from None

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Ids (a list or a 1-D tensor) -> text."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"ids has shape {tuple(ids.shape)}: decode one sequence (1-D) at a time")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary [0, {self.vocab_size})")
            out.append(self.chars[i])
        return "".join(out)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def split_by_play(corpus, val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> tuple[str, str]:
    """``(train_text, val_text)``: the plays of ``val_plays`` held out, each side joined by blank lines.

    ``corpus`` is a :class:`fmteach.assets.ShakespeareCorpus` (anything with ``.plays: dict``).
    """
    val_plays = [val_plays] if isinstance(val_plays, str) else list(val_plays)
    unknown = [name for name in val_plays if name not in corpus.plays]
    if unknown:
        raise ValueError(f"unknown plays {unknown}; choose from {sorted(corpus.plays)}")
    if not val_plays or len(set(val_plays)) == len(corpus.plays):
        raise ValueError(f"val_plays={val_plays}: hold out at least one play and keep at least one for training")
    held_out = set(val_plays)
    train = [text for name, text in corpus.plays.items() if name not in held_out]
    val = [text for name, text in corpus.plays.items() if name in held_out]
    return "\n\n".join(train), "\n\n".join(val)


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a 1-D id tensor: ``x, y`` both ``(batch_size, block_size)``, ``y`` = ``x`` shifted by one.

    Start positions come from ``generator`` (a CPU generator), so a seeded generator gives the
    same batches on any device.
    """
    check_positive(batch_size=batch_size, block_size=block_size)
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        raise ValueError(f"data has shape {tuple(getattr(data, 'shape', ()))}: expected a 1-D tensor of token ids")
    if len(data) <= block_size:
        raise ValueError(f"data has {len(data)} tokens: need more than block_size={block_size} for one window")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,) on the CPU
    offsets = starts.to(data.device)[:, None] + torch.arange(block_size + 1, device=data.device)  # (B, T+1)
    windows = data[offsets].long()  # (B, T+1): one gather instead of a Python loop
    x, y = windows[:, :-1], windows[:, 1:]  # y[b, t] is the token that follows x[b, t]
    if device is not None:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return x, y


def unigram_baseline_loss(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy (nats per character) on ``val_ids`` of a model that ignores context.

    It predicts every character with its training frequency (add-one smoothed, so a character
    unseen in training costs a finite amount). A language model must beat this number.
    """
    train_ids, val_ids = torch.as_tensor(train_ids).flatten(), torch.as_tensor(val_ids).flatten()
    if len(train_ids) == 0 or len(val_ids) == 0:
        raise ValueError("train_ids and val_ids must not be empty")
    counts = torch.bincount(train_ids.long().cpu(), minlength=vocab_size).double() + 1.0  # Laplace smoothing
    if len(counts) != vocab_size:
        raise ValueError(f"train_ids holds ids >= vocab_size={vocab_size}")
    log_probs = counts.log() - math.log(counts.sum().item())  # (V,)
    return float(-log_probs[val_ids.long().cpu()].mean())


@dataclass(frozen=True)
class CharData:
    """Shakespeare as ids: ``train`` and ``val`` are 1-D long tensors, ``val_plays`` are held out."""

    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor
    val_plays: tuple[str, ...]

    def batch_fn(self, block_size: int, device: torch.device | str | None = None):
        """``get(split, batch_size, generator) -> (x, y)``, the batch function :func:`fmteach.train.train` calls."""
        # On a GPU the ids (~40 MB) live there too: each batch is then one gather, with no copy per step.
        splits = {"train": self.train, "val": self.val}
        if device is not None:
            splits = {name: ids.to(device) for name, ids in splits.items()}

        def get(split: str, batch_size: int, generator: torch.Generator | None = None):
            if split not in splits:
                raise ValueError(f"split={split!r}: expected 'train' or 'val'")
            return get_batch(splits[split], batch_size, block_size, generator, device)

        return get

    def unigram_baseline(self) -> float:
        """The unigram model's validation loss (nats per character)."""
        return unigram_baseline_loss(self.train, self.val, self.tokenizer.vocab_size)


def load_shakespeare_chars(val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> CharData:
    """The 38 plays, tokenized by character (vocabulary from all plays) and split by play."""
    from .assets import load_shakespeare  # imported here: the rest of this module needs no assets

    val_plays = (val_plays,) if isinstance(val_plays, str) else tuple(val_plays)
    corpus = load_shakespeare()
    tokenizer = CharTokenizer(corpus.text)  # every play's characters, so validation has no unknowns
    train_text, val_text = split_by_play(corpus, val_plays)
    train = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
    return CharData(tokenizer, train, val, val_plays)
