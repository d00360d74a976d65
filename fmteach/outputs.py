"""What our models return: small dataclasses under the names Hugging Face's outputs use.

``out.logits``, ``out.loss``, ``out.attentions`` and ``out.hidden_states`` read the same for a MiniGPT,
a mini-BERT and a ``transformers`` model, so the loops, metrics and lessons need no adapter between
them. A field the model was not asked for (``loss`` without labels, ``attentions`` without
``output_attentions=True``) is ``None``, as in Hugging Face.

Shapes: B = batch, T = sequence length, V = vocabulary (or classes), nh = heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ModelOutput", "Seq2SeqOutput", "QuestionAnsweringOutput"]


@dataclass
class ModelOutput:
    """A language model's or a classifier's output (Hugging Face: ``CausalLMOutput``, ``MaskedLMOutput``,
    ``SequenceClassifierOutput``, ``TokenClassifierOutput``)."""

    logits: torch.Tensor                                   # (B, T, V), (B, num_labels) or (n_masked, V)
    loss: torch.Tensor | None = None                       # the mean cross-entropy when labels were given
    hidden_states: tuple[torch.Tensor, ...] | None = None  # the embeddings, then every layer's output (B, T, H)
    attentions: tuple[torch.Tensor, ...] | None = None     # one (B, nh, T, T) per layer, each row sums to 1


@dataclass
class Seq2SeqOutput(ModelOutput):
    """An encoder-decoder's output (Hugging Face: ``Seq2SeqLMOutput``)."""

    cross_attentions: tuple[torch.Tensor, ...] | None = None  # one (B, nh, T_target, T_source) per decoder layer


@dataclass
class QuestionAnsweringOutput:
    """Start and end scores of an answer span (Hugging Face: ``QuestionAnsweringModelOutput``)."""

    start_logits: torch.Tensor      # (B, T)
    end_logits: torch.Tensor        # (B, T)
    loss: torch.Tensor | None = None  # mean of the start and end cross-entropies, given both positions
