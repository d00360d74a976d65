"""The seed text's recipe done right for transformers 5: ``TrainingArguments``, ``compute_metrics``
and a ``Trainer`` on the recipe's subsets."""

from __future__ import annotations

import numpy as np
import torch

from ..profile import autocast_dtype, get_device
from ..progress import progress_enabled
from ..text_datasets import TextClassificationData
from .data import encode, subset
from .inputs import num_labels_of
from .metrics import check_label_range, classification_metrics
from .recipe import FinetuneRecipe

__all__ = ["compute_metrics", "make_trainer", "training_arguments"]


def training_arguments(recipe: FinetuneRecipe, out_dir, *, progress: bool | None = None, **overrides):
    """``TrainingArguments`` for the recipe, written for transformers 5.

    Evaluates and saves every epoch and reloads the best epoch's weights (by validation accuracy) at
    the end; linear warmup then linear decay; weight decay; one seed for weights and data order;
    bf16 on a GPU that has it, fp16 with loss scaling on one that has not (a T4);
    no experiment-tracker integrations.
    """
    from transformers import TrainingArguments

    if not isinstance(recipe, FinetuneRecipe):
        raise TypeError(f"recipe must be a FinetuneRecipe, got {type(recipe).__name__}")
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


def compute_metrics(eval_pred) -> dict[str, float]:
    """``Trainer(compute_metrics=...)``: logits and labels in, the four metrics out."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):  # some models also return hidden states
        logits = logits[0]
    logits = np.asarray(logits)
    return classification_metrics(labels, logits.argmax(-1), num_labels=logits.shape[-1])


def _check_data_fits_model(data: TextClassificationData, model) -> None:
    """The data's label names and labels against the classes the model scores, before any step."""
    if not isinstance(data, TextClassificationData):
        raise TypeError(f"data must be a TextClassificationData (load_text_classification), got {type(data).__name__}")
    num_labels = num_labels_of(model)
    if num_labels is None:
        return
    if len(data.label_names) != num_labels:
        raise ValueError(f"data has {len(data.label_names)} label names {data.label_names} but the model scores "
                         f"{num_labels} classes: load it with load_for_classification(name, data.label_names)")
    for name in ("train", "validation"):
        check_label_range(getattr(data, name).labels, num_labels, f"data.{name}.labels")


def make_trainer(recipe: FinetuneRecipe, tokenizer, model, data: TextClassificationData, out_dir, *,
                 progress: bool | None = None, callbacks=None, **argument_overrides):
    """A ``Trainer`` on the recipe's train subset, evaluated on its validation subset, padding each
    batch dynamically (``DataCollatorWithPadding``) and reporting :func:`compute_metrics`.

    As transformers does, building the ``Trainer`` seeds the global random generators with
    ``recipe.seed`` (``transformers.set_seed``), so that ``trainer.train()`` is reproducible."""
    from transformers import DataCollatorWithPadding, Trainer

    _check_data_fits_model(data, model)
    args = training_arguments(recipe, out_dir, progress=progress, **argument_overrides)
    train = encode(tokenizer, subset(data.train, recipe.n_train), max_length=recipe.max_length)
    validation = encode(tokenizer, subset(data.validation, recipe.n_eval), max_length=recipe.max_length)
    return Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,  # transformers 5: not `tokenizer=`
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
