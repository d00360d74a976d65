"""Pretrain a mini-BERT on Shakespeare with masked language modelling, outside a notebook.

    python -m fmteach.pretrain_mlm --profile cpu --out runs/mlm-cpu
    python -m fmteach.pretrain_mlm --recipe course --out runs/course-models/minibert-course   # the shipped model
    python -m fmteach.pretrain_mlm --recipe course --corpus mixed --out runs/...   # + modern English (lesson 07)
    torchrun --nproc_per_node=8 -m fmteach.pretrain_mlm --profile gpu --out runs/mlm-gpu

Prints progress, writes ``ckpt.pt`` (resumable with ``--resume``), ``history.json`` and
``curves.png`` (loss, masked-token accuracy, perplexity) to ``--out``. Lesson 05 calls
:func:`pretrain` with the same recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ._io import CheckpointError, atomic_write, sha256_hex
from .bert import BertConfig, MiniBertForMaskedLM
from .mlm import MLMData, mlm_metrics
from .profile import PROFILES, by_profile, get_device, get_profile
from .seeding import DEFAULT_SEED, seeded
from .train import (
    HISTORY_NAME,
    TrainConfig,
    TrainResult,
    append_jsonl,
    cleanup_distributed,
    setup_distributed,
    train,
    write_history,
)
from .wordpiece import CORPORA, train_wordpiece_tokenizer

__all__ = ["MLMRecipe", "pretrain", "load_mini_bert_mlm", "masked_loss_fn", "main"]


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
        """The shipped course mini-BERT: pre-LN (a post-LN BERT of this size stays on the unigram
        plateau, lesson 05), 4 layers x 256, windows of 64 tokens, 64 per step, 6,000 steps (about
        70 minutes on 2 idle CPU cores); checkpoints every 500 steps so that the run can span a pause
        (``--resume``)."""
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

    from .assets import cache_dir

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


def _parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, default=None)
    parser.add_argument("--recipe", choices=("profile", "course"), default="profile",
                        help="sizes: the profile's preset (default), or the shipped course model's recipe")
    parser.add_argument("--corpus", choices=list(CORPORA), default="shakespeare",
                        help="the text to pretrain on: " + "; ".join(f"{k}: {v}" for k, v in CORPORA.items()))
    parser.add_argument("--out", required=True, help="folder for ckpt.pt, history.json, curves.png")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="wall-clock budget for training: stop, evaluate and checkpoint once it is spent")
    parser.add_argument("--metrics-jsonl", default=None,
                        help="append each evaluation and the final figures to this JSON-lines file")
    parser.add_argument("--checkpoint-interval", type=int, default=0,
                        help="also write ckpt.pt every N steps (inspect a run while it trains; same result)")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="stop after this many steps, the schedule still set by --max-steps (same weights "
                             "as that step of the full run)")
    args = parser.parse_args(argv)
    for flag, value, low in (("--stop-at-step", args.stop_at_step, 1), ("--max-steps", args.max_steps, 1),
                             ("--checkpoint-interval", args.checkpoint_interval, 0)):
        if value is not None and value < low:
            parser.error(f"{flag} must be >= {low}, got {value}")
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")
    return args


def _report(jsonl):
    started = time.perf_counter()

    def report(entry, history):  # seconds: since this command started (a resumed command starts again at 0)
        append_jsonl(jsonl, {"event": "eval", **entry, "seconds": round(time.perf_counter() - started, 1)})
        print(f"step {entry['step']:>5}  train {entry['train_loss']:.3f}  held-out loss {entry['mlm_loss']:.3f}  "
              f"accuracy at [MASK] {entry['accuracy_at_mask']:.3f} (top-5 {entry['top5_at_mask']:.3f})  "
              f"perplexity {entry['perplexity']:.1f}", flush=True)
    return report


def main(argv=None) -> None:
    """``python -m fmteach.pretrain_mlm --out runs/mlm``: pretrain, then write history.json and curves.png."""
    args = _parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    from .viz.curves import plot_mlm_curves

    rank, world, device = setup_distributed()
    recipe = MLMRecipe.course() if args.recipe == "course" else MLMRecipe.from_profile(args.profile)
    recipe = replace(recipe, corpus=args.corpus)
    train_changes = {k: v for k, v in (("max_steps", args.max_steps),
                                       ("checkpoint_interval", args.checkpoint_interval)) if v}
    recipe = replace(recipe, train=replace(recipe.train, **train_changes))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = args.metrics_jsonl if rank == 0 else None
    append_jsonl(jsonl, {"event": "start", "profile": args.profile or get_profile(), "device": str(device),
                         "processes": world, "torch": torch.__version__, "seq_len": recipe.seq_len, "corpus": recipe.corpus,
                         "bert_config": recipe.bert.__dict__, "train_config": recipe.train.__dict__})
    model, data, result = pretrain(recipe, device=device, out_dir=out, resume=args.resume, on_eval=_report(jsonl),
                                   progress=rank == 0 and not args.no_progress, max_seconds=args.max_seconds,
                                   stop_at_step=args.stop_at_step,
                                   checkpoint_extra={"profile": args.profile or get_profile(), "recipe": args.recipe,
                                                     "corpus": recipe.corpus})
    if rank == 0:
        baseline = data.most_frequent_token_accuracy(data.validation_batches(n_rows=recipe.val_rows))
        summary = {"profile": args.profile or get_profile(), "recipe": args.recipe, "corpus": recipe.corpus,
                   "seconds": result.seconds, "steps": result.step,
                   "most_frequent_token_accuracy": baseline, "final": result.history[-1] if result.history else None,
                   "out_of_time": result.out_of_time, "max_steps": recipe.train.max_steps}
        write_history(out / HISTORY_NAME, summary, result.history, result.step_losses)
        plot_mlm_curves(result.history, out / "curves.png", baseline=baseline)
        print(json.dumps(summary, indent=1))
        append_jsonl(jsonl, {"event": "final", "device": str(device), **summary})
    cleanup_distributed()


if __name__ == "__main__":
    main()
