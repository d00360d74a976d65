"""Fine-tune a pretrained BERT for text classification (lesson 07).

The seed text's recipe -- ``AutoTokenizer``, ``AutoModelForSequenceClassification``,
``TrainingArguments``, ``Trainer``, then ``train`` / ``evaluate`` / ``predict`` / ``save_model`` --
done right for transformers 5, and the same job as a plain PyTorch loop (:func:`finetune_loop`) so
that nothing Trainer does is magic. Fine-tuning here is *full* fine-tuning: every weight of the
encoder moves, not only the new classifier head.

    recipe = FinetuneRecipe.from_profile()              # sizes from FMTEACH_PROFILE
    data = load_text_classification(recipe.dataset)
    tokenizer, model = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)
    trainer = make_trainer(recipe, tokenizer, model, data, "runs/finetune")
    trainer.train(); trainer.evaluate(); trainer.predict(...)

Under ``accelerate launch`` or ``torchrun --nproc_per_node=N`` the same code trains data-parallel
(Trainer wraps the model in DistributedDataParallel; ``per_device_train_batch_size`` is per process).

The submodules, each importing only the ones above it in this list:

* ``inputs``   -- base: what a batch hands to the model (``model_inputs``), how many classes it scores;
* ``metrics``  -- base: ``classification_metrics`` and the label-range check every entry point uses;
* ``recipe``   -- ``FinetuneRecipe`` and ``FinetuneRecipe.from_profile(profile=None, **overrides)``;
* ``data``     -- ``subset``, ``encode`` -> ``EncodedSplit``, ``label_maps``, length-sorted batches;
* ``models``   -- ``load_for_classification`` (pretrained or ``random_init``), ``classifier_from_mlm``,
  ``copy_model``; every random draw inside ``seeded(seed)``;
* ``trainer``  -- ``training_arguments``, ``compute_metrics``, ``make_trainer``;
* ``evaluate`` -- ``evaluate_model``, ``predict_proba``, ``padding_speed``, ``most_confident_mistakes``;
* ``loop``     -- ``finetune_loop`` in named steps and its ``LoopResult`` (it calls ``evaluate``);
* ``cli``      -- ``main``: ``python -m fmteach.finetune`` (``__main__``).

The names lessons use are re-exported here: ``from fmteach.finetune import ...``.
"""

from ..assets import pretrained_bert  # noqa: F401  (was a module attribute; tests and notebooks use it)
from .cli import main
from .data import EncodedSplit, encode, label_maps, length_sorted_batches, subset
from .evaluate import evaluate_model, most_confident_mistakes, padding_speed, predict_proba
from .loop import LoopResult, finetune_loop
from .metrics import check_label_range, classification_metrics
from .models import classifier_from_mlm, copy_model, load_for_classification
from .recipe import FinetuneRecipe
from .trainer import compute_metrics, make_trainer, training_arguments

__all__ = [
    "FinetuneRecipe",
    "EncodedSplit",
    "encode",
    "subset",
    "label_maps",
    "length_sorted_batches",
    "classification_metrics",
    "check_label_range",
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
    "copy_model",
    "main",
]
