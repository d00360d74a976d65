"""Pretrain a mini-BERT on Shakespeare with masked language modelling, outside a notebook.

    python -m fmteach.pretrain_mlm --profile cpu --out runs/mlm-cpu
    python -m fmteach.pretrain_mlm --recipe course --out runs/course-models/minibert-course   # the shipped model
    python -m fmteach.pretrain_mlm --recipe course --corpus mixed --out runs/...   # + modern English (lesson 07)
    torchrun --nproc_per_node=8 -m fmteach.pretrain_mlm --profile gpu --out runs/mlm-gpu

Prints progress, writes ``ckpt.pt`` (resumable with ``--resume``), ``history.json`` and
``curves.png`` (loss, masked-token accuracy, perplexity) to ``--out``. Lesson 05 calls
:func:`fmteach.pretrain_mlm.pretrain` with the same recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from .._io import append_jsonl
from ..distributed import cleanup_distributed, setup_distributed
from ..profile import PROFILES, get_profile
from ..train import HISTORY_NAME, write_history
from ..wordpiece import CORPORA
from . import MLMRecipe, pretrain

__all__ = ["main"]


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
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout on the hidden states and the attention weights (default: the recipe's)")
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
    if args.dropout is not None and not 0 <= args.dropout < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
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
    from ..viz.curves import plot_mlm_curves

    rank, world, device = setup_distributed()
    recipe = MLMRecipe.course() if args.recipe == "course" else MLMRecipe.from_profile(args.profile)
    recipe = replace(recipe, corpus=args.corpus)
    train_changes = {k: v for k, v in (("max_steps", args.max_steps),
                                       ("checkpoint_interval", args.checkpoint_interval)) if v}
    recipe = replace(recipe, train=replace(recipe.train, **train_changes))
    if args.dropout is not None:
        recipe = replace(recipe, bert=replace(recipe.bert, hidden_dropout_prob=args.dropout,
                                              attention_probs_dropout_prob=args.dropout))
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
