"""Tiny models, data and recipes that several test files train in seconds: a MiniGPT on a repeating
pattern (the training loop), a two-layer BERT classifier on ten one-line reviews (fine-tuning).

Plain functions, not fixtures: each takes arguments (a seed, config overrides). Test files import
them from here, never from one another."""

from __future__ import annotations

import torch
from transformers import BertConfig as HFBertConfig, BertForSequenceClassification

from fmteach.finetune import FinetuneRecipe
from fmteach.lm_data import get_batch
from fmteach.model import GPTConfig, MiniGPT
from fmteach.text_datasets import TextClassificationData, TextSplit
from fmteach.train_config import TrainConfig

# MiniGPT and the training loop
TINY_GPT = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
PATTERN = torch.arange(4000) * 7 % 50  # a repeating pattern: learnable in a few steps


def tiny_batches(split: str, batch_size: int, generator: torch.Generator):
    return get_batch(PATTERN if split == "train" else PATTERN[:500], batch_size, TINY_GPT.block_size, generator)


def tiny_config(**overrides) -> TrainConfig:
    base = dict(max_steps=12, batch_size=8, learning_rate=3e-3, min_lr=3e-4, warmup_steps=2,
                eval_interval=4, eval_iters=2, log_interval=3)
    return TrainConfig(**{**base, **overrides})


def tiny_gpt(seed: int = 0, **overrides) -> MiniGPT:
    torch.manual_seed(seed)
    return MiniGPT(GPTConfig(**{**TINY_GPT.__dict__, **overrides}))


# A BERT classifier and fine-tuning
POS = ["a good film", "great fun and good acting", "good , really good", "a great great story", "good and great"]
NEG = ["a bad film", "awful and bad acting", "bad , really bad", "a terrible bad story", "bad and awful"]
RECIPE = FinetuneRecipe(epochs=8, batch_size=8, learning_rate=3e-3, warmup=0.1, max_length=16, seed=0)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = HFBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config)


def toy_data() -> TextClassificationData:
    texts, labels = POS + NEG, [1] * 5 + [0] * 5
    split = TextSplit(texts * 4, labels * 4)
    return TextClassificationData("toy", ["negative", "positive"], split, TextSplit(texts, labels), TextSplit(texts, labels))


def assert_hint_guides(checker, giveaways, capsys) -> None:
    """The hint ``checker`` prints for an exercise not attempted yet asks the learner something and
    names none of ``giveaways`` (words that would state the method)."""
    def not_done(*args):
        raise NotImplementedError

    checker(not_done)
    hint = capsys.readouterr().out.split("Hint: ", 1)[1]
    assert "?" in hint, hint
    assert not [word for word in giveaways if word in hint], hint
