"""Masked-language-model pretraining: data, metrics, fill-mask (the tokenizer: :mod:`fmteach.wordpiece`).

The seed text's recipe, one function per step:
1. sample a batch of text           -> :meth:`MLMData.get_batch` (random windows of held-in plays)
2. mask 15% of the tokens           -> :func:`fmteach.masks.mask_tokens_for_mlm` (80/10/10)
3. predict the masked tokens        -> :class:`fmteach.bert.MiniBertForMaskedLM`
4. cross-entropy on masked tokens, update -> :func:`fmteach.train.train`
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast

from ._checks import is_int
from ._io import eval_mode, sha256_hex, torch_load
from .assets import load_shakespeare
from .cache import cache_dir
from .distributed import build_once
from .lm_data import DEFAULT_VAL_PLAYS
from .masks import IGNORE_INDEX, mask_tokens_for_mlm
from .seeding import DEFAULT_SEED
from .wordpiece import check_corpus, corpus_cache_key, pretraining_lines

__all__ = ["MLMData", "mlm_metrics", "fill_mask", "INPUT_KINDS"]


@dataclass
class MLMData:
    """Token streams of the training and held-out plays, cut into ``[CLS] … [SEP]`` windows.

    ``get_batch(split, batch_size, generator)`` fits :func:`fmteach.train.train`: random windows,
    masked afresh each time (dynamic masking, as RoBERTa). ``validation_batches`` are fixed.
    """

    tokenizer: PreTrainedTokenizerFast
    train_ids: torch.Tensor  # (N_train,) token ids, plays concatenated
    val_ids: torch.Tensor    # (N_val,)
    seq_len: int = 64        # window length including [CLS] and [SEP]
    mlm_probability: float = 0.15

    @classmethod
    def from_shakespeare(cls, tokenizer, seq_len: int = 64, val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> MLMData:
        """The training plays to learn from, the held-out plays to measure on."""
        return cls.from_corpus(tokenizer, "shakespeare", seq_len=seq_len, val_plays=val_plays)

    @classmethod
    def from_corpus(cls, tokenizer, corpus: str = "shakespeare", seq_len: int = 64,
                    val_plays: Sequence[str] = DEFAULT_VAL_PLAYS) -> MLMData:
        """:func:`pretraining_lines` of ``corpus`` to learn from; the held-out plays to measure on, for
        every corpus, so that models pretrained on different text are measured on the same text."""
        check_corpus(corpus)
        corpus_plays = load_shakespeare()
        unknown = set(val_plays) - set(corpus_plays.plays)
        if unknown:
            raise ValueError(f"unknown validation plays {sorted(unknown)}; names are like {corpus_plays.names[:3]}")

        def encode(lines):
            ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
            return torch.tensor([t for row in ids for t in row], dtype=torch.long)

        def build(tmp):
            val_lines = [line for n in val_plays for line in corpus_plays.plays[n].splitlines() if line]
            torch.save({"train": encode(pretraining_lines(corpus, val_plays)), "val": encode(val_lines)}, tmp)

        # Encoding 5 M characters takes seconds; the streams are cached next to the tokenizer.
        vocab_hash = sha256_hex(str(sorted(tokenizer.get_vocab().items())).encode())[:12]
        path = cache_dir() / f"mlm-streams-{vocab_hash}-{corpus_cache_key(len(tokenizer), val_plays, corpus)}.pt"
        build_once(path, build)  # under torchrun: one process
        streams = torch_load(path, expected="token streams cached by MLMData", required_keys=("train", "val"))
        return cls(tokenizer, streams["train"], streams["val"], seq_len)

    def windows(self, ids: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """``[CLS] ids[s : s+seq_len-2] [SEP]`` for each start: ``(len(starts), seq_len)``."""
        body = torch.stack([ids[s: s + self.seq_len - 2] for s in starts.tolist()])
        cls = torch.full((len(starts), 1), self.tokenizer.cls_token_id)
        sep = torch.full((len(starts), 1), self.tokenizer.sep_token_id)
        return torch.cat([cls, body, sep], dim=1)

    def mask(self, input_ids: torch.Tensor, generator: torch.Generator) -> dict:
        special = (input_ids == self.tokenizer.cls_token_id) | (input_ids == self.tokenizer.sep_token_id)
        masked, labels = mask_tokens_for_mlm(input_ids, mask_token_id=self.tokenizer.mask_token_id,
                                             vocab_size=len(self.tokenizer), special_tokens_mask=special,
                                             mlm_probability=self.mlm_probability, generator=generator)
        return {"input_ids": masked, "attention_mask": torch.ones_like(masked), "labels": labels}

    def get_batch(self, split: str, batch_size: int, generator: torch.Generator, device=None) -> dict:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        ids = self.train_ids if split == "train" else self.val_ids
        starts = torch.randint(len(ids) - self.seq_len + 2, (batch_size,), generator=generator)
        batch = self.mask(self.windows(ids, starts), generator)
        return {k: v.to(device) for k, v in batch.items()} if device is not None else batch

    def batch_fn(self, device=None):
        """``get_batch`` bound to a device, the signature :func:`fmteach.train.train` expects."""
        return lambda split, batch_size, generator: self.get_batch(split, batch_size, generator, device)

    def validation_batches(self, n_rows: int = 256, batch_size: int = 64, seed: int = DEFAULT_SEED) -> list[dict]:
        """A fixed held-out set: evenly spaced windows of the validation plays, masked with ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        step = max(1, (len(self.val_ids) - self.seq_len) // n_rows)
        starts = torch.arange(n_rows) * step
        rows = self.windows(self.val_ids, starts)
        return [self.mask(rows[i: i + batch_size], gen) for i in range(0, n_rows, batch_size)]

    def most_frequent_token_accuracy(self, batches: list[dict], where: str = "mask") -> float:
        """Baseline: always guess the training stream's most frequent token, scored at the same
        positions as :func:`mlm_metrics`' headline (``where="mask"``: the inputs that read ``[MASK]``;
        ``"selected"``: every position with a label, including the 10 % left unchanged)."""
        if where not in ("mask", "selected"):
            raise ValueError(f"where must be 'mask' or 'selected', got {where!r}")
        top = int(torch.bincount(self.train_ids).argmax())
        keep = []
        for b in batches:
            scored = b["labels"] != IGNORE_INDEX
            if where == "mask":
                scored &= b["input_ids"] == self.tokenizer.mask_token_id
            keep.append(b["labels"][scored])
        labels = torch.cat(keep)
        if labels.numel() == 0:
            raise ValueError(f"no {where!r} positions in the batches to score")
        return (labels == top).float().mean().item()


def _logits_where(model, batch: dict, where: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits ``(n, V)`` at the positions where ``where`` ``(B, T)`` is True.

    Through BERT's module names (``bert``, ``cls.predictions``), which our mini-BERT shares with
    Hugging Face's ``BertForMaskedLM``: the ``(B, T, V)`` logits are a small BERT's costliest matmul,
    and only the ~15 % scored positions need them."""
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return model.cls.predictions(hidden[where])


# What the input held at a position the loss is scored on (BERT's 80 / 10 / 10 recipe).
INPUT_KINDS = ("mask", "unchanged", "random")


@torch.no_grad()
def mlm_metrics(model, batches: list[dict], *, mask_token_id: int) -> dict:
    """Held-out masked-LM metrics over fixed batches (the model is left in the mode it was in).

    ``mlm_loss``/``perplexity``: mean cross-entropy over every labelled position (the training
    objective). Accuracy is split by what the *input* held there, because the three kinds are
    different tasks: at ``[MASK]`` the model must guess from context (``accuracy_at_mask``, the
    headline, and ``top5_at_mask``); at an unchanged token it can copy its input
    (``accuracy_unchanged``, near 1 for any model that learned to copy); at a random token it must
    see through a wrong word (``accuracy_random``). ``accuracy_all_selected`` mixes the three, as a
    plain "masked-token accuracy" does, and is reported only to show how much the copies inflate it.
    ``n_mask``/``n_unchanged``/``n_random``: how many positions of each kind were scored.
    """
    if not is_int(mask_token_id):
        raise TypeError(f"mask_token_id must be the tokenizer's [MASK] id (an int), got {mask_token_id!r}")
    device = next(model.parameters()).device
    total_loss, count = 0.0, 0
    correct = dict.fromkeys(INPUT_KINDS, 0)
    seen = dict.fromkeys(INPUT_KINDS, 0)
    top5 = 0
    with eval_mode(model):
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            where = batch["labels"] != IGNORE_INDEX
            picked = _logits_where(model, batch, where).float()
            targets, inputs = batch["labels"][where], batch["input_ids"][where]
            total_loss += torch.nn.functional.cross_entropy(picked, targets, reduction="sum").item()
            count += targets.numel()
            hit = picked.argmax(-1) == targets
            kinds = {"mask": inputs == mask_token_id, "unchanged": inputs == targets}
            kinds["random"] = ~(kinds["mask"] | kinds["unchanged"])
            for kind, rows in kinds.items():
                correct[kind] += hit[rows].sum().item()
                seen[kind] += rows.sum().item()
            top5 += (picked[kinds["mask"]].topk(min(5, picked.shape[-1]), dim=-1).indices
                     == targets[kinds["mask"], None]).any(-1).sum().item()
    if count == 0:
        raise ValueError("the batches hold no labelled position (labels are all -100)")
    loss = total_loss / count
    rate = {kind: correct[kind] / seen[kind] if seen[kind] else float("nan") for kind in INPUT_KINDS}
    return {"mlm_loss": loss, "perplexity": math.exp(loss),
            "accuracy_at_mask": rate["mask"], "top5_at_mask": top5 / seen["mask"] if seen["mask"] else float("nan"),
            "accuracy_unchanged": rate["unchanged"], "accuracy_random": rate["random"],
            "accuracy_all_selected": sum(correct.values()) / count,
            **{f"n_{kind}": seen[kind] for kind in INPUT_KINDS}}


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 5) -> list[list[dict]]:
    """Predict every ``[MASK]`` in ``text``: one list per mask of ``{"token", "score"}``, best first.

    Works for our :class:`~fmteach.bert.MiniBertForMaskedLM` and any Hugging Face masked LM
    (``AutoModelForMaskedLM``, e.g. ``bert-base-uncased`` when online).
    """
    mask = tokenizer.mask_token
    if mask not in text:
        raise ValueError(f"text has no {mask} token to fill: {text!r}")
    if not 1 <= top_k <= len(tokenizer):
        raise ValueError(f"top_k={top_k} must be between 1 and the vocabulary size {len(tokenizer)}")
    device = next(model.parameters()).device
    enc = tokenizer(text, return_tensors="pt")
    with eval_mode(model):
        logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
    positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    results = []
    for pos in positions:
        probs = logits[0, pos].float().softmax(-1)
        scores, ids = probs.topk(top_k)
        results.append([{"token": tokenizer.convert_ids_to_tokens(i), "score": s}
                        for i, s in zip(ids.tolist(), scores.tolist())])
    return results
