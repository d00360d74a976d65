"""Three challenges of foundation models, each measured (lesson 09), and what training costs.

The helpers live by idea: :mod:`fmteach.leakage` (duplicates, naive splits, memorisation) and
:mod:`fmteach.bias` (fill-mask and embedding probes); this module re-exports their names (older
notebooks import them from here) and holds the overfitting helpers (:func:`set_dropout`,
its curves are drawn by :func:`fmteach.viz.plot_accuracy_curves`) and the compute estimate
(:func:`training_flops`: about 6 floating-point operations per parameter per training token).
"""

from __future__ import annotations

import torch

from .bias import (DEFAULT_OCCUPATIONS, DEFAULT_TEMPLATES, FEMALE_WORDS, MALE_WORDS, association_scores,
                   embedding_association, fill_mask_gender_bias, prior_normalized_gender_bias)
from .leakage import (DuplicateReport, ExtractionResult, LeakageResult, extraction_rate, find_duplicates,
                      leakage_experiment, line_completion_windows, naive_split, nested_blocks, normalize_text,
                      text_classifier)

__all__ = [
    "DEFAULT_OCCUPATIONS", "DEFAULT_TEMPLATES", "MALE_WORDS", "FEMALE_WORDS",
    "normalize_text", "DuplicateReport", "find_duplicates", "naive_split", "nested_blocks",
    "text_classifier", "LeakageResult", "leakage_experiment",
    "line_completion_windows", "ExtractionResult", "extraction_rate",
    "fill_mask_gender_bias", "prior_normalized_gender_bias", "association_scores", "embedding_association",
    "set_dropout",
    "training_flops", "BERT_BASE_PRETRAINING",
]

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


