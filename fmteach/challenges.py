"""Lesson 09's overfitting helper and compute estimate.

The lesson's three challenges each have a module: :mod:`fmteach.leakage` (duplicates, naive splits,
memorisation), :mod:`fmteach.bias` (fill-mask and embedding probes) and this one: overfitting
(:func:`set_dropout`; its curves are drawn by :func:`fmteach.viz.plot_accuracy_curves`) and what
training costs (:func:`training_flops`: about 6 floating-point operations per parameter per
training token).
"""

from __future__ import annotations

import torch

__all__ = ["set_dropout", "training_flops", "BERT_BASE_PRETRAINING"]

# BERT-base pretraining (Devlin et al., 2019): 110 M parameters, 1 M steps of 256 sequences, 90 % of
# the steps at 128 tokens and the last 10 % at 512; BooksCorpus + English Wikipedia = 3.3 B words.
BERT_BASE_PRETRAINING = {"parameters": 110e6, "tokens": 256 * (900_000 * 128 + 100_000 * 512), "words": 3.3e9}


def training_flops(parameters: float, tokens: float) -> float:
    """Floating-point operations to train ``parameters`` weights on ``tokens`` tokens: ``6 N D``
    (2 per weight per token forward, 4 backward; Kaplan et al., 2020). Attention over the
    sequence adds ``~6 · n_layer · T · d`` per token, small next to ``N`` for short contexts."""
    if parameters <= 0 or tokens <= 0:
        raise ValueError(f"parameters ({parameters}) and tokens ({tokens}) must be positive")
    return 6.0 * float(parameters) * float(tokens)


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


