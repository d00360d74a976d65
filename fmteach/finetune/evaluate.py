"""Evaluation and prediction: metrics with probabilities, probabilities for raw texts, the padding
benchmark and the most confident mistakes. Models are put in eval mode for the call only."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._checks import check_positive, is_int
from .._io import eval_mode
from ..seeding import DEFAULT_SEED
from ..text_datasets import TextSplit
from .data import EncodedSplit, check_texts, encode, length_sorted_batches
from .inputs import model_inputs, num_labels_of
from .metrics import check_label_range, classification_metrics

__all__ = ["evaluate_model", "most_confident_mistakes", "padding_speed", "predict_proba"]


@torch.no_grad()
def evaluate_model(model, data: EncodedSplit, collator, *, batch_size: int = 128, device=None) -> dict:
    """Loss, the four metrics and every example's class probabilities (``"probabilities"``, N x C)."""
    if len(data) == 0:
        raise ValueError("data is empty: nothing to evaluate")
    check_positive(batch_size=batch_size)
    if isinstance(data, EncodedSplit):
        check_label_range(data.labels, num_labels_of(model), "data.labels")
    device = device or next(model.parameters()).device
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collator)
    probs, labels, loss_sum = [], [], 0.0
    with eval_mode(model):
        for batch in loader:
            y = batch["labels"].to(device)
            logits = model(**model_inputs(batch, device)).logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            probs.append(logits.softmax(-1).cpu())
            labels.append(y.cpu())
    probs, labels = torch.cat(probs), torch.cat(labels)
    metrics = classification_metrics(labels.numpy(), probs.argmax(-1).numpy(), num_labels=probs.shape[-1])
    return {"loss": loss_sum / len(labels), **metrics, "probabilities": probs}


@torch.no_grad()
def predict_proba(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 64,
                  device=None) -> torch.Tensor:
    """Class probabilities ``(N, C)`` for raw texts; batches of similar length, so little padding."""
    texts = check_texts(texts, "texts")
    check_positive(batch_size=batch_size, max_length=max_length)
    device = device or next(model.parameters()).device
    out: list = [None] * len(texts)
    with eval_mode(model):
        for idx in length_sorted_batches(texts, batch_size):
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            probs = model(**model_inputs(enc, device)).logits.float().softmax(-1).cpu()
            for j, i in enumerate(idx):
                out[i] = probs[j]
    return torch.stack(out)


def _time_batches(model, batches, device) -> float:
    """Seconds for forward + backward over ``batches`` (no optimizer step)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        model(**model_inputs(b, device)).logits.float().logsumexp(-1).mean().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def padding_speed(model, tokenizer, texts: Sequence[str], *, max_length: int = 128, batch_size: int = 16,
                  n_batches: int = 4, rounds: int = 2, device=None, seed: int = DEFAULT_SEED) -> dict:
    """Training examples per second with every example padded to ``max_length`` (the seed text's
    ``padding="max_length"``) vs dynamic padding, measured side by side on the same batches
    (alternating, best of ``rounds``); forward + backward, no optimizer step (weights unchanged).
    The texts are drawn with ``seed`` from a generator of their own."""
    from transformers import DataCollatorWithPadding

    texts = check_texts(texts, "texts")
    check_positive(batch_size=batch_size, n_batches=n_batches, rounds=rounds)
    device = device or next(model.parameters()).device
    pick = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))[: batch_size * n_batches].tolist()
    chosen = TextSplit([texts[i] for i in pick], [0] * len(pick))
    variants = {"max_length": encode(tokenizer, chosen, max_length=max_length, padding="max_length"),
                "dynamic": encode(tokenizer, chosen, max_length=max_length)}
    collator = DataCollatorWithPadding(tokenizer)
    batches = {name: [collator([enc[i] for i in range(s, min(s + batch_size, len(enc)))])
                      for s in range(0, len(enc), batch_size)] for name, enc in variants.items()}
    tokens = {name: sum(b["input_ids"].numel() for b in bs) for name, bs in batches.items()}
    best = {name: math.inf for name in variants}
    was_training = model.training  # timed in train mode (dropout on), as training runs
    model.train()
    try:
        for _ in range(rounds):
            for name in variants:
                best[name] = min(best[name], _time_batches(model, batches[name], device))
    finally:
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
                         f"len(label_names)={len(label_names)}) and labels must have {len(texts)} entries "
                         f"(got {len(labels)})")
    if not is_int(k) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    labels = check_label_range(labels, len(label_names), "labels").tolist()
    confidence, predicted = probabilities.max(-1)
    wrong = [i for i in range(len(texts)) if predicted[i].item() != labels[i]]
    wrong.sort(key=lambda i: -confidence[i].item())
    return [{"text": texts[i], "label": label_names[labels[i]], "predicted": label_names[predicted[i].item()],
             "confidence": round(confidence[i].item(), 4)} for i in wrong[:k]]
