"""Translation needs a decoder: cross-attention and a small encoder-decoder.

In **cross-attention** the queries come from the decoder's sequence (length L) and the keys and
values from the encoder's output, the *memory* (length S): every output position looks at the
whole input. The encoder is our BERT encoder (:class:`fmteach.bert.MiniBertModel`); the decoder
is pre-LayerNorm: causal self-attention, cross-attention, feed-forward, each added to the stream.

Shapes: B = batch, L = target length, S = source length, D = d_model, nh = heads, hs = D // nh.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive
from ..attention import attend
from ..bert import MiniBertModel
from ..bert_config import BertConfig
from ..masks import IGNORE_INDEX, padding_mask
from ..outputs import Seq2SeqOutput
from ..seeding import DEFAULT_SEED

__all__ = ["Seq2SeqConfig", "MultiHeadCrossAttention", "DecoderLayer", "Seq2Seq", "REVERSAL_SPECIALS",
           "make_reversal_set", "greedy_decode", "exact_match"]


@dataclass(frozen=True)
class Seq2SeqConfig:
    vocab_size: int = 13
    d_model: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    d_ff: int = 128
    max_len: int = 16
    dropout: float = 0.0

    def __post_init__(self):
        check_positive(vocab_size=self.vocab_size, d_model=self.d_model, n_heads=self.n_heads, max_len=self.max_len,
                       n_encoder_layers=self.n_encoder_layers, n_decoder_layers=self.n_decoder_layers, d_ff=self.d_ff)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    def encoder_config(self) -> BertConfig:
        return BertConfig(self.vocab_size, self.d_model, self.n_encoder_layers, self.n_heads, self.d_ff, self.max_len,
                          hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout)


class MultiHeadCrossAttention(nn.Module):
    """Queries from ``x`` ``(B, L, D)``, keys and values from ``memory`` ``(B, S, D)`` -> ``(B, L, D)``.

    ``memory=None`` makes it self-attention (``is_causal=True`` for a decoder). ``memory_mask``
    ``(B, S)`` is 1 for real memory tokens, 0 for padding."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x, memory=None, memory_mask=None, *, is_causal=False, need_weights=False):
        """-> ``(output (B, L, D), weights (B, nh, L, S) or None)``."""
        memory = x if memory is None else memory
        if x.dim() != 3 or memory.dim() != 3 or x.shape[0] != memory.shape[0] or x.shape[2] != memory.shape[2]:
            raise ValueError(f"x has shape {tuple(x.shape)} and memory {tuple(memory.shape)}: expected (B, L, D) and (B, S, D)")
        B, L, D = x.shape
        split = lambda t: t.view(B, t.shape[1], self.n_heads, D // self.n_heads).transpose(1, 2)  # noqa: E731 (B, nh, *, hs)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(memory)), split(self.v_proj(memory))
        mask = None if memory_mask is None else padding_mask(memory_mask)  # (B, 1, 1, S)
        y, weights = attend(q, k, v, mask, is_causal=is_causal, need_weights=need_weights)  # (B, nh, L, hs)
        return self.out_proj(y.transpose(1, 2).reshape(B, L, D)), weights

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadCrossAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` (its in_proj stacks q, k, v)."""
        if mha.embed_dim != self.q_proj.in_features or mha.num_heads != self.n_heads or mha.in_proj_weight is None:
            raise ValueError(f"torch module has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}: expected "
                             f"{self.q_proj.in_features}, {self.n_heads} and one packed in_proj_weight")
        for proj, w, b in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


class DecoderLayer(nn.Module):
    """Pre-LN: ``x += self_attn(ln(x))`` (causal), ``x += cross_attn(ln(x), memory)``, ``x += ffn(ln(x))``."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        D = config.d_model
        self.ln_self, self.ln_cross, self.ln_ffn = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
        self.self_attn = MultiHeadCrossAttention(D, config.n_heads)
        self.cross_attn = MultiHeadCrossAttention(D, config.n_heads)
        self.ffn = nn.Sequential(nn.Linear(D, config.d_ff), nn.GELU(), nn.Linear(config.d_ff, D))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, memory, memory_mask=None, need_weights=False):
        """``x`` ``(B, L, D)``, ``memory`` ``(B, S, D)`` -> ``(x, cross-attention weights (B, nh, L, S) or None)``."""
        x = x + self.dropout(self.self_attn(self.ln_self(x), is_causal=True)[0])
        attended, weights = self.cross_attn(self.ln_cross(x), memory, memory_mask, need_weights=need_weights)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.ln_ffn(x))), weights


class Seq2Seq(nn.Module):
    """Our BERT encoder + a decoder of :class:`DecoderLayer` + a linear layer to the vocabulary."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.encoder = MiniBertModel(config.encoder_config(), add_pooling_layer=False)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.positions = nn.Embedding(config.max_len, config.d_model)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_decoder_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)

    def encode(self, src, src_mask):
        return self.encoder(src, src_mask).last_hidden_state  # (B, S, D)

    def decode(self, tgt_in, memory, src_mask, output_attentions=False) -> Seq2SeqOutput:
        """-> ``logits`` ``(B, L, V)`` and, if asked, each layer's ``cross_attentions`` ``(B, nh, L, S)``."""
        if tgt_in.shape[1] > self.config.max_len:
            raise ValueError(f"tgt_in has {tgt_in.shape[1]} positions but max_len={self.config.max_len}")
        x = self.embed(tgt_in) + self.positions(torch.arange(tgt_in.shape[1], device=tgt_in.device))
        maps = []
        for layer in self.layers:
            x, weights = layer(x, memory, src_mask, output_attentions)
            maps.append(weights)
        return Seq2SeqOutput(self.lm_head(self.ln_f(x)), cross_attentions=tuple(maps) if output_attentions else None)

    def forward(self, src, src_mask, tgt_in, labels=None, *, output_attentions=False) -> Seq2SeqOutput:
        """Teacher forcing: ``src`` ``(B, S)``, ``tgt_in`` ``(B, L)`` -> ``logits`` ``(B, L, V)``, ``loss`` when
        ``labels`` are given, and with ``output_attentions=True`` each decoder layer's ``cross_attentions``."""
        out = self.decode(tgt_in, self.encode(src, src_mask), src_mask, output_attentions)
        if labels is not None:
            out.loss = F.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return out


REVERSAL_SPECIALS = {"pad": 0, "bos": 1, "eos": 2}  # symbols are 3 .. vocab_size - 1


def make_reversal_set(n: int, *, lengths=(4, 10), vocab_size: int = 13, seed: int = DEFAULT_SEED) -> dict[str, torch.Tensor]:
    """``n`` random sequences and their reversals: ``src``, ``src_mask`` ``(n, S)``, decoder input
    ``tgt_in`` = [BOS] + reversed and ``labels`` = reversed + [EOS] ``(n, S + 1)``, -100 past the end."""
    check_positive(n=n, vocab_size=vocab_size)
    rng = random.Random(seed)
    S = lengths[1]
    src, tgt_in, labels = torch.zeros(n, S, dtype=torch.long), torch.zeros(n, S + 1, dtype=torch.long), torch.full((n, S + 1), IGNORE_INDEX)
    for i in range(n):
        seq = [rng.randrange(3, vocab_size) for _ in range(rng.randint(*lengths))]
        rev = seq[::-1]
        src[i, :len(seq)] = torch.tensor(seq)
        tgt_in[i, :len(seq) + 1] = torch.tensor([REVERSAL_SPECIALS["bos"]] + rev)
        labels[i, :len(seq) + 1] = torch.tensor(rev + [REVERSAL_SPECIALS["eos"]])
    return {"src": src, "src_mask": (src != 0).long(), "tgt_in": tgt_in, "labels": labels}


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src, src_mask, *, max_new: int | None = None) -> torch.Tensor:
    """Generate one token at a time, each time feeding the output so far: ``(B, max_new)``
    (positions after [EOS] are [PAD])."""
    model.eval()
    max_new = max_new or model.config.max_len - 1
    memory = model.encode(src, src_mask)
    out = torch.full((src.shape[0], 1), REVERSAL_SPECIALS["bos"], dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    for _ in range(max_new):
        next_token = model.decode(out, memory, src_mask).logits[:, -1].argmax(-1)
        next_token = next_token.masked_fill(done, REVERSAL_SPECIALS["pad"])
        done |= next_token == REVERSAL_SPECIALS["eos"]
        out = torch.cat([out, next_token[:, None]], dim=1)
        if done.all():
            break
    return out[:, 1:]


def exact_match(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of sequences whose every labelled token (up to and including [EOS]) is right."""
    width = labels.shape[1]
    if predicted.shape[1] < width:
        predicted = F.pad(predicted, (0, width - predicted.shape[1]))
    keep = labels != IGNORE_INDEX
    return float(((predicted[:, :width] == labels) | ~keep).all(1).float().mean())
