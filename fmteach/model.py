"""MiniGPT: a small GPT-2-style decoder, one class per idea (after karpathy/nanoGPT).

Shapes: B = batch, T = sequence length, C = n_embd, nh = n_head, hs = C // nh, V = vocab_size.
Parameter names follow Hugging Face's GPT-2 (``transformer.h.0.attn.c_attn`` ...), so loading
GPT-2 weights (:meth:`MiniGPT.from_gpt2`) is a name-for-name copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_positive, is_int, is_number, outside
from .attention import attend
from .masks import IGNORE_INDEX
from .outputs import ModelOutput
from .profile import by_profile

__all__ = ["GPTConfig", "MultiHeadAttention", "FeedForward", "TransformerBlock", "MiniGPT"]


@dataclass(frozen=True)
class GPTConfig:
    """Size of a MiniGPT. Presets: ``GPTConfig.smoke(vocab_size)``, ``.cpu(...)``, ``.gpu(...)``."""

    vocab_size: int = 65
    block_size: int = 64  # longest context the model can read (learned position embeddings)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm, as GPT-2

    def __post_init__(self):
        check_positive(vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                       n_head=self.n_head, n_embd=self.n_embd)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}: each head gets n_embd // n_head dims"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")

    @classmethod
    def smoke(cls, vocab_size: int, **overrides) -> GPTConfig:
        """~0.1M parameters: trains in seconds on 2 CPU cores."""
        return replace(cls(vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=64, dropout=0.0), **overrides)

    @classmethod
    def cpu(cls, vocab_size: int, **overrides) -> GPTConfig:
        """~0.8M parameters, nanoGPT's laptop run: a few minutes on 2 cores."""
        return replace(cls(vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0), **overrides)

    @classmethod
    def gpu(cls, vocab_size: int, **overrides) -> GPTConfig:
        """~10.7M parameters, nanoGPT's shakespeare-char: a few minutes on one GPU."""
        return replace(cls(vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2), **overrides)

    @classmethod
    def course(cls, vocab_size: int, **overrides) -> GPTConfig:
        """~2.7M parameters, the shipped course MiniGPT (``train_lm --recipe course``): about 80 minutes on 2 cores."""
        return replace(cls(vocab_size, block_size=128, n_layer=6, n_head=3, n_embd=192, dropout=0.0), **overrides)

    @classmethod
    def from_profile(cls, vocab_size: int, profile: str | None = None, **overrides) -> GPTConfig:
        """The preset of the active profile (``$FMTEACH_PROFILE``, see :mod:`fmteach.profile`)."""
        preset = by_profile(smoke=cls.smoke, cpu=cls.cpu, gpu=cls.gpu, profile=profile)
        return preset(vocab_size, **overrides)


class MultiHeadAttention(nn.Module):
    """Causal multi-head self-attention: x ``(B, T, C)`` -> ``(B, T, C)``.

    Two paths, same numbers: the teaching path (:func:`fmteach.attention.scaled_dot_product_attention`,
    returns the weights) and the fast path (``torch.nn.functional.scaled_dot_product_attention``
    with ``is_causal=True``: flash attention on a GPU, and the T x T weights are never stored).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``(B, T, C)`` -> ``(y (B, T, C), weights (B, nh, T, T) or None)``; weights force the teaching path."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        dropout_p = self.dropout if self.training else 0.0
        y, weights = attend(q, k, v, is_causal=True, dropout_p=dropout_p, need_weights=need_weights)  # see attention.attend
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, nh, hs) -> (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y)), weights


class FeedForward(nn.Module):
    """Position-wise MLP ``C -> 4C -> C`` with GPT-2's tanh-approximated GELU: ``(B, T, C) -> (B, T, C)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new": copied weights give GPT-2's logits
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``; ``(B, T, C) -> (B, T, C)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = FeedForward(config)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, weights = self.attn(self.ln_1(x), need_weights=need_weights)
        x = x + attended  # residual: each block adds to the stream instead of replacing it
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class MiniGPT(nn.Module):
    """Token + position embeddings -> n_layer blocks -> LayerNorm -> logits over the vocabulary."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layer)),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by 1/sqrt(2 * n_layer)
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _check_idx(self, idx: torch.Tensor, name: str = "idx") -> None:
        if not isinstance(idx, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name} has dtype {idx.dtype}: expected integer token ids (torch.long)")
        if idx.dim() != 2:
            raise ValueError(f"{name} has shape {tuple(idx.shape)}: expected (batch, seq_len)")
        if idx.shape[1] > self.config.block_size:
            raise ValueError(
                f"{name} has shape {tuple(idx.shape)}: sequence length {idx.shape[1]} is longer than "
                f"block_size={self.config.block_size}; crop the context to the last block_size tokens"
            )
        if outside(idx, self.config.vocab_size):  # checked in eager mode on the CPU only
            raise ValueError(f"{name} holds ids outside the vocabulary [0, {self.config.vocab_size})")

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                output_attentions: bool = False) -> ModelOutput:
        """idx ``(B, T)`` token ids -> :class:`~fmteach.outputs.ModelOutput` with ``logits`` ``(B, T, V)``.

        ``targets`` ``(B, T)`` (``-100`` = ignore) adds ``loss``, the mean cross-entropy. With
        ``output_attentions=True``, ``attentions`` holds every layer's weights, one ``(B, nh, T, T)`` each.
        """
        self._check_idx(idx)
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        maps = []
        for block in self.transformer.h:
            x, weights = block(x, need_weights=output_attentions)
            maps.append(weights)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(
                    f"targets has shape {tuple(targets.shape)}, idx has {tuple(idx.shape)}: they must match"
                )
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=IGNORE_INDEX)
        return ModelOutput(logits, loss, attentions=tuple(maps) if output_attentions else None)

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Every layer's attention weights for idx ``(B, T)``: ``(n_layer, B, nh, T, T)``; call ``eval()`` first."""
        return torch.stack(self(idx, output_attentions=True).attentions)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` ids after idx ``(B, T)`` -> ``(B, T + max_new_tokens)``.

        ``temperature=0`` picks the most likely token (greedy); ``top_k`` samples among the k most
        likely only. ``generator`` (on idx's device) makes sampling repeatable. Call ``eval()`` first.
        """
        self._check_idx(idx[:, -self.config.block_size :] if idx.dim() == 2 else idx)
        if idx.shape[1] == 0:
            raise ValueError(f"idx has shape {tuple(idx.shape)}: an empty prompt; give at least one token of context")
        if not is_int(max_new_tokens) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        if not is_number(temperature) or temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0 (0 = greedy)")
        check_positive(top_k=top_k, allow_none=True)
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]  # the model reads at most block_size tokens
            logits = self(context).logits[:, -1, :]  # (B, V): only the last position predicts the next token
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth_best = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
                    logits = logits.masked_fill(logits < kth_best, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, next_id), dim=1)
        return idx

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts per part, for a lesson's table; the tied output layer is counted once."""
        parts = {"token embedding": 0, "position embedding": 0, "attention": 0, "feed-forward": 0, "layer norms": 0}
        for name, p in self.named_parameters():  # shared (tied) tensors appear once
            if name.startswith("transformer.wte"):
                part = "token embedding"
            elif name.startswith("transformer.wpe"):
                part = "position embedding"
            elif ".attn." in name:
                part = "attention"
            elif ".mlp." in name:
                part = "feed-forward"
            else:
                part = "layer norms"
            parts[part] += p.numel()
        parts["total"] = sum(parts.values())
        return parts

    @classmethod
    def from_gpt2(cls, hf_model: nn.Module, dropout: float = 0.0) -> MiniGPT:
        """A MiniGPT with the weights of a transformers ``GPT2LMHeadModel`` (same names, same logits).

        GPT-2 stores its linear layers as ``Conv1D`` with weight ``(in, out)``; ``nn.Linear`` wants
        ``(out, in)``, so those weights are transposed.
        """
        hf = hf_model.config
        if getattr(hf, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"activation_function={hf.activation_function!r}: MiniGPT uses GPT-2's tanh GELU")
        if getattr(hf, "n_inner", None) not in (None, 4 * hf.n_embd):
            raise ValueError(f"n_inner={hf.n_inner}: MiniGPT's feed-forward width is 4 * n_embd = {4 * hf.n_embd}")
        if hf.layer_norm_epsilon != 1e-5 or not hf.scale_attn_weights or hf.scale_attn_by_inverse_layer_idx:
            raise ValueError("this GPT-2 variant (layer_norm_epsilon, attention scaling) differs from MiniGPT's")
        config = GPTConfig(hf.vocab_size, hf.n_positions, hf.n_layer, hf.n_head, hf.n_embd, dropout, bias=True)
        model = cls(config)
        theirs = hf_model.state_dict()
        if not torch.equal(theirs["lm_head.weight"], theirs["transformer.wte.weight"]):
            raise ValueError("this GPT-2 has untied input and output embeddings; MiniGPT ties them")
        transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        with torch.no_grad():
            for name, p in model.state_dict().items():
                if name not in theirs:
                    raise ValueError(f"{name} is missing from the GPT-2 state dict")
                source = theirs[name].t() if name.endswith(transposed) else theirs[name]
                if source.shape != p.shape:
                    raise ValueError(f"{name}: GPT-2 has shape {tuple(source.shape)}, MiniGPT {tuple(p.shape)}")
                p.copy_(source)
        return model
