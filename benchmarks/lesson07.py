"""Lesson 07's measured picture: fine-tuning MiniLM on movie reviews beside its baselines, written to a
JSON results file that the notebook reads.

    python benchmarks/lesson07.py --profile cpu        # writes benchmarks/results/lesson07_cpu.json

Part ``finetune``: the profile's recipe (``FinetuneRecipe.from_profile``; cpu: 6,000 training reviews,
2 epochs of batch 32, lr 1e-4) run by lesson 07's plain loop (``finetune_loop``, the best epoch on the
validation reviews kept), scored on every test review: accuracy, F1, test loss, expected calibration
error and the share of test probabilities outside 0.3-0.7.
Part ``baselines``, on the same training reviews and the same test reviews: always the majority class;
TF-IDF + logistic regression (lesson 09's ``text_classifier``); a linear probe on MiniLM's frozen
mean-pooled embeddings (logistic regression); zero-shot, by cosine to the label descriptions of lesson 08.
Part ``readout`` reads the fine-tuned model of part ``finetune`` the way lesson 07's later sections read the
live one: its reliability diagram on the test reviews, temperature scaling fitted on the validation reviews
(expected calibration error before and after), the most confident mistakes, and the last layer's attention
from ``[CLS]`` (mean of the heads) on the lesson's example review, before and after fine-tuning.
Part ``heads``: why the smoke run barely moves. The smoke recipe (640 reviews, one epoch of batch 16) from
MiniLM with Hugging Face's pooled-``[CLS]`` head and with a head on the mean of the last hidden states
(the vector MiniLM was trained to produce), seeds 0-2, each scored on every test review.

It takes about 20 minutes on two CPU cores. The file records how, where and when it was measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

from _provenance import provenance  # benchmarks/_provenance.py, beside this script


def _mean_pooled_classifier(seed: int, label_names):
    """MiniLM's encoder + lesson 10's head on the mean of its last hidden states, the head drawn from ``seed``."""
    import torch
    from transformers import AutoModel

    from fmteach.applications.nsp import MeanPooledPairClassifier
    from fmteach.assets import pretrained_bert

    encoder = AutoModel.from_pretrained(pretrained_bert("minilm"))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MeanPooledPairClassifier(encoder, len(label_names), dropout=encoder.config.hidden_dropout_prob)


def _scores(test_labels, probabilities, loss=None) -> dict:
    import numpy as np

    from fmteach.finetune import classification_metrics
    from fmteach.thresholds import reliability

    p = np.asarray(probabilities)[:, 1]
    row = classification_metrics(test_labels, (p >= 0.5).astype(int), num_labels=2)
    row = {k: round(float(v), 4) for k, v in row.items()}
    row["outside_0.3_0.7"] = round(float(np.mean(np.abs(p - 0.5) >= 0.2)), 4)
    row["ece"] = round(float(reliability(p, test_labels, n_bins=10).ece), 4)
    if loss is not None:
        row["test_loss"] = round(float(loss), 4)
    return row


REVIEW = "the acting is superb , but the story is a tedious , predictable mess ."  # lesson 07, section 9


def _temperature(val_probabilities, val_labels) -> float:
    """Temperature scaling (Guo et al. 2017): the T that minimises validation NLL, on a log grid 0.1..10."""
    import numpy as np

    log_p = np.log(np.clip(np.asarray(val_probabilities, dtype=np.float64), 1e-12, None))  # logits up to a shift
    labels = np.asarray(val_labels)

    def nll(t):
        z = log_p / t
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1))).mean())

    return float(min(np.logspace(-1, 1, 401), key=nll))


def _cls_attention(model, tokenizer) -> tuple[list, list]:
    """Tokens of REVIEW and the last layer's attention from [CLS], mean of the heads (eager attention)."""
    import torch

    model = model.float().to("cpu").eval()
    model.set_attn_implementation("eager")
    enc = tokenizer(REVIEW, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    row = out.attentions[-1][0].mean(0)[0]
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), [round(float(a), 4) for a in row]


def readout(recipe, data, tokenizer, model, test_probabilities, val_probabilities, val_labels) -> dict:
    import numpy as np
    import torch

    from fmteach.finetune import load_for_classification, most_confident_mistakes
    from fmteach.thresholds import reliability

    p = np.asarray(test_probabilities)
    r = reliability(p[:, 1], data.test.labels, n_bins=10)
    t = _temperature(val_probabilities, val_labels)
    scaled = torch.tensor(np.log(np.clip(p, 1e-12, None)) / t).softmax(-1).numpy()
    tokens, after = _cls_attention(model, tokenizer)
    _, pretrained = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    _, before = _cls_attention(pretrained, tokenizer)
    enc = tokenizer(REVIEW, return_tensors="pt")
    with torch.no_grad():
        review_p = model(**enc).logits.softmax(-1)[0]
    return {"reliability": {"mean_predicted": [round(float(v), 4) for v in r.mean_predicted],
                            "fraction_positive": [round(float(v), 4) for v in r.fraction_positive],
                            "counts": [int(c) for c in r.counts], "ece": round(r.ece, 4)},
            "temperature": {"T": round(t, 4), "fitted_on": f"{len(val_labels):,} validation reviews",
                            "ece_after": round(reliability(scaled[:, 1], data.test.labels, n_bins=10).ece, 4)},
            "mistakes": most_confident_mistakes(data.test.texts, data.test.labels, torch.tensor(p),
                                                data.label_names, k=6),
            "review": {"text": REVIEW, "tokens": tokens, "cls_attention_pretrained": before,
                       "cls_attention_finetuned": after,
                       "probabilities": dict(zip(data.label_names, [round(float(v), 4) for v in review_p]))}}


def finetune(recipe, data, tokenizer_and_model=None, *, read_out=False) -> dict:
    from transformers import DataCollatorWithPadding

    from fmteach.finetune import encode, evaluate_model, finetune_loop, load_for_classification, subset

    tokenizer, model = tokenizer_and_model or load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    collator = DataCollatorWithPadding(tokenizer)
    enc = lambda split, n: encode(tokenizer, subset(split, n), max_length=recipe.max_length)  # noqa: E731
    started = time.perf_counter()
    loop = finetune_loop(model, enc(data.train, recipe.n_train), enc(data.validation, recipe.n_eval), recipe,
                         collator=collator, progress=False)
    test = evaluate_model(model, enc(data.test, None), collator)
    row = _scores(data.test.labels, test["probabilities"].numpy(), test["loss"])
    row.update(best_epoch=loop.best_epoch, train_seconds=round(time.perf_counter() - started, 1),
               history=[{k: round(float(v), 4) for k, v in r.items()} for r in loop.history])
    if read_out:
        val = enc(data.validation, recipe.n_eval)
        val_p = evaluate_model(model, val, collator)["probabilities"].numpy()
        row["readout"] = readout(recipe, data, tokenizer, model, test["probabilities"].numpy(), val_p, val.labels)
    return row


def baselines(recipe, data) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from fmteach import fewshot
    from fmteach.finetune import subset
    from fmteach.leakage import text_classifier

    train = subset(data.train, recipe.n_train)
    majority = int(np.bincount(train.labels).argmax())
    rows = {"majority class": _scores(data.test.labels, np.eye(2)[[majority] * len(data.test.labels)])}
    tfidf = text_classifier("logreg").fit(train.texts, train.labels)
    rows["TF-IDF + logistic regression"] = _scores(data.test.labels, tfidf.predict_proba(data.test.texts))
    tokenizer, embedder = fewshot.load_embedder("minilm")
    x_train, x_test = (fewshot.embed(embedder, tokenizer, s.texts, max_length=recipe.max_length)
                       for s in (train, data.test))
    probe = LogisticRegression(max_iter=2000, random_state=0).fit(x_train.numpy(), train.labels)
    rows["linear probe on frozen MiniLM embeddings"] = _scores(data.test.labels, probe.predict_proba(x_test.numpy()))
    labels = fewshot.label_embeddings(embedder, tokenizer, fewshot.LABEL_DESCRIPTIONS["movie-reviews"])
    similarity = fewshot.similarity_scores(x_test, labels)
    rows["zero-shot, label descriptions"] = _scores(data.test.labels, (similarity * 20).softmax(-1).numpy())
    return rows


def heads(data, seeds) -> dict:
    import dataclasses

    from fmteach.finetune import FinetuneRecipe, load_for_classification

    rows = {"pooled [CLS] head": [], "mean-pooled head": []}
    for seed in seeds:
        recipe = dataclasses.replace(FinetuneRecipe.from_profile("smoke"), seed=seed)
        tokenizer, cls_model = load_for_classification(recipe.model, data.label_names, seed=seed)
        rows["pooled [CLS] head"].append(finetune(recipe, data, (tokenizer, cls_model)))
        rows["mean-pooled head"].append(finetune(recipe, data, (tokenizer, _mean_pooled_classifier(seed, data.label_names))))
    summary = {}
    for name, runs in rows.items():
        accuracies = [r["accuracy"] for r in runs]
        summary[name] = {"test_accuracy_mean": round(statistics.mean(accuracies), 4),
                         "test_accuracy_std": round(statistics.stdev(accuracies), 4) if len(runs) > 1 else 0.0,
                         "final_train_loss_mean": round(statistics.mean(r["history"][-1]["train_loss"] for r in runs), 4),
                         "runs": runs}
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default="cpu")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the heads comparison (0, 1, ...)")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/lesson07_<profile>.json")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)

    from fmteach.finetune import FinetuneRecipe
    from fmteach.profile import get_device
    from fmteach.text_datasets import load_text_classification

    started = time.perf_counter()
    recipe = FinetuneRecipe.from_profile(args.profile)
    data = load_text_classification(recipe.dataset)
    record = {"dataset": recipe.dataset, "n_test": len(data.test.labels), "recipe": repr(recipe)}
    record["finetune"] = finetune(recipe, data, read_out=True)
    print(f"fine-tuned MiniLM: {record['finetune']['accuracy']:.3f}", flush=True)
    record["baselines"] = baselines(recipe, data)
    for name, row in record["baselines"].items():
        print(f"{name}: {row['accuracy']:.3f}", flush=True)
    record["heads"] = heads(data, range(args.seeds))
    for name, row in record["heads"].items():
        print(f"smoke budget, {name}: {row['test_accuracy_mean']:.3f} +- {row['test_accuracy_std']:.3f}", flush=True)
    record["how"] = provenance(__file__, argv, device=get_device(), started=started,
                               details={"profile": args.profile, "seeds": args.seeds})
    out = args.out or Path(__file__).parent / "results" / f"lesson07_{args.profile}.json"
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
