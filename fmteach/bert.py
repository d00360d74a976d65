"""MiniBert: a BERT encoder with Hugging Face's module names, so real BERT weights load by name.

Shapes: B = batch, T = sequence length, H = hidden_size, nh = num_attention_heads,
hs = H // nh, V = vocab_size. Post-LayerNorm, as in the original BERT:
``x = LayerNorm(x + Attention(x))`` then ``x = LayerNorm(x + FFN(x))``; with
``BertConfig(layer_norm_placement="pre")`` the same modules compute ``x = x + Attention(LayerNorm(x))``,
``x = x + FFN(LayerNorm(x))`` and one more LayerNorm after the last layer (pre-LN).
Attention is :func:`fmteach.attention.attend` -- the function of lessons 01-03.

The whole encoder, its two heads and their input checks stay in one file, over the package's size
guide, so that it reads side by side with Hugging Face's ``modeling_bert.py`` (lesson 06 does
exactly that). The config lives in :mod:`fmteach.bert_config`, the weight loading in
:mod:`fmteach.bert_loading`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import outside
from .attention import attend
from .bert_config import BertConfig
from .masks import IGNORE_INDEX, padding_mask
from .outputs import ModelOutput

__all__ = [
    "BertEncoderOutput",
    "MiniBertModel",
    "MiniBertForMaskedLM",
    "MiniBertForSequenceClassification",
]


@dataclass
class BertEncoderOutput:
    last_hidden_state: torch.Tensor          # (B, T, H)
    pooler_output: torch.Tensor | None       # (B, H): tanh(dense([CLS])); None without a pooler
    hidden_states: tuple[torch.Tensor, ...]  # num_hidden_layers + 1 tensors (B, T, H): embeddings, then each layer
    attentions: tuple[torch.Tensor, ...] | None = None  # num_hidden_layers tensors (B, nh, T, T)


class BertEmbeddings(nn.Module):
    """word + position + token type embeddings, then LayerNorm and dropout: ids ``(B, T)`` -> ``(B, T, H)``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head self-attention: ``(B, T, H)`` -> ``((B, T, H), weights (B, nh, T, T) or None)``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x, mask=None, need_weights=False):
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.num_heads, H // self.num_heads).transpose(1, 2)  # noqa: E731 (B, nh, T, hs)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        y, weights = attend(q, k, v, mask, dropout_p=self.dropout_p if self.training else 0.0, need_weights=need_weights)
        return y.transpose(1, 2).reshape(B, T, H), weights  # heads side by side again


class BertSelfOutput(nn.Module):
    """Project the heads' output, then the residual connection and a LayerNorm (post-LN; pre-LN
    applies this LayerNorm to the attention's input instead, see :class:`BertAttention`)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.pre_ln = config.layer_norm_placement == "pre"
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, y, residual):
        x = residual + self.dropout(self.dense(y))
        return x if self.pre_ln else self.LayerNorm(x)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x, mask=None, need_weights=False):
        y, weights = self.self(self.output.LayerNorm(x) if self.output.pre_ln else x, mask, need_weights)
        return self.output(y, x), weights


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU, as BERT's "gelu"


class BertOutput(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.pre_ln = config.layer_norm_placement == "pre"
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        x = residual + self.dropout(self.dense(h))
        return x if self.pre_ln else self.LayerNorm(x)


class BertLayer(nn.Module):
    """One encoder layer: attention + residual + LN, then FFN + residual + LN (post-LN); or
    LN + attention + residual, then LN + FFN + residual (pre-LN)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x, mask=None, need_weights=False):
        x, weights = self.attention(x, mask, need_weights)
        h = self.output.LayerNorm(x) if self.output.pre_ln else x
        return self.output(self.intermediate(h), x), weights


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        # pre-LN only: the residual stream is never normalised inside the layers, so once at the end
        self.LayerNorm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                          if config.layer_norm_placement == "pre" else None)


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))  # the [CLS] position


class _PretrainedMixin:
    """``from_pretrained(folder)`` for a Hugging Face BERT folder (config.json + model.safetensors)."""

    base_prefix = ""  # where the encoder sits in this class's state dict ("" or "bert.")

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strict_heads: bool = False, **config_overrides):
        from .bert_loading import load_hf_bert_state_dict

        path = Path(path)
        config = replace(BertConfig.from_json(path / "config.json"), **config_overrides)
        model = cls(config)
        load_hf_bert_state_dict(model, path / "model.safetensors", strict_heads=strict_heads)
        return model.eval()


class MiniBertModel(_PretrainedMixin, nn.Module):
    """The encoder: ids ``(B, T)`` -> :class:`BertEncoderOutput` (every layer's hidden states)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None  # the MLM model has none, as in HF
        self.apply(_init_weights)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, output_attentions=False):
        """``attention_mask`` (B, T) of 0/1 (1 = real token); ``token_type_ids`` (B, T), default 0."""
        _check_ids(input_ids, self.config)
        if attention_mask is not None:
            _check_same_shape("attention_mask", attention_mask, input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        else:
            _check_same_shape("token_type_ids", token_type_ids, input_ids, high=self.config.type_vocab_size)
        mask = None if attention_mask is None else padding_mask(attention_mask)  # (B, 1, 1, T)
        x = self.embeddings(input_ids, token_type_ids)
        hidden, maps = [x], []
        for layer in self.encoder.layer:
            x, weights = layer(x, mask, output_attentions)
            hidden.append(x)
            maps.append(weights)
        if self.encoder.LayerNorm is not None:  # pre-LN: hidden_states keep the raw stream, as in HF's pre-LN models
            x = self.encoder.LayerNorm(x)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BertEncoderOutput(x, pooled, tuple(hidden), tuple(maps) if output_attentions else None)


class MiniBertForMaskedLM(_PretrainedMixin, nn.Module):
    """Encoder + MLM head (dense, GELU, LayerNorm, decoder tied to the word embeddings)."""

    base_prefix = "bert."

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = MiniBertModel(config, add_pooling_layer=False)
        self.cls = nn.Module()
        self.cls.predictions = _MLMHead(config)
        self.cls.predictions.transform.apply(_init_weights)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight  # weight tying

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, *, output_attentions=False,
                masked_only=False):
        """-> :class:`~fmteach.outputs.ModelOutput`: ``logits`` ``(B, T, V)``, ``loss`` when ``labels`` are given
        (-100 = "not masked"), the encoder's ``hidden_states`` and, if asked, ``attentions``.

        ``masked_only=True`` (with labels) scores only the masked positions: logits ``(n_masked, V)``,
        the same loss for a fraction of the work -- what training uses. The ``(B, T, V)`` logits are
        the costliest matmul of a small BERT."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions=output_attentions)
        if labels is not None:
            _check_labels(labels, input_ids.shape, self.config.vocab_size, ignore=True)
        if masked_only:
            if labels is None:
                raise ValueError("masked_only=True needs labels (original ids at masked positions, -100 elsewhere)")
            where = labels != IGNORE_INDEX
            logits = self.cls.predictions(out.last_hidden_state[where])  # (n_masked, V)
            return ModelOutput(logits, F.cross_entropy(logits, labels[where]), out.hidden_states, out.attentions)
        logits = self.cls.predictions(out.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=IGNORE_INDEX)
        return ModelOutput(logits, loss, out.hidden_states, out.attentions)


    def masked_loss(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        """The MLM loss on masked positions only: the same value as ``forward(...).loss``."""
        return self(input_ids, attention_mask, token_type_ids, labels, masked_only=True).loss


class MiniBertForSequenceClassification(_PretrainedMixin, nn.Module):
    """Encoder + dropout + linear classifier on the pooled [CLS] vector."""

    base_prefix = "bert."

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = MiniBertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        _init_weights(self.classifier)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, *, output_attentions=False):
        """-> :class:`~fmteach.outputs.ModelOutput`: ``logits`` ``(B, num_labels)``, ``loss`` when ``labels``
        are given, the encoder's ``hidden_states`` and, if asked, ``attentions``."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions=output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))
        if labels is not None:
            _check_labels(labels, (input_ids.shape[0],), self.config.num_labels, ignore=False)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return ModelOutput(logits, loss, out.hidden_states, out.attentions)


class _MLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        h = self.transform.LayerNorm(F.gelu(self.transform.dense(hidden)))
        return self.decoder(h) + self.bias  # (B, T, V)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, LayerNorm at identity."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.Embedding) and module.padding_idx is not None:
        with torch.no_grad():
            module.weight[module.padding_idx].zero_()
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _check_ids(input_ids: torch.Tensor, config: BertConfig) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"input_ids must be a tensor of integer token ids, got {getattr(input_ids, 'dtype', type(input_ids))}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}: expected (batch, seq_len)")
    if input_ids.shape[1] == 0:
        raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}: no tokens (a tokenizer adds at least [CLS])")
    if input_ids.shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"input_ids has shape {tuple(input_ids.shape)}: seq_len {input_ids.shape[1]} exceeds "
            f"max_position_embeddings={config.max_position_embeddings}; truncate the input"
        )
    if outside(input_ids, config.vocab_size):  # checked in eager mode on the CPU only
        raise ValueError(f"input_ids holds ids in [{int(input_ids.min())}, {int(input_ids.max())}], outside the "
                         f"vocabulary [0, {config.vocab_size}): was it encoded by this model's tokenizer?")


def _check_same_shape(name: str, tensor, input_ids: torch.Tensor, *, high: int | None = None) -> None:
    """``attention_mask`` / ``token_type_ids``: the shape of ``input_ids``, values in ``[0, high)``."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.shape != input_ids.shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, input_ids has {tuple(input_ids.shape)}: "
                         f"they must match")
    if high is not None and outside(tensor, high):
        raise ValueError(f"{name} holds values in [{int(tensor.min())}, {int(tensor.max())}]: expected [0, {high})")


def _check_labels(labels: torch.Tensor, expected_shape: tuple, n_classes: int, *, ignore: bool) -> None:
    """Class labels: integer, the expected shape, each in ``[0, n_classes)`` (or -100 where ``ignore``)."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point():
        raise TypeError(f"labels must be a tensor of integer class ids, got {getattr(labels, 'dtype', type(labels))}")
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(f"labels has shape {tuple(labels.shape)}: expected {tuple(expected_shape)}")
    if outside(labels, n_classes, ignore=IGNORE_INDEX if ignore else None):
        real = labels[labels != IGNORE_INDEX] if ignore else labels
        allowed = f"[0, {n_classes})" + (f" or {IGNORE_INDEX} (not scored)" if ignore else "")
        raise ValueError(f"labels holds values in [{int(real.min())}, {int(real.max())}]: expected {allowed}")
