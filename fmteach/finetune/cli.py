"""The command line: the Trainer recipe outside a notebook, on one process or many.

    python -m fmteach.finetune --profile cpu --out runs/finetune-cpu
    torchrun --nproc_per_node=4 -m fmteach.finetune --profile gpu --out runs/finetune-gpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .._io import atomic_write
from ..profile import PROFILES
from .data import encode, subset
from .evaluate import padding_speed
from .models import load_for_classification
from .recipe import FinetuneRecipe
from .trainer import make_trainer

__all__ = ["main"]


def _cli_callback(max_seconds: float | None, jsonl: str | None):
    """A ``TrainerCallback`` for the command line: it copies every log (losses, evaluations) to a
    JSON-lines file, and ends training once ``max_seconds`` are spent; Trainer then still evaluates,
    saves and reloads the best epoch as at the end of an epoch."""
    from transformers import TrainerCallback

    from .._io import append_jsonl

    class BudgetAndLog(TrainerCallback):
        out_of_time = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if max_seconds is not None and time.perf_counter() - self.started >= max_seconds:
                control.should_training_stop = self.out_of_time = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero:
                append_jsonl(jsonl, {"event": "log", "step": state.global_step, **(logs or {}),
                                     "seconds": time.perf_counter() - self.started})

    return BudgetAndLog()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fmteach.finetune", description=main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, default=None)
    parser.add_argument("--out", required=True, help="folder for checkpoints, the final model and results.json")
    parser.add_argument("--model", default=None, help="'minilm' (default), a saved model folder, or a hub id (online)")
    parser.add_argument("--dataset", default=None, help="movie-reviews (default), sms-spam, trec or bbc-news")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--n-train", type=int, default=None, help="use the first N training examples")
    parser.add_argument("--n-eval", type=int, default=None, help="use the first N validation and test examples")
    parser.add_argument("--padding-benchmark", action="store_true", help="also time max-length vs dynamic padding")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument("--batch-size", type=int, default=None, help="training examples per step and process")
    parser.add_argument("--max-length", type=int, default=None, help="truncate examples to this many tokens")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="wall-clock budget for training: stop (then evaluate and save) once it is spent")
    parser.add_argument("--metrics-jsonl", default=None,
                        help="append every training log and the final figures to this JSON-lines file")
    return parser


def _recipe(args, parser: argparse.ArgumentParser) -> FinetuneRecipe:
    """The profile's recipe with the options given; a bad value is a usage error naming its option."""
    names = ("model", "dataset", "epochs", "n_train", "n_eval", "batch_size", "max_length")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    try:
        return FinetuneRecipe.from_profile(args.profile, **overrides)
    except (TypeError, ValueError) as error:
        parser.error(str(error))


def _print_final(results: dict, recipe: FinetuneRecipe, n_test: int, seconds: float) -> None:
    t = results["test"]
    print(f"final: {recipe.dataset} test accuracy {t['accuracy']:.4f}  f1 {t['f1']:.4f}  "
          f"({n_test} examples; trained {seconds:.0f} s on {results['processes']} process(es))", flush=True)
    if "padding" in results:
        p = results["padding"]
        print(f"padding: max_length {p['max_length_examples_per_s']:.0f} ex/s, dynamic "
              f"{p['dynamic_examples_per_s']:.0f} ex/s, speed-up {p['speedup']:.2f}x", flush=True)


def main(argv=None) -> dict:
    """Fine-tune, evaluate on the test split, save the model; print and write ``results.json``.

        python -m fmteach.finetune --profile cpu --out runs/finetune-cpu
        torchrun --nproc_per_node=4 -m fmteach.finetune --profile gpu --out runs/finetune-gpu
        accelerate launch --num_processes 4 -m fmteach.finetune --profile gpu --out runs/finetune-gpu
        python -m fmteach.finetune --model bert-base-uncased --profile gpu --out runs/bert-base   # online

    Several processes train data-parallel through Trainer (each takes ``batch_size`` examples per
    step, so the effective batch grows with the number of processes).
    """
    from .._io import append_jsonl
    from ..text_datasets import load_text_classification

    parser = _parser()
    args = parser.parse_args(argv)
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")
    recipe = _recipe(args, parser)
    data = load_text_classification(recipe.dataset)
    tokenizer, model = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    out, callback = Path(args.out), _cli_callback(args.max_seconds, args.metrics_jsonl)
    trainer = make_trainer(recipe, tokenizer, model, data, out / "checkpoints", progress=not args.no_progress,
                           callbacks=[callback])
    is_main = trainer.is_world_process_zero()
    if is_main:
        append_jsonl(args.metrics_jsonl, {"event": "start", "recipe": recipe.__dict__, "device": str(trainer.args.device),
                                          "processes": trainer.args.world_size, "torch": torch.__version__})
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    test = encode(tokenizer, subset(data.test, recipe.n_eval), max_length=recipe.max_length)
    metrics = trainer.evaluate(test, metric_key_prefix="test")
    results = {"recipe": recipe.__dict__, "processes": trainer.args.world_size, "train_seconds": seconds,
               "steps": trainer.state.global_step, "max_steps": trainer.state.max_steps,
               "out_of_time": callback.out_of_time,
               "test": {k[5:]: v for k, v in metrics.items() if k[5:] in ("accuracy", "precision", "recall", "f1")},
               "history": trainer.state.log_history}
    if args.padding_benchmark and is_main:
        results["padding"] = padding_speed(trainer.model, tokenizer, data.train.texts, max_length=recipe.max_length,
                                           batch_size=recipe.batch_size, n_batches=8, rounds=3)
    if is_main:
        trainer.save_model(str(out / "model"))  # weights, config (with label names) and tokenizer
        atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=1, default=str)))
        _print_final(results, recipe, len(test), seconds)
        append_jsonl(args.metrics_jsonl, {"event": "final", "device": str(trainer.args.device),
                                          **{k: v for k, v in results.items() if k != "history"}})
    return results
