"""Images are tokens too: a tiny Vision Transformer (Dosovitskiy et al. 2021) on 8x8 digits.

An image is cut into ``patch x patch`` squares; each square's pixels, flattened, go through one
linear layer -- that is the "token embedding" of an image. A learned [CLS] vector is put in front,
learned position embeddings are added, our BERT encoder layers (:class:`fmteach.bert.BertLayer`)
run over the sequence, and a linear head reads the [CLS] position.

Shapes: B = images, n = patches, P = patch * patch pixels, D = hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .._checks import check_positive
from ..bert import BertLayer
from ..bert_config import BertConfig
from ..outputs import ModelOutput
from ..seeding import DEFAULT_SEED

__all__ = ["ViTConfig", "patchify", "TinyViT", "load_digits_split", "logistic_baseline"]


@dataclass(frozen=True)
class ViTConfig:
    image_size: int = 8
    patch: int = 2
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    num_classes: int = 10
    dropout: float = 0.1

    def __post_init__(self):
        check_positive(image_size=self.image_size, patch=self.patch, hidden_size=self.hidden_size,
                       num_layers=self.num_layers, num_heads=self.num_heads, num_classes=self.num_classes)
        if self.image_size % self.patch:
            raise ValueError(f"image_size={self.image_size} is not divisible by patch={self.patch}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch) ** 2

    def encoder_config(self) -> BertConfig:
        return BertConfig(vocab_size=1, hidden_size=self.hidden_size, num_hidden_layers=self.num_layers,
                          num_attention_heads=self.num_heads, intermediate_size=self.intermediate_size,
                          max_position_embeddings=self.num_patches + 1, hidden_dropout_prob=self.dropout,
                          attention_probs_dropout_prob=self.dropout)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, H, W)`` -> ``(B, (H // patch) * (W // patch), patch * patch)``: patches in reading
    order (left to right, top to bottom), each patch's pixels in reading order too."""
    check_positive(patch=patch)
    if images.dim() != 3:
        raise ValueError(f"images has shape {tuple(images.shape)}: expected (batch, height, width)")
    B, H, W = images.shape
    if H % patch or W % patch:
        raise ValueError(f"images are {H}x{W}: height and width must be multiples of patch={patch}")
    grid = images.reshape(B, H // patch, patch, W // patch, patch)  # (B, rows, p, cols, p)
    return grid.permute(0, 1, 3, 2, 4).reshape(B, (H // patch) * (W // patch), patch * patch)


class TinyViT(nn.Module):
    """images ``(B, S, S)`` -> logits ``(B, num_classes)`` (and attention maps when asked)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        D = config.hidden_size
        self.patch_embed = nn.Linear(config.patch ** 2, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.position_embeddings = nn.Parameter(0.02 * torch.randn(1, config.num_patches + 1, D))
        self.layers = nn.ModuleList(BertLayer(config.encoder_config()) for _ in range(config.num_layers))
        self.head = nn.Linear(D, config.num_classes)

    def forward(self, images: torch.Tensor, *, output_attentions: bool = False) -> ModelOutput:
        """-> ``logits`` ``(B, classes)`` and, if asked, each layer's ``attentions`` ``(B, nh, n + 1, n + 1)``."""
        size = self.config.image_size
        if images.dim() != 3 or images.shape[1:] != (size, size):
            raise ValueError(f"images has shape {tuple(images.shape)}: expected (batch, {size}, {size})")
        x = self.patch_embed(patchify(images, self.config.patch))  # (B, n, D)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.position_embeddings  # (B, n + 1, D)
        maps = []
        for layer in self.layers:
            x, weights = layer(x, None, output_attentions)
            maps.append(weights)
        return ModelOutput(self.head(x[:, 0]), attentions=tuple(maps) if output_attentions else None)


def load_digits_split(test_fraction: float = 0.25, seed: int = DEFAULT_SEED):
    """scikit-learn's bundled 1,797 handwritten digits (8x8, ink 0..16, offline), scaled to [0, 1],
    split stratified: ``(train_x (N, 8, 8), train_y, test_x, test_y)`` as tensors."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0
    train_x, test_x, train_y, test_y = train_test_split(x, digits.target, test_size=test_fraction,
                                                        stratify=digits.target, random_state=seed)
    as_t = lambda a, dtype: torch.tensor(a, dtype=dtype)  # noqa: E731
    return as_t(train_x, torch.float32), as_t(train_y, torch.long), as_t(test_x, torch.float32), as_t(test_y, torch.long)


def logistic_baseline(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy of multinomial logistic regression on the same raw pixels (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000).fit(train_x.flatten(1).numpy(), train_y.numpy())
    return float(model.score(test_x.flatten(1).numpy(), test_y.numpy()))
