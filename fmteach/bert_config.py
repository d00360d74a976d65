"""The size of a BERT: :class:`BertConfig`, with Hugging Face's field names, the three profile
presets and :meth:`BertConfig.from_json` for a Hugging Face ``config.json``. Re-exported by
:mod:`fmteach.bert`."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .profile import by_profile

__all__ = ["BertConfig"]


@dataclass(frozen=True)
class BertConfig:
    """Hugging Face's ``BertConfig`` field names. Presets: ``smoke()``, ``cpu()``, ``gpu()``."""

    vocab_size: int = 8000
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    num_labels: int = 2
    # Not a Hugging Face BERT field: "post" is BERT's LayerNorm after each residual sum; "pre" puts it
    # before each sub-layer and adds one after the last layer (GPT-2, "Cramming" BERT): a small MLM
    # leaves the unigram plateau with "pre" where "post" stays on it (lesson 05).
    layer_norm_placement: str = "post"

    def __post_init__(self):
        if self.layer_norm_placement not in ("post", "pre"):
            raise ValueError(f"layer_norm_placement must be 'post' or 'pre', got {self.layer_norm_placement!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}"
            )

    @classmethod
    def smoke(cls, vocab_size: int, **overrides) -> BertConfig:
        return replace(cls(vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=256, max_position_embeddings=64), **overrides)

    @classmethod
    def cpu(cls, vocab_size: int, **overrides) -> BertConfig:
        return replace(cls(vocab_size, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                           intermediate_size=512, max_position_embeddings=64), **overrides)

    @classmethod
    def gpu(cls, vocab_size: int, **overrides) -> BertConfig:
        return replace(cls(vocab_size, hidden_size=384, num_hidden_layers=6, num_attention_heads=6,
                           intermediate_size=1536, max_position_embeddings=128), **overrides)

    @classmethod
    def from_profile(cls, vocab_size: int, profile: str | None = None, **overrides) -> BertConfig:
        return by_profile(smoke=cls.smoke, cpu=cls.cpu, gpu=cls.gpu, profile=profile)(vocab_size, **overrides)

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read a Hugging Face ``config.json``; fields we do not model are ignored."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (expected a Hugging Face config.json)")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err}): expected a Hugging Face config.json") from err
        if not isinstance(raw, dict):
            raise ValueError(f"{path} holds a JSON {type(raw).__name__}: expected an object (a config.json)")
        if raw.get("model_type", "bert") != "bert" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path} is not a BERT with absolute positions (model_type={raw.get('model_type')!r})")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act={raw['hidden_act']!r}, MiniBert implements 'gelu' only")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
