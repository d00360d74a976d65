"""Lesson 07, fine-tuning BERT: metrics from a confusion matrix (07.1), padding (07.2, 07.5), the threshold and
few-labels predictions (07.p1, 07.p2), 3e-5 vs 1e-4 on one budget (07.4), the Trainer setup (07.6)."""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._checking import _add_prediction, _add_solution, _call, _check_fields, _exercise, _NotAttempted, _refused

__all__ = ["check_binary_metrics", "check_padded_tokens", "check_learning_rate_experiment", "check_sorted_padding",
           "check_trainer_setup"]


def check_binary_metrics(fn: Callable) -> None:
    """``fn(tp, fp, fn, tn)`` -> dict of accuracy, precision, recall, f1 (checked against scikit-learn)."""
    from ..finetune import classification_metrics  # here: lesson 01 imports the exercises without fine-tuning

    hint = ("every metric is a ratio of confusion-matrix cells: which cells were called positive? which are "
            "truly positive? F1 is the harmonic mean of precision and recall, not the arithmetic one")
    with _exercise("binary metrics from a confusion matrix", hint):
        for tp, fp, fn_, tn in ((40, 10, 5, 45), (3, 1, 7, 89), (12, 12, 12, 12)):
            labels = [1] * tp + [0] * fp + [1] * fn_ + [0] * tn
            preds = [1] * tp + [1] * fp + [0] * fn_ + [0] * tn
            expected = classification_metrics(labels, preds, num_labels=2)
            got = _call(fn, tp, fp, fn_, tn)
            if got is ...:
                raise _NotAttempted
            if not isinstance(got, dict) or set(got) != set(expected):
                raise AssertionError(f"return a dict with keys {sorted(expected)}, got {got!r}")
            for key, value in expected.items():
                if not math.isclose(float(got[key]), value, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{key} for tp={tp}, fp={fp}, fn={fn_}, tn={tn}: got {float(got[key]):.6f}, "
                                         f"expected {value:.6f}")


def check_padded_tokens(fn: Callable) -> None:
    """``fn(lengths, batch_size, max_length)`` -> (tokens padded to max_length, tokens padded per batch)."""
    hint = ("with max_length padding every example costs the same; with dynamic padding each batch is a "
            "rectangle as wide as one of its members -- which one? The last batch may be short")
    with _exercise("tokens with max-length vs dynamic padding", hint):
        for lengths, bs, ml in (([5, 9, 3, 7], 2, 16), ([12, 4, 4, 4, 30], 3, 32), ([8], 4, 8)):
            got = _call(fn, list(lengths), bs, ml)
            if got is ...:
                raise _NotAttempted
            batches = [lengths[i:i + bs] for i in range(0, len(lengths), bs)]
            expected = (len(lengths) * ml, sum(len(b) * max(b) for b in batches))
            if tuple(got) != expected:
                raise AssertionError(f"lengths={lengths}, batch_size={bs}, max_length={ml}: got {tuple(got)}, expected {expected}")


# The fields of TrainingArguments that set the budget and the path of a run: only the learning rate may differ.
_BUDGET_FIELDS = ("num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
                  "warmup_steps", "lr_scheduler_type", "weight_decay", "max_grad_norm", "seed", "data_seed")
_PREDICTIONS_LR = ("higher", "lower", "about the same")


def _measured_direction(accuracy: float, baseline: float, tolerance: float = 0.02) -> str:
    return "higher" if accuracy > baseline + tolerance else "lower" if accuracy < baseline - tolerance else "about the same"


def _rate(rate: float) -> str:
    """3e-05 -> '3e-5', 0.0001 -> '1e-4': learning rates as the lesson writes them."""
    mantissa, exponent = f"{rate:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _rate_of(trainer) -> str:
    rate = getattr(getattr(trainer, "args", None), "learning_rate", None)
    return _rate(rate) if isinstance(rate, (int, float)) else "the lesson's rate"


def check_learning_rate_experiment(finetune_at: Callable, prediction, baseline, test_set,
                                   learning_rate: float = 3e-5) -> None:
    """Exercise 07.4: ``finetune_at(learning_rate)`` -> the ``Trainer`` of a fresh model fine-tuned like
    ``baseline`` (the lesson's trainer: 1e-4 in the smoke and cpu profiles) with only the learning rate changed.
    ``prediction``, written before running: is the test accuracy at ``learning_rate`` "higher", "lower"
    or "about the same" (within 0.02) than the baseline's? The checker refuses a run that changed anything
    else or kept training the baseline's model, then measures both on ``test_set``."""
    hint = ("what must match the lesson's run for the comparison to say what the rate did: the starting "
            "weights, the data, the number of steps? For the prediction, compare two distances at each rate: "
            "how far the weights can move from the pretrained ones in this run's steps, and how far they must "
            "move before the new head sorts the reviews well")
    title = f"learning rate {_rate(learning_rate)} against the lesson's run"
    with _exercise(title, hint):
        if prediction is ...:
            raise _NotAttempted
        if prediction not in _PREDICTIONS_LR:
            raise AssertionError(f"prediction must be one of {', '.join(map(repr, _PREDICTIONS_LR))}, "
                                 f"got {prediction!r}")
        trainer = _call(finetune_at, learning_rate)
        if trainer is ...:
            raise _NotAttempted
        if not all(hasattr(trainer, name) for name in ("args", "state", "model", "evaluate", "train_dataset")):
            raise AssertionError(f"return the Trainer you trained, got {type(trainer).__name__}")
        if trainer is baseline or trainer.model is baseline.model:
            raise AssertionError("this is the lesson's model, already fine-tuned at the baseline's rate: training "
                                 "it further measures two runs in a row, not a learning rate. Start from the "
                                 "pretrained weights")
        if not math.isclose(trainer.args.learning_rate, learning_rate, rel_tol=1e-9):
            raise AssertionError(f"the run's learning rate is {trainer.args.learning_rate!r}, "
                                 f"not {_rate(learning_rate)}")
        for name in _BUDGET_FIELDS:
            ours, theirs = getattr(trainer.args, name, None), getattr(baseline.args, name, None)
            if ours != theirs:
                raise AssertionError(f"the run changes {name} ({theirs!r} -> {ours!r}) as well as the learning rate: "
                                     f"then the comparison cannot say what the learning rate did")
        if len(trainer.train_dataset) != len(baseline.train_dataset):
            raise AssertionError(f"the run trains on {len(trainer.train_dataset)} examples, the baseline on "
                                 f"{len(baseline.train_dataset)}")
        if trainer.state.global_step != baseline.state.global_step:
            untrained = ": call trainer.train()" if not trainer.state.global_step else ""
            raise AssertionError(f"the run took {trainer.state.global_step} optimizer steps, the baseline "
                                 f"{baseline.state.global_step}{untrained}")
        accuracy, baseline_accuracy = (t.evaluate(test_set, metric_key_prefix="test")["test_accuracy"]
                                       for t in (trainer, baseline))
        measured = _measured_direction(accuracy, baseline_accuracy)
        result = (f"test accuracy {accuracy:.3f} at {_rate(learning_rate)}, {baseline_accuracy:.3f} at "
                  f"{_rate_of(baseline)}: {measured}")
        share = learning_rate / baseline.args.learning_rate
        why = ("with linear warm-up and decay the weights can move about (learning rate x steps / 2) in all; at "
               f"{share:.2g} times the rate over the same steps they move {share:.2g} times as far. "
               + ("On this budget that is too little: the smaller rate has not finished learning. BERT's 2e-5 to "
                  "5e-5 came with 2-4 epochs over far more examples, so far more steps."
                  if measured == "lower" else
                  "This budget has steps enough for the smaller rate to get as far: the rate matters less once a "
                  "run is long enough (the smoke run's rate, 1e-4, was chosen for its few dozen steps)."))
        if prediction != measured:
            raise AssertionError(f"you predicted {prediction!r}; measured {result}.\nWhy: {why}")
        print(f"measured {result}. Why: {why}")


def _padding(lengths: list[int], batch_size: int) -> int:
    """Padding tokens when ``lengths`` are batched in this order and each batch is padded to its longest."""
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return sum(len(b) * max(b) - sum(b) for b in batches)


def check_sorted_padding(fn: Callable) -> None:
    """Exercise 07.5: ``fn(lengths, batch_size)`` -> (padding tokens in the given order, padding tokens with
    the examples sorted shortest first), batches of ``batch_size`` padded to their longest member; the
    caller's ``lengths`` stay as they were."""
    hint = ("how many tokens does one padded batch hold (Exercise 2 counted them), and how many of those are "
            "real? The caller still needs its list in the order it gave it: does your way of sorting leave "
            "that list as it was?")
    with _exercise("padding saved by sorting by length", hint):
        cases = (([5, 9, 3, 7], 2), ([12, 4, 4, 4, 30], 3), ([8], 4), ([6, 6, 6, 6, 6], 2), ([9, 2, 7, 4], 1),
                 ([3, 40, 5, 38, 4, 41, 6], 2))
        for lengths, batch_size in cases:
            given = list(lengths)
            got = _call(fn, given, batch_size)
            if got is ... or (isinstance(got, tuple) and ... in got):
                raise _NotAttempted
            if given != lengths:
                raise AssertionError(f"lengths={lengths}: your function changed the list it was given to {given} "
                                     f"(the caller's order is lost)")
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"return a pair (padding in the given order, padding sorted), got {got!r}")
            expected = (_padding(lengths, batch_size), _padding(sorted(lengths), batch_size))
            if tuple(int(g) for g in got) != expected:
                raise AssertionError(f"lengths={lengths}, batch_size={batch_size}: got {tuple(got)}, "
                                     f"expected {expected}")


# --- 07.6: compute_metrics and TrainingArguments for a stated goal --------------------------------------------
def _f1(labels, predicted, positive=1) -> float:  # one class against the rest; 0 without a true positive
    tp = np.sum((predicted == positive) & (labels == positive))
    return float(2 * tp / (2 * tp + np.sum((predicted == positive) != (labels == positive)))) if tp else 0.0


_GOAL = dict(  # field=(what the goal asks, why), read by _check_fields
    eval_strategy=("epoch", "evaluate on the validation set once per epoch"),
    save_strategy=("epoch", "save once per epoch, so that the best evaluated epoch can be reloaded"),
    load_best_model_at_end=(True, "end with the weights of the best epoch, not of the last"),
    metric_for_best_model=(("f1", "eval_f1"), "the best epoch has the highest validation F1 (Trainer's default: 'loss')"),
    greater_is_better=(True, "a higher F1 is better; False would keep the worst epoch"),
    save_total_limit=(1, "the fewest checkpoints Trainer allows: it deletes older ones, keeps the best (and the latest)"),
    num_train_epochs=(3, "3 epochs"), max_steps=(-1, "a max_steps above 0 overrides num_train_epochs"),
    per_device_train_batch_size=(16, "training batches of 16"), gradient_accumulation_steps=(1, "16 per update"),
    per_device_eval_batch_size=(64, "evaluation batches of 64"), learning_rate=(1e-4, "a peak rate of 1e-4"),
    lr_scheduler_type=("linear", "linear decay after the warm-up"), weight_decay=(0.01, "weight decay 0.01"),
    warmup_steps=(0.1, "warm-up over 10 % of all steps: a float below 1 is a fraction in transformers 5 (no warmup_ratio)"),
    seed=(0, "seed 0"), report_to=([], "report_to='none' (read back as []): no experiment tracker"))
_EMPTY = ("no ratio may divide by zero: when label 1 is never predicted its precision is 0/0 and its F1 is 0; a class "
          "with no example in label_ids has no recall and stays out of the mean")


def check_trainer_setup(compute_metrics_fn: Callable, training_arguments_fn: Callable) -> None:
    """Exercise 07.6, a verdict for each function: metrics in numpy alone, and ``_GOAL``'s TrainingArguments."""
    import sklearn.metrics
    from transformers import EvalPrediction, TrainingArguments

    with _exercise("compute_metrics in numpy", "which axis of the logits holds the classes, and what turns a "
                   "row of logits into one predicted class? What does Trainer pass when the model returns more "
                   "than logits? Which counts does the F1 of label 1 need, and what is it when there is no true "
                   "positive, before you divide? Over which classes does balanced accuracy average?"):
        refused = [f"fmteach.finetune.{f}" for f in ("classification_metrics", "compute_metrics", "metrics.classification_metrics")]
        refused += [(sklearn.metrics, f, f"sklearn.metrics.{f}") for f in sklearn.metrics.__all__ if callable(getattr(sklearn.metrics, f))]
        rng, y7 = np.random.default_rng(0), np.array([0, 1, 0, 1, 1, 0, 1])
        seven = np.array([[2, -1], [.3, .9], [-.5, 1.5], [1.2, .1], [.2, .4], [1, -2], [-1, .5]])
        noisy = [(rng.normal(size=(50, c)) + 1.5 * np.eye(c)[y], y) for c in (2, 3) for y in [rng.integers(0, c, 50)]]
        for what, predictions, labels in (
                ("7 examples, 2 classes", seven, y7), ("50 examples, 2 classes", *noisy[0]),
                ("50 examples, 3 classes", *noisy[1]), ("label 1 never predicted", np.eye(2)[[0] * 7], y7),
                ("label 2 predicted, in no label", np.eye(3)[[0, 2, 0, 1, 2, 1, 0]], np.array([0, 1, 0, 1, 1, 0, 0])),
                ("predictions = (logits, hidden states)", (noisy[0][0], np.zeros((50, 4, 3))), noisy[0][1])):
            logits = predictions[0] if isinstance(predictions, tuple) else predictions
            predicted = logits.argmax(-1)  # the expected values first: the function may change what it is given
            expected = {"accuracy": float(np.mean(predicted == labels)), "f1": _f1(labels, predicted),
                        "balanced_accuracy": float(np.mean([np.mean(predicted[labels == c] == c) for c in set(labels)]))}
            try:
                with _refused(compute_metrics_fn, *refused), warnings.catch_warnings():
                    warnings.simplefilter("error", RuntimeWarning)  # numpy's 0/0 and the mean of nothing
                    got = _call(compute_metrics_fn, EvalPrediction(predictions=predictions, label_ids=labels))
            except (ArithmeticError, RuntimeWarning, ValueError, IndexError, TypeError, AttributeError) as exc:
                why = _EMPTY if isinstance(exc, (ArithmeticError, Warning)) else (
                    f"predictions: logits of shape {logits.shape}, a row per example and a column per class, or a "
                    "tuple (logits, ...) when the model returns more")
                raise AssertionError(f"{what}: your function raised {type(exc).__name__}: {exc} ({why})") from None
            if got is ...:
                raise _NotAttempted
            if not isinstance(got, dict) or not set(expected) <= set(got) or any(np.ndim(got[k]) for k in expected):
                raise AssertionError(f"return a dict of one number for each of {sorted(expected)}, got {got!r}")
            for key, value in expected.items():
                mine = float(got[key])
                if not math.isclose(mine, value, rel_tol=1e-9, abs_tol=1e-12):  # nan is never close
                    why = (f" ({_EMPTY})" if math.isnan(mine) else " (the F1 of label 0: the positive class is "
                           "label 1)" if key == "f1" and math.isclose(mine, _f1(labels, predicted, 0)) else "")
                    raise AssertionError(f"{what}: {key} is {mine:.6f}, expected {value:.6f}{why}")
    with _exercise("TrainingArguments for the stated goal", "one goal, one field: which field of "
                   "TrainingArguments says each line of the goal (section 5's cell sets most of them)? Which "
                   "fields only work together: when to evaluate and when to save, the epoch kept, by which metric "
                   "and in which direction? How does transformers 5 take a warm-up given as a share of the steps "
                   "(section 4's table)? And what does a field you leave out default to?"):
        refused = [f"fmteach.finetune{m}.{f}" for m in ("", ".trainer") for f in ("make_trainer", "training_arguments")]
        with tempfile.TemporaryDirectory() as out_dir, _refused(training_arguments_fn, *refused):
            args = _call(training_arguments_fn, out_dir)  # transformers' TypeError or ValueError says what it refuses
        if args is ...:
            raise _NotAttempted
        if not isinstance(args, TrainingArguments) or Path(args.output_dir) != Path(out_dir):
            raise AssertionError(f"return transformers.TrainingArguments for the output_dir given, got {args!r:.120}")
        _check_fields(args, _GOAL)


_add_prediction("07.p1", "Raise the decision threshold of a binary classifier from 0.5 to 0.55 on the same examples. Then",
    {"a": "precision and recall usually both rise", "b": "recall falls or stays; precision usually rises",
     "c": "precision falls or stays; recall usually rises"}, "b",
    "a higher threshold calls fewer examples positive. Every example it still calls positive was called positive "
    "before, so recall (found / all positives) cannot grow; the ones it drops are the least sure, more often "
    "wrong, so precision usually rises. Only precision can move either way: on few examples it may dip.")
_add_prediction("07.p2", "Fine-tuned on the first 100 thou/you lines instead of all 1,785, for the same steps, "
                "pretraining's gain (pretrained minus random test accuracy), compared with all the lines, will be",
                {"a": "about the same", "b": "smaller", "c": "larger"}, "c", "the pretrained model brings what it "
                "learned from the plays' text; its random twin must learn language and task from the same 100 lines.")
_add_solution("07.1", '''def binary_metrics(tp, fp, fn, tn):
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}
''')
_add_solution("07.2", '''def padded_tokens(lengths, batch_size, max_length):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return len(lengths) * max_length, sum(len(b) * max(b) for b in batches)
''')
_add_solution("07.4", '''def finetune_at(learning_rate):
    _, fresh = load_for_classification(recipe.model, data.label_names, seed=recipe.seed)  # pretrained, new head
    run = make_trainer(dataclasses.replace(recipe, learning_rate=learning_rate), tokenizer, fresh, data,
                       run_dir / f"lr-{learning_rate:g}")
    run.train()
    return run
''')
_add_solution("07.5", '''def padding_tokens(lengths, batch_size):
    def padding(order):
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        return sum(len(b) * max(b) - sum(b) for b in batches)

    return padding(lengths), padding(sorted(lengths))      # sorted() leaves the caller's list alone
''')
_add_solution("07.6", """def my_compute_metrics(eval_pred):
    logits = eval_pred.predictions
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits)  # (logits, hidden states, ...)
    predicted, labels = logits.argmax(axis=-1), np.asarray(eval_pred.label_ids)  # the class axis: one per row
    tp, fp = np.sum((predicted == 1) & (labels == 1)), np.sum((predicted == 1) & (labels != 1))
    fn = np.sum((predicted != 1) & (labels == 1))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0  # = 2PR / (P + R), and 0 without a true positive
    recalls = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]  # the classes with examples
    return {"accuracy": float(np.mean(predicted == labels)), "f1": float(f1), "balanced_accuracy": float(np.mean(recalls))}


def my_training_arguments(output_dir):
    return TrainingArguments(
        output_dir=output_dir, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="f1", greater_is_better=True, num_train_epochs=3,
        per_device_train_batch_size=16, per_device_eval_batch_size=64, learning_rate=1e-4,
        lr_scheduler_type="linear", warmup_steps=0.1, weight_decay=0.01, seed=0, report_to="none")
""")
