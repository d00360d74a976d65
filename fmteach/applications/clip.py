"""One model for text and images: CLIP (Radford et al. 2021) in miniature, on scikit-learn's digits.

Two encoders map into one space: lesson 11's ViT (:class:`~fmteach.applications.vit.TinyViT`,
its classification head now the image projection) and a small BERT encoder over short captions
(:class:`fmteach.bert.MiniBertModel`, its [CLS] vector projected). A batch of ``B`` images and
their ``B`` captions gives a ``(B, B)`` matrix of cosine similarities times a learned scale; the
symmetric contrastive (InfoNCE) loss asks each row and each column to pick its own pair (the
diagonal). Zero-shot classification then needs no classifier: embed one caption per class ("a
handwritten seven") and take the most similar -- lesson 08's zero-shot by label descriptions,
across modalities.

Shapes: B = images, N = captions, L = caption tokens ([CLS] first), E = ``embed_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive, is_int, is_number
from .._io import eval_mode
from ..bert import MiniBertModel
from ..bert_config import BertConfig
from ..seeding import DEFAULT_SEED
from .vit import TinyViT, ViTConfig

__all__ = ["NUMBER_WORDS", "CAPTION_TEMPLATES", "caption", "class_prompts", "digit_captions", "CaptionTokenizer",
           "CLIPConfig", "CLIPOutput", "TinyCLIP", "clip_logits", "clip_loss", "clip_batch_loss", "similarity",
           "zero_shot_classify", "retrieval_accuracy", "MAX_LOGIT_SCALE"]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Several phrasings of one class; the last is the bare digit ("7").
CAPTION_TEMPLATES = ("a handwritten {word}", "the digit {digit}", "a photo of the number {word}",
                     "the number {word} written by hand", "{digit}")
MAX_LOGIT_SCALE = 100.0  # CLIP clips the learned scale here (a temperature of at least 0.01)


# --- Captions ----------------------------------------------------------------------------------------

def caption(label: int, template: str) -> str:
    """``caption(7, "a handwritten {word}")`` -> ``"a handwritten seven"``; ``{digit}`` gives ``"7"``."""
    if not is_int(label) or not 0 <= label < len(NUMBER_WORDS):
        raise ValueError(f"label must be a digit 0..9, got {label!r}")
    if not isinstance(template, str) or ("{word}" not in template and "{digit}" not in template):
        raise ValueError(f"template must be a str with {{word}} or {{digit}}, got {template!r}")
    return template.format(word=NUMBER_WORDS[label], digit=label)


def class_prompts(template: str) -> list[str]:
    """One prompt per class 0..9 from ``template``: what :func:`zero_shot_classify` compares images with."""
    return [caption(c, template) for c in range(len(NUMBER_WORDS))]


def digit_captions(labels, templates: Sequence[str] = CAPTION_TEMPLATES, *, seed: int = DEFAULT_SEED) -> list[str]:
    """One caption per label, its phrasing drawn at random from ``templates`` (seeded)."""
    if isinstance(templates, str) or not templates:
        raise ValueError(f"templates must be a non-empty sequence of templates, got {templates!r}")
    labels = [int(y) for y in labels]
    choice = torch.randint(len(templates), (len(labels),), generator=torch.Generator().manual_seed(seed))
    return [caption(y, templates[int(t)]) for y, t in zip(labels, choice)]


class CaptionTokenizer:
    """Word-level tokens over a fixed vocabulary: ``[PAD]`` 0, ``[CLS]`` 1, ``[UNK]`` 2, then the words
    seen in ``captions`` (lower-cased, split on spaces) in sorted order."""

    SPECIAL = ("[PAD]", "[CLS]", "[UNK]")
    PAD, CLS, UNK = 0, 1, 2

    def __init__(self, captions: Iterable[str], max_length: int = 8):
        check_positive(max_length=max_length)
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 ([CLS] and one word), got {max_length}")
        self.max_length = max_length
        self.vocab = [*self.SPECIAL, *sorted({word for text in captions for word in text.lower().split()})]
        self.index = {word: i for i, word in enumerate(self.vocab)}

    @classmethod
    def for_digits(cls, templates: Sequence[str] = CAPTION_TEMPLATES, max_length: int = 8) -> CaptionTokenizer:
        """The vocabulary of every caption of every class under ``templates``."""
        return cls([caption(c, t) for t in templates for c in range(len(NUMBER_WORDS))], max_length)

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(input_ids (N, max_length), attention_mask (N, max_length))``: [CLS], the words
        (unknown ones as [UNK]), then padding (mask 0)."""
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise TypeError(f"captions must be a list of str, got {type(captions).__name__}")
        input_ids = torch.full((len(captions), self.max_length), self.PAD, dtype=torch.long)
        for row, text in enumerate(captions):
            words = text.lower().split()
            if len(words) > self.max_length - 1:
                raise ValueError(f"caption {text!r} has {len(words)} words: at most max_length - 1 = "
                                 f"{self.max_length - 1} fit beside [CLS]")
            input_ids[row, :len(words) + 1] = torch.tensor([self.CLS] + [self.index.get(w, self.UNK) for w in words])
        return input_ids, (input_ids != self.PAD).long()


# --- The model -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CLIPConfig:
    embed_dim: int = 32                                # the shared space
    vision: ViTConfig = field(default_factory=ViTConfig)  # lesson 11's ViT; its head projects to embed_dim
    text_hidden_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate_size: int = 128
    dropout: float = 0.1                               # the text encoder's (the ViT has its own)
    init_temperature: float = 0.07                     # CLIP's: logit_scale starts at log(1 / 0.07)

    def __post_init__(self):
        check_positive(embed_dim=self.embed_dim, text_hidden_size=self.text_hidden_size, text_layers=self.text_layers,
                       text_heads=self.text_heads, text_intermediate_size=self.text_intermediate_size)
        if not is_number(self.init_temperature) or not 1 / MAX_LOGIT_SCALE <= self.init_temperature:
            raise ValueError(f"init_temperature must be a number >= {1 / MAX_LOGIT_SCALE}, got {self.init_temperature!r}")


@dataclass
class CLIPOutput:
    loss: torch.Tensor               # the symmetric contrastive loss of the batch
    logits_per_image: torch.Tensor   # (B, B): scale * cosine similarity, row = image
    logits_per_text: torch.Tensor    # (B, B): its transpose, row = caption
    image_embeds: torch.Tensor       # (B, E), L2-normalised
    text_embeds: torch.Tensor        # (B, E), L2-normalised


class TinyCLIP(nn.Module):
    """images ``(B, 8, 8)`` and captions ``(B, L)`` -> :class:`CLIPOutput`."""

    def __init__(self, tokenizer: CaptionTokenizer, config: CLIPConfig | None = None):
        super().__init__()
        self.config = config = config or CLIPConfig()
        self.tokenizer = tokenizer
        self.vision = TinyViT(replace(config.vision, num_classes=config.embed_dim))  # vision.head: the image projection
        self.text = MiniBertModel(BertConfig(
            len(tokenizer), hidden_size=config.text_hidden_size, num_hidden_layers=config.text_layers,
            num_attention_heads=config.text_heads, intermediate_size=config.text_intermediate_size,
            max_position_embeddings=tokenizer.max_length, type_vocab_size=1, hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout, pad_token_id=tokenizer.PAD), add_pooling_layer=False)
        self.text_projection = nn.Linear(config.text_hidden_size, config.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))

    @property
    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)``, at most :data:`MAX_LOGIT_SCALE`, as CLIP clips it."""
        return self.logit_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 8, 8)`` -> ``(B, E)``, not normalised."""
        return self.vision(images).logits

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` token ids and mask -> ``(N, E)``, not normalised: the [CLS] vector, projected."""
        return self.text_projection(self.text(input_ids, attention_mask).last_hidden_state[:, 0])

    def embed_captions(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions as text -> ``(N, E)``, not normalised."""
        input_ids, attention_mask = self.tokenizer(captions)
        device = self.logit_scale.device
        return self.encode_text(input_ids.to(device), attention_mask.to(device))

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CLIPOutput:
        if images.dim() < 1 or input_ids.dim() < 1 or len(images) != len(input_ids):
            raise ValueError(f"images has shape {tuple(images.shape)} and input_ids {tuple(input_ids.shape)}: "
                             f"expected one caption per image (the same first dimension)")
        image_embeds = F.normalize(self.encode_image(images), dim=-1)
        text_embeds = F.normalize(self.encode_text(input_ids, attention_mask), dim=-1)
        logits = clip_logits(image_embeds, text_embeds, self.scale)
        return CLIPOutput(_symmetric_cross_entropy(logits), logits, logits.T, image_embeds, text_embeds)


# --- The loss, and what the shared space is good for ---------------------------------------------------

def _check_embeddings(image_emb, text_emb, *, paired: bool) -> None:
    for name, t in (("image_emb", image_emb), ("text_emb", text_emb)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or len(t) == 0:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} has shape {got}: expected a non-empty (batch, embed_dim) tensor")
    if image_emb.shape[1] != text_emb.shape[1] or (paired and len(image_emb) != len(text_emb)):
        need = "the same shape (one caption per image)" if paired else "the same embed_dim"
        raise ValueError(f"image_emb has shape {tuple(image_emb.shape)} and text_emb {tuple(text_emb.shape)}: "
                         f"expected {need}")


def similarity(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every image to every caption: ``(B, E), (N, E) -> (B, N)``."""
    _check_embeddings(image_emb, text_emb, paired=False)
    return F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale) -> torch.Tensor:
    """``logit_scale * cos(image_i, text_j)``, ``(B, N)``; ``logit_scale`` is the multiplier (``exp``
    of the learned parameter, ``1 / temperature``), a positive number or scalar tensor."""
    if isinstance(logit_scale, torch.Tensor) and logit_scale.numel() == 1:
        positive = bool(logit_scale.detach() > 0)
    else:
        positive = is_number(logit_scale) and logit_scale > 0
    if not positive:
        raise ValueError(f"logit_scale must be a positive number or scalar tensor, got {logit_scale!r}")
    return logit_scale * similarity(image_emb, text_emb)


def _symmetric_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    targets = torch.arange(len(logits), device=logits.device)  # pair i is on the diagonal
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale) -> torch.Tensor:
    """The symmetric InfoNCE loss of ``B`` pairs ``(B, E), (B, E)``: the mean of the cross-entropy
    of each image over all captions and of each caption over all images, the pair being right."""
    _check_embeddings(image_emb, text_emb, paired=True)
    return _symmetric_cross_entropy(clip_logits(image_emb, text_emb, logit_scale))


def clip_batch_loss(model: TinyCLIP, batch: dict) -> torch.Tensor:
    """The ``loss_fn`` of :func:`fmteach.applications.training.fit`: ``batch`` holds ``images``,
    ``input_ids`` and ``attention_mask``."""
    return model(batch["images"], batch["input_ids"], batch["attention_mask"]).loss


@torch.no_grad()
def zero_shot_classify(model: TinyCLIP, images: torch.Tensor, class_prompts: Sequence[str | Sequence[str]]) -> torch.Tensor:
    """The class whose prompt is most similar to each image: ``(B, 8, 8)`` -> ``(B,)`` class indices.
    ``class_prompts[c]`` is one caption or a list of them (their normalised embeddings averaged)."""
    if isinstance(class_prompts, str) or not isinstance(class_prompts, Sequence) or not class_prompts:
        raise ValueError(f"class_prompts must be a non-empty list, one prompt (or list of prompts) per class; "
                         f"got {class_prompts!r}")
    groups = [[p] if isinstance(p, str) else list(p) for p in class_prompts]
    empty = [c for c, prompts in enumerate(groups) if not prompts or not all(isinstance(p, str) for p in prompts)]
    if empty:
        raise ValueError(f"class_prompts[{empty[0]}] must be a str or a non-empty list of str, got "
                         f"{class_prompts[empty[0]]!r}")
    with eval_mode(model):
        classes = torch.stack([F.normalize(model.embed_captions(p), dim=-1).mean(0) for p in groups])  # (C, E)
        return similarity(model.encode_image(images), classes).argmax(dim=1)


def retrieval_accuracy(image_emb: torch.Tensor, text_emb: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Image -> text retrieval, top 1: the fraction of images ``i`` whose most similar caption is
    caption ``i`` (``labels=None``), or one with the same label as image ``i`` (``labels`` ``(B,)``:
    captions of one class may be word for word the same)."""
    _check_embeddings(image_emb, text_emb, paired=True)
    retrieved = similarity(image_emb, text_emb).argmax(dim=1)
    if labels is None:
        return float((retrieved == torch.arange(len(retrieved), device=retrieved.device)).float().mean())
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(image_emb),):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels has shape {got}: expected ({len(image_emb)},), one per image and caption")
    return float((labels[retrieved] == labels).float().mean())
