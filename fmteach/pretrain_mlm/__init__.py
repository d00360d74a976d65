"""Pretrain a mini-BERT with masked language modelling: the recipe (``MLMRecipe``), the run
(``pretrain``, lesson 05) and the profile's model trained once and cached (``load_mini_bert_mlm``,
lessons 08-09). The command line is ``python -m fmteach.pretrain_mlm`` (:mod:`fmteach.pretrain_mlm.__main__`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .._io import CheckpointError, atomic_write, sha256_hex
from ..bert import MiniBertForMaskedLM
from ..bert_config import BertConfig
from ..mlm import MLMData, mlm_metrics
from ..profile import by_profile, get_device, get_profile
from ..seeding import DEFAULT_SEED, seeded
from ..train import train
from ..train_config import TrainConfig, TrainResult
from ..wordpiece import train_wordpiece_tokenizer

__all__ = ["MLMRecipe", "pretrain", "load_mini_bert_mlm", "masked_loss_fn"]


@dataclass(frozen=True)
class MLMRecipe:
    """Everything that sizes a pretraining run; ``MLMRecipe.from_profile()`` picks the preset."""

    bert: BertConfig
    train: TrainConfig
    seq_len: int = 64
    vocab_size: int = 8000
    val_rows: int = 256
    # the text it learns from (fmteach.wordpiece.CORPORA); kept out of repr so that the Shakespeare recipes'
    # cache keys (a hash of the repr) stay as they were; load_mini_bert_mlm adds it when it differs
    corpus: str = field(default="shakespeare", repr=False)

    @classmethod
    def from_profile(cls, profile: str | None = None, **overrides) -> MLMRecipe:
        """The preset of ``profile`` (default ``$FMTEACH_PROFILE``), built from the configs' own presets
        (``BertConfig.smoke`` ..., ``TrainConfig.smoke`` ...) with what pretraining changes;
        ``overrides`` replace fields of the recipe (``MLMRecipe.from_profile("cpu", seq_len=64)``)."""
        profile = get_profile() if profile is None else profile
        vocab = overrides.get("vocab_size", 8000)
        no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        bert = by_profile(
            smoke=lambda: BertConfig.smoke(vocab, **no_dropout),
            cpu=lambda: BertConfig.cpu(vocab, **no_dropout),
            gpu=lambda: BertConfig.gpu(vocab),
            profile=profile,
        )()
        mlm = dict(eval_iters=1, eval_batch_size=None, weight_decay=0.01, seed=DEFAULT_SEED)  # held-out rows: val_rows
        train_cfg = by_profile(
            smoke=lambda: TrainConfig.smoke(max_steps=400, learning_rate=3e-3, min_lr=3e-4, warmup_steps=30, **mlm),
            cpu=lambda: TrainConfig.cpu(max_steps=3000, batch_size=32, learning_rate=1e-3, min_lr=1e-4,
                                        eval_interval=500, **mlm),
            gpu=lambda: TrainConfig.gpu(max_steps=6000, batch_size=256, min_lr=5e-5, warmup_steps=300,
                                        eval_interval=500, **mlm),
            profile=profile,
        )()
        recipe = cls(bert=bert, train=train_cfg, seq_len=by_profile(smoke=32, cpu=32, gpu=128, profile=profile),
                     vocab_size=vocab, val_rows=by_profile(smoke=128, cpu=512, gpu=1024, profile=profile))
        return replace(recipe, **overrides)

    @classmethod
    def course(cls, **overrides) -> MLMRecipe:
        """The shipped course mini-BERT: pre-LN (a smaller post-LN mini-BERT stayed on the unigram
        plateau, lesson 05), 4 layers x 256, windows of 64 tokens, 64 per step, no dropout, 6,000 steps
        (about 70 minutes on 2 idle CPU cores); checkpoints every 500 steps so that the run can span a
        pause (``--resume``). BERT's dropout of 0.1 (``--dropout 0.1 --max-steps 7000``) was tried and
        stopped at step 3,000, where it trailed this recipe (``benchmarks/RESULTS.md``)."""
        bert = BertConfig(8000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                          max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                          layer_norm_placement="pre")
        train_cfg = TrainConfig(max_steps=6000, batch_size=64, learning_rate=1e-3, min_lr=1e-4, warmup_steps=500,
                                weight_decay=0.01, eval_interval=500, eval_iters=1, checkpoint_interval=500,
                                seed=DEFAULT_SEED)
        return replace(cls(bert=bert, train=train_cfg, seq_len=64, vocab_size=8000, val_rows=512), **overrides)


def masked_loss_fn(model, batch) -> torch.Tensor:
    """The training loss: cross-entropy on the masked positions only (the seed text's step 4)."""
    # through forward(), so that DistributedDataParallel and torch.compile see the call
    return model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"], masked_only=True).loss


def pretrain(recipe: MLMRecipe, *, data: MLMData | None = None, model: MiniBertForMaskedLM | None = None,
             device: torch.device | None = None, out_dir=None, resume: bool = False, on_eval=None,
             progress: bool | None = None, max_seconds: float | None = None,
             stop_at_step: int | None = None, checkpoint_extra: dict | None = None) -> tuple[MiniBertForMaskedLM, MLMData, TrainResult]:
    """Train a :class:`MiniBertForMaskedLM` with :func:`fmteach.train.train`; each evaluation adds
    :func:`~fmteach.mlm.mlm_metrics` on the held-out plays (accuracy at ``[MASK]``, perplexity ...)."""
    device = device or get_device()
    if data is None:
        tokenizer = train_wordpiece_tokenizer(recipe.vocab_size, corpus=recipe.corpus)
        data = MLMData.from_corpus(tokenizer, recipe.corpus, seq_len=recipe.seq_len)
    if model is None:
        with seeded(recipe.train.seed):  # the initial weights; the caller's RNG is left as it was
            model = MiniBertForMaskedLM(recipe.bert)
    model.to(device)
    val_batches = data.validation_batches(n_rows=recipe.val_rows)
    result = train(model, data.batch_fn(device), recipe.train, loss_fn=masked_loss_fn,
                   eval_fn=lambda m: mlm_metrics(m, val_batches, mask_token_id=data.tokenizer.mask_token_id), on_eval=on_eval,
                   out_dir=out_dir, resume=resume, progress=progress, max_seconds=max_seconds,
                   stop_at_step=stop_at_step, checkpoint_extra=checkpoint_extra)
    return model, data, result


def load_mini_bert_mlm(profile: str | None = None, *, progress: bool | None = None):
    """``(model, tokenizer)``: lesson 05's mini-BERT pretrained with the profile's recipe, trained
    once and then kept in the cache folder as safetensors (later lessons reuse it: cloze prompts,
    bias probes, fine-tuning from our own pretraining). The file name holds a hash of the recipe, so
    a changed recipe trains afresh. Trains on the best device; returned on the CPU in eval mode."""
    from safetensors.torch import load_model, save_model

    from ..cache import cache_dir

    profile = get_profile() if profile is None else profile
    recipe = MLMRecipe.from_profile(profile)
    key = sha256_hex(repr(recipe).encode())[:12]  # a profile recipe always pretrains on Shakespeare
    path = cache_dir() / f"mini-bert-mlm-{profile}-{key}.safetensors"
    tokenizer = train_wordpiece_tokenizer(recipe.vocab_size)
    if path.exists():
        model = MiniBertForMaskedLM(recipe.bert)
        try:
            load_model(model, path)  # handles the tied decoder/embedding weights
        except Exception as err:  # truncated, foreign or from another model: say which file and what to do
            raise CheckpointError(f"{path} is not a mini-BERT of the {profile!r} recipe ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:200]}); delete it to train afresh") from err
    else:
        model, _, _ = pretrain(recipe, progress=progress)
        model.to("cpu")
        atomic_write(path, lambda tmp: save_model(model, str(tmp)))
    return model.eval(), tokenizer
