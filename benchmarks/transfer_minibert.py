"""What the course mini-BERT's pretraining buys on a course task, written to a JSON results file.

    python benchmarks/transfer_minibert.py --out fmteach/course_models/runs/minibert-transfer-movie-reviews.json
    python benchmarks/transfer_minibert.py --model minibert-mixed \
        --out fmteach/course_models/runs/minibert-mixed-transfer-movie-reviews.json
    python benchmarks/transfer_minibert.py --task thou-you \
        --out fmteach/course_models/runs/minibert-transfer-thou-you.json
    python benchmarks/transfer_minibert.py --task thou-you --n-train 100 300 1000 2000 --same-steps \
        --out fmteach/course_models/runs/minibert-transfer-thou-you-by-size.json

The same fine-tuning recipe (fmteach.finetune.finetune_loop) on a course task (``--task``: movie-reviews,
or lesson 08's thou/you lines -- trained on the training plays' lines, tested on the held-out plays')
from two starts of
one architecture -- a shipped course mini-BERT (``--model``: pretrained with MLM on Shakespeare, or
on Shakespeare plus the training splits of the course's English data sets) and the same
architecture, with the same tokenizer, from random weights -- for several seeds (the seed sets the random start, the
classifier head, the shuffle and dropout; the reviews are the same). Each run reports test accuracy
and test loss, plus the validation split's, and the file records how, where and when it was
measured. Several ``--n-train`` sizes give a curve of what pretraining buys as labelled examples
grow (``summary_by_n_train``; ``summary`` is then the largest size's); ``--same-steps`` gives every
size the same number of optimizer steps. It ships with the package
(``fmteach.course_models.recorded_run``) and lesson 07's "What pretraining buys" prints it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _provenance import provenance  # benchmarks/_provenance.py, beside this script

BATCH_SIZE, MAX_LENGTH = 32, 64  # the fine-tuning recipe of every run


def thou_you_task():
    """Lesson 08's thou/you task as a labelled data set: the lines of the training plays (every tenth for
    validation) to fine-tune on, the held-out plays' lines to test on -- plays no course model pretrained on."""
    from types import SimpleNamespace

    from fmteach.assets import load_shakespeare
    from fmteach.fewshot import thou_or_you
    from fmteach.lm_data import DEFAULT_VAL_PLAYS
    from fmteach.text_datasets import TextSplit

    lines = thou_or_you([name for name in load_shakespeare().plays if name not in DEFAULT_VAL_PLAYS])
    part = lambda keep: TextSplit([t for i, t in enumerate(lines.texts) if keep(i)],  # noqa: E731
                                  [y for i, y in enumerate(lines.labels) if keep(i)])
    return SimpleNamespace(label_names=["thou", "you"], train=part(lambda i: i % 10), validation=part(lambda i: i % 10 == 0),
                           test=thou_or_you())


def _epochs(data, n_train: int, args) -> float:
    """``--epochs``, or with ``--same-steps`` as many passes over ``n_train`` examples as take the steps the
    largest size takes in ``--epochs`` (finetune_loop runs ceil(epochs x batches per epoch) steps)."""
    from fmteach.finetune import subset

    if not args.same_steps:
        return args.epochs
    batches = lambda n: math.ceil(len(subset(data.train, n)) / BATCH_SIZE)  # noqa: E731  batches per epoch
    return math.ceil(args.epochs * batches(max(args.n_train))) / batches(n_train)


def _one_run(start: str, seed: int, n_train: int, args, data, tokenizer, shipped) -> dict:
    import dataclasses

    from transformers import DataCollatorWithPadding

    from fmteach.bert import MiniBertForSequenceClassification
    from fmteach.finetune import FinetuneRecipe, classifier_from_mlm, encode, evaluate_model, finetune_loop, subset
    from fmteach.seeding import seeded

    epochs = _epochs(data, n_train, args)
    recipe = FinetuneRecipe(model="course mini-BERT", n_train=n_train, n_eval=args.n_eval, max_length=MAX_LENGTH,
                            epochs=epochs, batch_size=BATCH_SIZE, learning_rate=args.learning_rate, seed=seed)
    if start == "pretrained":
        model = classifier_from_mlm(shipped.model, len(data.label_names), seed=seed)
    else:
        with seeded(seed):
            model = MiniBertForSequenceClassification(dataclasses.replace(shipped.model.config,
                                                                          num_labels=len(data.label_names)))
    collator = DataCollatorWithPadding(tokenizer)
    enc = lambda split: encode(tokenizer, split, max_length=recipe.max_length)  # noqa: E731
    validation = enc(subset(data.validation, recipe.n_eval))
    loop = finetune_loop(model, enc(subset(data.train, recipe.n_train)), validation, recipe, collator=collator,
                         progress=False)
    test = evaluate_model(model, enc(subset(data.test, recipe.n_eval)), collator)
    val = evaluate_model(model, validation, collator)
    return {"start": start, "seed": seed, "n_train": len(subset(data.train, n_train)), "epochs": round(epochs, 3),
            "test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "validation_accuracy": val["accuracy"], "validation_loss": val["loss"], "best_epoch": loop.best_epoch,
            "steps": loop.steps, "seconds": round(loop.seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--task", choices=("movie-reviews", "thou-you"), default="movie-reviews")
    parser.add_argument("--model", choices=("minibert-shakespeare", "minibert-mixed"), default="minibert-shakespeare",
                        help="the course mini-BERT to fine-tune (and whose tokenizer the random start uses)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, nargs="+", default=[2000],
                        help="training examples (the first of the shuffled split); several sizes: a curve")
    parser.add_argument("--same-steps", action="store_true",
                        help="with several --n-train: train every size for the steps the largest takes in --epochs")
    parser.add_argument("--n-eval", type=int, default=None, help="validation and test reviews (default: all)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < 3:
        parser.error(f"--seeds needs at least 3 different seeds (mean and spread), got {args.seeds}")

    import numpy as np

    from fmteach.course_models import course_model
    from fmteach.profile import get_device  # the device finetune_loop trains on
    from fmteach.text_datasets import load_text_classification
    from fmteach.wordpiece import CORPORA

    started = time.perf_counter()
    shipped = course_model(args.model)
    data = load_text_classification("movie-reviews") if args.task == "movie-reviews" else thou_you_task()
    runs = []
    for n_train in args.n_train:
        for seed in args.seeds:
            for start in ("random", "pretrained"):
                runs.append(_one_run(start, seed, n_train, args, data, shipped.tokenizer, shipped))
                print(json.dumps(runs[-1]), flush=True)

    def summarise(rows):
        return {start: {f"{k}_{stat}": float(fn([r[k] for r in rows if r["start"] == start]))
                        for k in ("test_accuracy", "test_loss")
                        for stat, fn in (("mean", np.mean), ("std", lambda v: np.std(v, ddof=1)))}
                for start in ("random", "pretrained")}

    by_size = {str(n): summarise([r for r in runs if r["n_train"] == n]) for n in sorted({r["n_train"] for r in runs})}
    summary = by_size[max(by_size, key=int)]
    how = provenance(__file__, argv, device=get_device(), started=started, details={
        "task": args.task, "n_train": args.n_train[0] if len(args.n_train) == 1 else args.n_train,
        "n_eval": args.n_eval or "all", "epochs": args.epochs, "same_steps": args.same_steps,
        "learning_rate": args.learning_rate, "batch_size": BATCH_SIZE, "max_length": MAX_LENGTH,
    })
    majority = max(np.bincount(data.test.labels[: args.n_eval])) / len(data.test.labels[: args.n_eval])
    record = {
        "about": f"Fine-tuning the course mini-BERT {args.model} (pretrained with MLM on {CORPORA[shipped.manifest.get('corpus', 'shakespeare')]}) "
                 f"and the same architecture with the same tokenizer from random weights on {args.task}, same "
                 "recipe, several seeds: test accuracy and loss per run.",
        "command": how["command"],
        "runs": runs, "summary": summary, **({"summary_by_n_train": by_size} if len(by_size) > 1 else {}),
        "majority_class_test_accuracy": float(majority),
        "course_model": {"name": args.model, **shipped.manifest["metrics"]},
        "how": how,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
