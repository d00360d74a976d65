"""Fine-tune a pretrained BERT for text classification (lesson 07).

The seed text's recipe -- ``AutoTokenizer``, ``AutoModelForSequenceClassification``,
``TrainingArguments``, ``Trainer``, then ``train`` / ``evaluate`` / ``predict`` / ``save_model`` --
done right for transformers 5, and the same job as a plain PyTorch loop (:func:`finetune_loop`) so
that nothing Trainer does is magic. Fine-tuning here is *full* fine-tuning: every weight of the
encoder moves, not only the new classifier head.

    recipe = FinetuneRecipe.for_profile()              # sizes from FMTEACH_PROFILE
    data = load_text_classification(recipe.dataset)
    tokenizer, model = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    trainer = make_trainer(recipe, tokenizer, model, data, "runs/finetune")
    trainer.train(); trainer.evaluate(); trainer.predict(...)

Under ``accelerate launch`` or ``torchrun --nproc_per_node=N`` the same code trains data-parallel
(Trainer wraps the model in DistributedDataParallel; ``per_device_train_batch_size`` is per process).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..assets import TextClassificationData, TextSplit, pretrained_bert
from ..bert import logits_of  # one helper for our models' tuples and HF outputs
from ..profile import autocast_dtype, by_profile, get_device, get_profile, set_seed
from ..progress import progress_bar, progress_enabled

__all__ = [
    "FinetuneRecipe",
    "EncodedSplit",
    "encode",
    "subset",
    "classification_metrics",
    "compute_metrics",
    "load_for_classification",
    "training_arguments",
    "make_trainer",
    "LoopResult",
    "finetune_loop",
    "evaluate_model",
    "predict_proba",
    "padding_speed",
    "most_confident_mistakes",
    "classifier_from_mlm",
    "logits_of",
    "copy_model",
]


@dataclass(frozen=True)
class FinetuneRecipe:
    """Everything that sizes a fine-tuning run; ``FinetuneRecipe.for_profile()`` picks the preset.

    ``n_train`` / ``n_eval`` take the first examples of the (already shuffled) splits; ``None``
    takes them all. ``warmup`` is a fraction of all steps, as transformers 5's ``warmup_steps``
    accepts it (``warmup_ratio`` is gone).
    """

    model: str = "minilm"
    dataset: str = "movie-reviews"
    n_train: int | None = None
    n_eval: int | None = None
    max_length: int = 128
    epochs: float = 3.0
    batch_size: int = 32
    eval_batch_size: int = 128
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        for name in ("epochs", "batch_size", "learning_rate", "max_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides) -> FinetuneRecipe:
        """smoke: 640 reviews, 1 epoch (CI); cpu: 6,000 reviews, 2 epochs, under 10 minutes on 2
        cores; gpu: all 8,453 reviews, 4 epochs, 16-bit (bf16, or fp16 on a T4). Validation and test:
        all of them except in smoke."""
        profile = profile or get_profile()
        preset = by_profile(
            smoke=dict(n_train=640, n_eval=256, epochs=1.0, batch_size=16, learning_rate=1e-4),
            cpu=dict(n_train=6000, n_eval=None, epochs=2.0, batch_size=32, learning_rate=1e-4),
            gpu=dict(n_train=None, n_eval=None, epochs=4.0, batch_size=32, learning_rate=5e-5),
            profile=profile,
        )
        return cls(**{**preset, **overrides})


# ----------------------------------------------------------------------------------------------
# Data


def subset(split: TextSplit, n: int | None) -> TextSplit:
    """The first ``n`` examples (splits are already in a fixed shuffled order); ``None``: all."""
    if n is None or n >= len(split):
        return split
    if n <= 0:
        raise ValueError(f"n must be positive or None, got {n}")
    return TextSplit(split.texts[:n], split.labels[:n])


class EncodedSplit(torch.utils.data.Dataset):
    """Tokenised examples as a list of dicts (``input_ids``, ``attention_mask``, ..., ``labels``) of
    plain Python lists, *unpadded* unless asked: a collator pads each batch."""

    def __init__(self, features: list[dict], texts: Sequence[str]):
        self.features = features
        self.texts = list(texts)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]

    @property
    def labels(self) -> list[int]:
        return [f["labels"] for f in self.features]

    def num_tokens(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)


def encode(tokenizer, split: TextSplit, *, max_length: int = 128, padding: bool | str = False) -> EncodedSplit:
    """Tokenise a split. ``padding=False`` (dynamic padding: a ``DataCollatorWithPadding`` pads each
    batch to its longest member) or ``"max_length"`` (the seed text's choice: every example padded
    to ``max_length``)."""
    if padding not in (False, "max_length"):
        raise ValueError(f"padding must be False (dynamic) or 'max_length', got {padding!r}")
    if len(split) == 0:
        raise ValueError("cannot encode an empty split")
    enc = tokenizer(list(split.texts), truncation=True, max_length=max_length, padding=padding)
    keys = list(enc.keys())
    features = [{k: enc[k][i] for k in keys} | {"labels": int(split.labels[i])} for i in range(len(split))]
    return EncodedSplit(features, split.texts)


# ----------------------------------------------------------------------------------------------
# Metrics


def classification_metrics(labels, predictions, num_labels: int | None = None) -> dict[str, float]:
    """Accuracy, precision, recall and F1 with scikit-learn (``evaluate.load`` needs the network).

    Two classes: precision/recall/F1 of the positive class (label 1). More: macro averages, so
    that every class counts the same however rare it is.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    num_labels = num_labels or int(max(labels.max(), predictions.max()) + 1)
    average = "binary" if num_labels == 2 else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average=average, labels=None if average == "binary" else list(range(num_labels)),
        zero_division=0)
    return {"accuracy": float(accuracy_score(labels, predictions)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}


def compute_metrics(eval_pred) -> dict[str, float]:
    """``Trainer(compute_metrics=...)``: logits and labels in, the four metrics out."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):  # some models also return hidden states
        logits = logits[0]
    return classification_metrics(labels, np.asarray(logits).argmax(-1), num_labels=np.asarray(logits).shape[-1])


# ----------------------------------------------------------------------------------------------
# Models


def load_for_classification(name: str = "minilm", label_names: Sequence[str] = ("negative", "positive"), *,
                            seed: int = 0, random_init: bool = False, attn_implementation: str | None = None):
    """``(tokenizer, AutoModelForSequenceClassification)`` with a new, seeded classifier head.

    ``name``: ``"minilm"`` (packaged, offline) or a hub id such as ``"bert-base-uncased"`` (online
    only). ``random_init=True`` keeps the architecture and tokenizer but throws the pretrained
    weights away -- the control that shows what pretraining buys. ``attn_implementation="eager"``
    when you want attention maps.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = pretrained_bert(name)
    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}}
    extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    tokenizer = AutoTokenizer.from_pretrained(path)
    set_seed(seed)  # the new head (and, for random_init, every weight) is drawn now
    if random_init:
        config = AutoConfig.from_pretrained(path, **labels)
        model = AutoModelForSequenceClassification.from_config(config, **extra)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, **labels, **extra)
    return tokenizer, model


def classifier_from_mlm(mlm_model, num_labels: int, *, seed: int = 0):
    """Our :class:`~fmteach.bert.MiniBertForSequenceClassification` with the encoder of a pretrained
    :class:`~fmteach.bert.MiniBertForMaskedLM` (lesson 05); pooler and classifier start fresh."""
    from ..bert import MiniBertForSequenceClassification

    set_seed(seed)
    model = MiniBertForSequenceClassification(replace(mlm_model.config, num_labels=num_labels))
    missing, unexpected = model.bert.load_state_dict(mlm_model.bert.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"encoder weights do not match: missing {missing}, unexpected {unexpected}")
    return model


def _model_inputs(batch: dict, device) -> dict:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: batch[k].to(device) for k in keys if k in batch}


# ----------------------------------------------------------------------------------------------
# Trainer


def training_arguments(recipe: FinetuneRecipe, out_dir, *, progress: bool | None = None, **overrides):
    """``TrainingArguments`` for the recipe, written for transformers 5.

    Evaluates and saves every epoch and reloads the best epoch's weights (by validation accuracy) at
    the end; linear warmup then linear decay; weight decay; one seed for weights and data order;
    bf16 on a GPU that has it, fp16 with loss scaling on one that has not (a T4);
    no experiment-tracker integrations.
    """
    from transformers import TrainingArguments

    amp_dtype = autocast_dtype(get_device())
    kwargs = dict(
        output_dir=str(out_dir),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.eval_batch_size,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        warmup_steps=recipe.warmup,  # a float in [0, 1) is a fraction of the steps in transformers 5
        lr_scheduler_type="linear",
        max_grad_norm=recipe.max_grad_norm,
        eval_strategy="epoch",       # transformers 5: not `evaluation_strategy`
        save_strategy="epoch",
        save_total_limit=1,          # the best checkpoint is always kept as well
        save_only_model=True,        # no optimizer state on disk: we never resume these short runs
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=amp_dtype == torch.bfloat16,
        fp16=amp_dtype == torch.float16,  # a GPU without bf16 (T4): Trainer adds the gradient scaler
        logging_strategy="steps",
        logging_steps=10,
        report_to="none",
        disable_tqdm=not progress_enabled(progress),
        dataloader_pin_memory=torch.cuda.is_available(),
        # on a CPU-only machine say so: only then does Trainer train data-parallel (gloo) under torchrun
        use_cpu=get_device().type == "cpu",
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def make_trainer(recipe: FinetuneRecipe, tokenizer, model, data: TextClassificationData, out_dir, *,
                 progress: bool | None = None, callbacks=None, **argument_overrides):
    """A ``Trainer`` on the recipe's train subset, evaluated on its validation subset, padding each
    batch dynamically (``DataCollatorWithPadding``) and reporting :func:`compute_metrics`."""
    from transformers import DataCollatorWithPadding, Trainer

    train = encode(tokenizer, subset(data.train, recipe.n_train), max_length=recipe.max_length)
    validation = encode(tokenizer, subset(data.validation, recipe.n_eval), max_length=recipe.max_length)
    return Trainer(
        model=model,
        args=training_arguments(recipe, out_dir, progress=progress, **argument_overrides),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,  # transformers 5: not `tokenizer=`
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )


# ----------------------------------------------------------------------------------------------
# The same job as a plain PyTorch loop


@dataclass
class LoopResult:
    """One row per epoch in ``history``; ``best_epoch`` is the one whose weights the model holds."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def _decay_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices only -- not on biases or LayerNorm, as Trainer does."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def finetune_loop(model, train: EncodedSplit, validation: EncodedSplit | None, recipe: FinetuneRecipe, *, collator,
                  device: torch.device | None = None, track_train_accuracy: bool = False,
                  early_stopping_patience: int | None = None, max_steps: int | None = None,
                  progress: bool | None = None) -> LoopResult:
    """What ``Trainer.train()`` does for us, written out: shuffle with a seeded generator, pad each
    batch, AdamW with decoupled weight decay, linear warmup and decay, gradient clipping, 16-bit on
    a GPU (bf16, or fp16 with a gradient scaler), evaluate every epoch, keep the best epoch's
    weights (and, with ``early_stopping_patience``, stop once validation accuracy has not improved
    for that many epochs). ``validation=None`` trains without evaluating and keeps the last weights (few-shot:
    no examples to spare). Works for Hugging Face models and our own
    ``MiniBertForSequenceClassification``.
    """

    device = device or get_device()
    model.to(device)
    generator = torch.Generator().manual_seed(recipe.seed)
    loader = torch.utils.data.DataLoader(train, batch_size=recipe.batch_size, shuffle=True, generator=generator,
                                         collate_fn=collator)
    steps_per_epoch = len(loader)
    total = max_steps or math.ceil(recipe.epochs * steps_per_epoch)
    warmup = int(recipe.warmup * total)
    optimizer = torch.optim.AdamW(_decay_groups(model, recipe.weight_decay), lr=recipe.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    amp_dtype = autocast_dtype(device)
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)  # fp16 gradients underflow

    result, best, best_state, bad_epochs = LoopResult(), -1.0, None, 0
    start, step, epoch = time.perf_counter(), 0, 0
    bar = progress_bar(total=total, desc="fine-tuning", enabled=progress)
    while step < total:
        epoch += 1
        model.train()
        losses, seen = [], 0
        for batch in loader:
            labels = batch["labels"].to(device)
            with autocast:
                loss = F.cross_entropy(logits_of(model(**_model_inputs(batch, device))).float(), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            seen += len(labels)
            step += 1
            bar.update(1)
            if step >= total:
                break
        row = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses))}
        if track_train_accuracy:
            row["train_accuracy"] = evaluate_model(model, train, collator, batch_size=recipe.eval_batch_size,
                                                   device=device)["accuracy"]
        row["seconds"] = time.perf_counter() - start
        result.history.append(row)
        if validation is None:
            result.best_epoch = epoch
            continue
        metrics = evaluate_model(model, validation, collator, batch_size=recipe.eval_batch_size, device=device)
        row.update({f"eval_{k}": v for k, v in metrics.items() if k != "probabilities"})
        row["seconds"] = time.perf_counter() - start
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['eval_accuracy']:.3f}")
        if row["eval_accuracy"] > best:
            best, bad_epochs, result.best_epoch = row["eval_accuracy"], 0, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if early_stopping_patience is not None and bad_epochs >= early_stopping_patience:
                result.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    result.steps, result.seconds = step, time.perf_counter() - start
    return result


# ----------------------------------------------------------------------------------------------
# Evaluation and prediction


@torch.no_grad()
def evaluate_model(model, data: EncodedSplit, collator, *, batch_size: int = 128, device=None) -> dict:
    """Loss, the four metrics and every example's class probabilities (``"probabilities"``, N x C)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collator)
    probs, labels, loss_sum = [], [], 0.0
    for batch in loader:
        y = batch["labels"].to(device)
        logits = logits_of(model(**_model_inputs(batch, device))).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        probs.append(logits.softmax(-1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    probs, labels = torch.cat(probs), torch.cat(labels)
    metrics = classification_metrics(labels.numpy(), probs.argmax(-1).numpy(), num_labels=probs.shape[-1])
    return {"loss": loss_sum / len(labels), **metrics, "probabilities": probs}


@torch.no_grad()
def predict_proba(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 64,
                  device=None) -> torch.Tensor:
    """Class probabilities ``(N, C)`` for raw texts; batches of similar length, so little padding."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = [None] * len(texts)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        probs = logits_of(model(**_model_inputs(enc, device))).float().softmax(-1).cpu()
        for j, i in enumerate(idx):
            out[i] = probs[j]
    model.train(was_training)
    return torch.stack(out)


def padding_speed(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 16,
                  n_batches: int = 4, rounds: int = 2, device=None, seed: int = 0) -> dict:
    """Training examples per second with every example padded to ``max_length`` (the seed text's
    ``padding="max_length"``) vs dynamic padding, measured side by side on the same batches
    (alternating, best of ``rounds``); forward + backward, no optimizer step (weights unchanged)."""
    from transformers import DataCollatorWithPadding

    device = device or next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(texts), generator=g)[: batch_size * n_batches].tolist()
    chosen = TextSplit([texts[i] for i in pick], [0] * len(pick))
    variants = {"max_length": encode(tokenizer, chosen, max_length=max_length, padding="max_length"),
                "dynamic": encode(tokenizer, chosen, max_length=max_length)}
    collator = DataCollatorWithPadding(tokenizer)
    was_training = model.training
    model.train()
    best = {name: math.inf for name in variants}
    tokens = {}
    for _ in range(rounds):
        for name, enc in variants.items():
            batches = [collator([enc[i] for i in range(s, s + batch_size)]) for s in range(0, len(enc), batch_size)]
            tokens[name] = sum(b["input_ids"].numel() for b in batches)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for b in batches:
                loss = logits_of(model(**_model_inputs(b, device))).float().logsumexp(-1).mean()
                loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    n = len(pick)
    return {
        "examples": n,
        "max_length_tokens_per_example": tokens["max_length"] / n,
        "dynamic_tokens_per_example": tokens["dynamic"] / n,
        "max_length_examples_per_s": n / best["max_length"],
        "dynamic_examples_per_s": n / best["dynamic"],
        "speedup": best["max_length"] / best["dynamic"],
    }


def most_confident_mistakes(texts: Sequence[str], labels: Sequence[int], probabilities: torch.Tensor,
                            label_names: Sequence[str], k: int = 5) -> list[dict]:
    """The ``k`` wrong predictions the model was surest of: ``{text, label, predicted, confidence}``."""
    probabilities = torch.as_tensor(probabilities)
    if probabilities.shape != (len(texts), len(label_names)) or len(labels) != len(texts):
        raise ValueError(f"probabilities {tuple(probabilities.shape)} must be (len(texts)={len(texts)}, "
                         f"len(label_names)={len(label_names)}) and labels must have {len(texts)} entries")
    confidence, predicted = probabilities.max(-1)
    wrong = [i for i in range(len(texts)) if predicted[i].item() != labels[i]]
    wrong.sort(key=lambda i: -confidence[i].item())
    return [{"text": texts[i], "label": label_names[labels[i]], "predicted": label_names[predicted[i].item()],
             "confidence": round(confidence[i].item(), 4)} for i in wrong[:k]]


def copy_model(model):
    """A deep copy (to fine-tune one starting point several ways)."""
    return copy.deepcopy(model)


# ----------------------------------------------------------------------------------------------
# Command line: the same recipe outside a notebook, on one process or many


def _cli_callback(max_seconds: float | None, jsonl: str | None):
    """A ``TrainerCallback`` for the command line: it copies every log (losses, evaluations) to a
    JSON-lines file, and ends training once ``max_seconds`` are spent; Trainer then still evaluates,
    saves and reloads the best epoch as at the end of an epoch."""
    from transformers import TrainerCallback

    from ..train import append_jsonl

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


def main(argv=None) -> dict:
    """Fine-tune, evaluate on the test split, save the model; print and write ``results.json``.

        python -m fmteach.finetune --profile cpu --out runs/finetune-cpu
        torchrun --nproc_per_node=4 -m fmteach.finetune --profile gpu --out runs/finetune-gpu
        accelerate launch --num_processes 4 -m fmteach.finetune --profile gpu --out runs/finetune-gpu
        python -m fmteach.finetune --model bert-base-uncased --profile gpu --out runs/bert-base   # online

    Several processes train data-parallel through Trainer (each takes ``batch_size`` examples per
    step, so the effective batch grows with the number of processes).
    """
    import argparse
    import json
    from pathlib import Path

    from ..assets import load_text_classification
    from ..train import append_jsonl

    parser = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default=None)
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
    args = parser.parse_args(argv)
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")

    overrides = {k: v for k, v in (("model", args.model), ("dataset", args.dataset), ("epochs", args.epochs),
                                   ("n_train", args.n_train), ("n_eval", args.n_eval)) if v}
    overrides |= {k: v for k, v in (("batch_size", args.batch_size), ("max_length", args.max_length)) if v is not None}
    recipe = FinetuneRecipe.for_profile(args.profile, **overrides)
    data = load_text_classification(recipe.dataset)
    tokenizer, model = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    out = Path(args.out)
    callback = _cli_callback(args.max_seconds, args.metrics_jsonl)
    trainer = make_trainer(recipe, tokenizer, model, data, out / "checkpoints", progress=not args.no_progress,
                           callbacks=[callback])
    if trainer.is_world_process_zero():
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
    if args.padding_benchmark and trainer.is_world_process_zero():
        results["padding"] = padding_speed(trainer.model, tokenizer, data.train.texts, max_length=recipe.max_length,
                                           batch_size=recipe.batch_size, n_batches=8, rounds=3)
    if trainer.is_world_process_zero():
        trainer.save_model(str(out / "model"))  # weights, config (with label names) and tokenizer
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        t = results["test"]
        print(f"final: {recipe.dataset} test accuracy {t['accuracy']:.4f}  f1 {t['f1']:.4f}  "
              f"({len(test)} examples; trained {seconds:.0f} s on {results['processes']} process(es))", flush=True)
        if "padding" in results:
            p = results["padding"]
            print(f"padding: max_length {p['max_length_examples_per_s']:.0f} ex/s, dynamic "
                  f"{p['dynamic_examples_per_s']:.0f} ex/s, speed-up {p['speedup']:.2f}x", flush=True)
        append_jsonl(args.metrics_jsonl, {"event": "final", "device": str(trainer.args.device),
                                          **{k: v for k, v in results.items() if k != "history"}})
    return results


if __name__ == "__main__":
    main()
