"""The exercise checkers of lesson 07 (fine-tuning): right answers pass, wrong ones fail, none is a reminder."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import sklearn.metrics
from transformers import TrainingArguments

import fmteach.finetune
from fmteach import exercises
from tests.tiny import assert_hint_guides


def binary_metrics(tp, fp, fn, tn):
    p, r = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": p, "recall": r, "f1": 2 * p * r / (p + r)}


def padded_tokens(lengths, batch_size, max_length):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return len(lengths) * max_length, sum(len(b) * max(b) for b in batches)


def test_binary_metrics(capsys):
    exercises.check_binary_metrics(binary_metrics)
    assert "correct" in capsys.readouterr().out
    swapped = lambda tp, fp, fn, tn: binary_metrics(tp, fn, fp, tn)  # noqa: E731  precision and recall swapped
    with pytest.raises(AssertionError, match="precision"):
        exercises.check_binary_metrics(swapped)
    with pytest.raises(AssertionError, match="keys"):
        exercises.check_binary_metrics(lambda *a: {"accuracy": 1.0})


def test_padded_tokens(capsys):
    exercises.check_padded_tokens(padded_tokens)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected"):
        exercises.check_padded_tokens(lambda lengths, bs, ml: (len(lengths) * ml, sum(lengths)))  # no padding at all


def test_not_attempted_is_a_reminder(capsys):
    def todo(*args):
        raise NotImplementedError

    exercises.check_binary_metrics(todo)
    exercises.check_padded_tokens(lambda *a: ...)
    assert capsys.readouterr().out.count("not attempted") == 2


# --- 07.4: the learning rate 3e-5 against the lesson's run, with stand-ins for Trainer ------------------------

def _args(**changes):
    fields = dict(learning_rate=1e-4, num_train_epochs=1.0, max_steps=-1, per_device_train_batch_size=16,
                  gradient_accumulation_steps=1, warmup_steps=0.1, lr_scheduler_type="linear", weight_decay=0.01,
                  max_grad_norm=1.0, seed=0, data_seed=0)
    return SimpleNamespace(**{**fields, **changes})


class FakeTrainer:
    """What the checker reads of a Trainer: args, state.global_step, model, train_dataset, evaluate()."""

    def __init__(self, accuracy, model=None, steps=40, n_train=640, **changes):
        self.args, self.state = _args(**changes), SimpleNamespace(global_step=steps)
        self.model, self.train_dataset, self.accuracy = model or object(), [0] * n_train, accuracy
        self.evaluated = []

    def evaluate(self, dataset, metric_key_prefix="eval"):
        self.evaluated.append(dataset)
        return {f"{metric_key_prefix}_accuracy": self.accuracy}


def test_learning_rate_experiment(capsys):
    baseline = FakeTrainer(0.75)
    run = lambda accuracy, **changes: (lambda lr: FakeTrainer(accuracy, learning_rate=lr, **changes))  # noqa: E731
    exercises.check_learning_rate_experiment(run(0.62), "lower", baseline, "test reviews")
    out = capsys.readouterr().out
    assert "measured test accuracy 0.620 at 3e-5, 0.750 at 1e-4: lower. Why:" in out and "✅" in out
    assert baseline.evaluated == ["test reviews"]                      # the baseline is measured on the same test set
    exercises.check_learning_rate_experiment(run(0.76), "about the same", baseline, "test")   # within 0.02
    exercises.check_learning_rate_experiment(run(0.80), "higher", baseline, "test")
    assert capsys.readouterr().out.count("✅") == 2
    with pytest.raises(AssertionError, match="you predicted 'higher'; measured .*: lower.\nWhy: .*\nHint: what must match"):
        exercises.check_learning_rate_experiment(run(0.62), "higher", baseline, "test")
    with pytest.raises(AssertionError, match="prediction must be one of 'higher', 'lower', 'about the same'"):
        exercises.check_learning_rate_experiment(run(0.62), "worse", baseline, "test")


def test_learning_rate_experiment_refuses_a_run_that_changes_more_than_the_rate():
    baseline = FakeTrainer(0.75)
    with pytest.raises(AssertionError, match="the lesson's model, already fine-tuned"):
        exercises.check_learning_rate_experiment(lambda lr: FakeTrainer(0.7, model=baseline.model, learning_rate=lr),
                                                 "lower", baseline, "test")
    with pytest.raises(AssertionError, match="learning rate is 0.0001, not 3e-5"):
        exercises.check_learning_rate_experiment(lambda lr: FakeTrainer(0.7), "lower", baseline, "test")
    with pytest.raises(AssertionError, match=r"changes num_train_epochs \(1.0 -> 3.0\) as well as the learning rate"):
        exercises.check_learning_rate_experiment(lambda lr: FakeTrainer(0.7, learning_rate=lr, num_train_epochs=3.0),
                                                 "lower", baseline, "test")
    with pytest.raises(AssertionError, match="took 0 optimizer steps, the baseline 40: call trainer.train"):
        exercises.check_learning_rate_experiment(lambda lr: FakeTrainer(0.7, learning_rate=lr, steps=0),
                                                 "lower", baseline, "test")
    with pytest.raises(AssertionError, match="trains on 64 examples, the baseline on 640"):
        exercises.check_learning_rate_experiment(lambda lr: FakeTrainer(0.7, learning_rate=lr, n_train=64),
                                                 "lower", baseline, "test")
    with pytest.raises(AssertionError, match="return the Trainer you trained, got float"):
        exercises.check_learning_rate_experiment(lambda lr: 0.7, "lower", baseline, "test")


def test_learning_rate_experiment_not_attempted(capsys):
    def never(lr):
        raise AssertionError("a run before the prediction")  # the expensive run waits for the prediction

    exercises.check_learning_rate_experiment(never, ..., FakeTrainer(0.75), "test")
    exercises.check_learning_rate_experiment(lambda lr: ..., "lower", FakeTrainer(0.75), "test")
    assert capsys.readouterr().out.count("⏳ learning rate 3e-5 against the lesson's run: not attempted yet") == 2


def test_learning_rate_solution_changes_only_the_rate():
    source = exercises.solution("07.4")
    assert "dataclasses.replace(recipe, learning_rate=learning_rate)" in source and "load_for_classification" in source
    assert "return run" in source


# --- 07.5: the padding that sorting by length saves ----------------------------------------------------------

def padding_tokens(lengths, batch_size):
    def padding(order):
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        return sum(len(b) * max(b) - sum(b) for b in batches)

    return padding(lengths), padding(sorted(lengths))


def test_sorted_padding(capsys):
    exercises.check_sorted_padding(padding_tokens)
    namespace = {}
    exec(exercises.solution("07.5"), namespace)  # noqa: S102  our own source text
    exercises.check_sorted_padding(namespace["padding_tokens"])
    assert capsys.readouterr().out.count("✅") == 2
    with pytest.raises(AssertionError, match="changed the list it was given .*\n.*Hint: how many tokens"):
        exercises.check_sorted_padding(lambda lengths, bs: (padding_tokens(lengths, bs)[0],
                                                            padding_tokens(lengths.sort() or lengths, bs)[1]))
    with pytest.raises(AssertionError, match=r"lengths=\[12, 4, 4, 4, 30\], batch_size=3: got \(42, 44\)"):
        exercises.check_sorted_padding(lambda lengths, bs: (padding_tokens(lengths, bs)[0],  # longest first
                                                            padding_tokens(sorted(lengths, reverse=True), bs)[0]))
    with pytest.raises(AssertionError, match="expected"):  # tokens with dynamic padding, not the padding in them
        exercises.check_sorted_padding(lambda lengths, bs: tuple(
            sum(len(b) * max(b) for b in (o[i:i + bs] for i in range(0, len(o), bs)))
            for o in (lengths, sorted(lengths))))
    with pytest.raises(AssertionError, match="return a pair"):
        exercises.check_sorted_padding(lambda lengths, bs: 0)
    exercises.check_sorted_padding(lambda *a: (..., ...))
    assert "not attempted yet" in capsys.readouterr().out


# --- 07.6: compute_metrics and TrainingArguments for a stated goal -------------------------------------------


def solution_07_6():
    namespace = {"np": np, "TrainingArguments": TrainingArguments}  # what lesson 07 has imported by then
    exec(exercises.solution("07.6"), namespace)  # noqa: S102  our own source text
    return namespace["my_compute_metrics"], namespace["my_training_arguments"]


METRICS, ARGUMENTS = solution_07_6()


def metrics_with(axis=-1, positive=1, unwrap=True, empty="zero", over="present"):
    """The reference compute_metrics with one typical mistake: the argmax axis, the positive class, the tuple
    not unwrapped, 0/0 not guarded (``empty``: "warn", "nan", "python"), balanced accuracy over every class."""
    def my_compute_metrics(eval_pred):
        logits = eval_pred.predictions
        logits = np.asarray(logits[0] if unwrap and isinstance(logits, tuple) else logits)
        predicted, labels = logits.argmax(axis=axis), np.asarray(eval_pred.label_ids)
        tp = np.sum((predicted == positive) & (labels == positive))
        called, actual = np.sum(predicted == positive), np.sum(labels == positive)
        if empty == "zero":
            f1 = 2 * tp / (called + actual) if tp else 0.0
        elif empty == "python":
            precision, recall = int(tp) / int(called), int(tp) / int(actual)
            f1 = 2 * precision * recall / (precision + recall)
        else:
            with np.errstate(all="ignore" if empty == "nan" else "warn"):
                precision, recall = tp / called, tp / actual
                f1 = 2 * precision * recall / (precision + recall)
        classes = np.unique(labels) if over == "present" else range(logits.shape[-1])
        recalls = [np.mean(predicted[labels == c] == c) if over != "zero" or np.any(labels == c) else 0.0
                   for c in classes]
        return {"accuracy": float(np.mean(predicted == labels)), "f1": float(f1),
                "balanced_accuracy": float(np.mean(recalls))}
    return my_compute_metrics


def arguments_with(**changes):
    """The reference arguments with fields changed (``None``: left to the default)."""
    fields = dict(eval_strategy="epoch", save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
                  metric_for_best_model="f1", greater_is_better=True, num_train_epochs=3,
                  per_device_train_batch_size=16, per_device_eval_batch_size=64, learning_rate=1e-4,
                  lr_scheduler_type="linear", warmup_steps=0.1, weight_decay=0.01, seed=0, report_to="none")
    fields.update(changes)
    return lambda output_dir: TrainingArguments(output_dir=output_dir, **{k: v for k, v in fields.items() if v is not None})


def test_trainer_setup_reference(capsys):
    exercises.check_trainer_setup(METRICS, ARGUMENTS)
    exercises.check_trainer_setup(metrics_with(), arguments_with())
    exercises.check_trainer_setup(metrics_with(), arguments_with(metric_for_best_model="eval_f1"))  # either name
    out = capsys.readouterr().out
    assert out.count("✅ compute_metrics in numpy: correct") == 3
    assert out.count("✅ TrainingArguments for the stated goal: correct") == 3


def test_trainer_setup_reference_agrees_with_scikit_learn():
    rng = np.random.default_rng(1)
    for n, c in ((7, 2), (50, 2), (50, 3), (9, 4)):
        logits, labels = rng.normal(size=(n, c)), rng.integers(0, c, n)
        for given in (logits, np.eye(c)[[0] * n], np.eye(c)[rng.integers(0, c, n)]):  # also label 1 never predicted
            predicted = given.argmax(-1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scikit-learn warns of a predicted class with no example
                balanced = sklearn.metrics.balanced_accuracy_score(labels, predicted)
            f1 = sklearn.metrics.f1_score(labels, predicted, labels=[1], average=None, zero_division=0)[0]
            ours = METRICS(SimpleNamespace(predictions=(given, None), label_ids=labels))
            np.testing.assert_allclose([ours["accuracy"], ours["f1"], ours["balanced_accuracy"]],
                                       [sklearn.metrics.accuracy_score(labels, predicted), f1, balanced], atol=1e-12)


def test_trainer_setup_not_attempted(capsys):
    def my_compute_metrics(eval_pred):
        raise NotImplementedError  # your code here

    def my_training_arguments(output_dir):
        raise NotImplementedError  # your code here

    exercises.check_trainer_setup(my_compute_metrics, my_training_arguments)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("⏳ compute_metrics in numpy: not attempted yet. Hint: which axis")
    assert lines[1].startswith("⏳ TrainingArguments for the stated goal: not attempted yet. Hint: one goal, one field")
    exercises.check_trainer_setup(METRICS, my_training_arguments)  # one done, one not: a verdict for each
    assert capsys.readouterr().out.splitlines()[0] == "✅ compute_metrics in numpy: correct"


@pytest.mark.parametrize("mistake, message", [
    (dict(axis=0), r"7 examples, 2 classes: your function raised ValueError: .*\(predictions: logits of shape \(7, 2\), "
                   r"a row per example and a column per class"),
    (dict(positive=0), r"7 examples, 2 classes: f1 is 0.666667, expected 0.750000 \(the F1 of label 0: the "
                       r"positive class is label 1\)\nHint: which axis"),
    (dict(unwrap=False), r"predictions = \(logits, hidden states\): your function raised ValueError: .*or a tuple "
                         r"\(logits, \.\.\.\) when the model returns more"),
    (dict(empty="warn"), r"label 1 never predicted: your function raised RuntimeWarning: invalid value .*\(no ratio "
                         r"may divide by zero: when label 1 is never predicted its precision is 0/0 and its F1 is 0"),
    (dict(empty="nan"), r"label 1 never predicted: f1 is nan, expected 0.000000 \(no ratio may divide by zero"),
    (dict(empty="python"), r"label 1 never predicted: your function raised ZeroDivisionError"),
    (dict(over="zero"), r"label 2 predicted, in no label: balanced_accuracy is 0.361111, expected 0.541667"),
    (dict(over="all"), r"label 2 predicted, in no label: your function raised RuntimeWarning: Mean of empty slice"),
])
def test_compute_metrics_mistakes(mistake, message):
    with pytest.raises(AssertionError, match=message):
        exercises.check_trainer_setup(metrics_with(**mistake), ARGUMENTS)


def test_compute_metrics_wrong_shapes_of_answer():
    plain = lambda eval_pred: {**METRICS(eval_pred), "balanced_accuracy": METRICS(eval_pred)["accuracy"]}  # noqa: E731
    with pytest.raises(AssertionError, match=r"7 examples, 2 classes: balanced_accuracy is 0.714286, expected 0.708333"):
        exercises.check_trainer_setup(plain, ARGUMENTS)
    with pytest.raises(AssertionError, match=r"return a dict of one number for each of \['accuracy', "
                                             r"'balanced_accuracy', 'f1'\], got \{'accuracy'"):
        exercises.check_trainer_setup(lambda eval_pred: {"accuracy": METRICS(eval_pred)["accuracy"]}, ARGUMENTS)
    with pytest.raises(AssertionError, match="one number for each"):
        exercises.check_trainer_setup(lambda p: {k: [v] for k, v in METRICS(p).items()}, ARGUMENTS)


NOTEBOOK_LIKE = '''
from sklearn.metrics import f1_score
from fmteach.finetune import FinetuneRecipe, classification_metrics, training_arguments


def with_classification_metrics(eval_pred):   # imported at the top of the notebook, before the exercise
    return classification_metrics(eval_pred.label_ids, eval_pred.predictions.argmax(-1), num_labels=2)


def with_f1_score(eval_pred):
    return {"f1": f1_score(eval_pred.label_ids, eval_pred.predictions.argmax(-1))}


def with_sklearn_inside(eval_pred):
    from sklearn.metrics import accuracy_score
    return {"accuracy": accuracy_score(eval_pred.label_ids, eval_pred.predictions.argmax(-1))}


def with_package_compute_metrics(eval_pred):
    import fmteach.finetune
    return fmteach.finetune.compute_metrics(eval_pred)


def with_training_arguments(output_dir):
    return training_arguments(FinetuneRecipe.from_profile("smoke"), output_dir)


def with_make_trainer(output_dir):
    import fmteach.finetune
    return fmteach.finetune.make_trainer(FinetuneRecipe(), None, None, None, output_dir).args
'''


@pytest.mark.parametrize("name, refused", [
    ("with_classification_metrics", "fmteach.finetune.classification_metrics"),
    ("with_f1_score", "sklearn.metrics.f1_score"),
    ("with_sklearn_inside", "sklearn.metrics.accuracy_score"),
    ("with_package_compute_metrics", "fmteach.finetune.compute_metrics"),
    ("with_training_arguments", "fmteach.finetune.training_arguments"),
    ("with_make_trainer", "fmteach.finetune.make_trainer"),
])
def test_trainer_setup_refuses_ready_made_calls(name, refused):
    namespace = {}
    exec(NOTEBOOK_LIKE, namespace)  # noqa: S102  our own source text
    before = dict(namespace)
    originals = (sklearn.metrics.f1_score, fmteach.finetune.classification_metrics, fmteach.finetune.make_trainer)
    fn = namespace[name]
    pair = (METRICS, fn) if name in ("with_training_arguments", "with_make_trainer") else (fn, ARGUMENTS)
    with pytest.raises(AssertionError, match=f"your function calls {refused}, which this exercise asks you to do without"):
        exercises.check_trainer_setup(*pair)
    assert namespace == before  # the notebook's names are given back
    assert (sklearn.metrics.f1_score, fmteach.finetune.classification_metrics, fmteach.finetune.make_trainer) == originals


@pytest.mark.parametrize("changes, message", [
    (dict(eval_strategy="steps", save_strategy="steps"),
     "eval_strategy is 'steps', expected 'epoch': evaluate on the validation set once per epoch"),
    (dict(save_strategy="no", load_best_model_at_end=False), "save_strategy is 'no', expected 'epoch'"),
    (dict(metric_for_best_model="accuracy"), "metric_for_best_model is 'accuracy', expected 'f1' or 'eval_f1': "
                                             "the best epoch has the highest validation F1"),
    (dict(metric_for_best_model=None, greater_is_better=None),
     r"metric_for_best_model is 'loss', expected 'f1' or 'eval_f1': .*\(Trainer's default: 'loss'\)"),
    (dict(greater_is_better=False), "greater_is_better is False, expected True: a higher F1 is better"),
    (dict(load_best_model_at_end=None), "load_best_model_at_end is False, expected True"),
    (dict(save_total_limit=None), "save_total_limit is None, expected 1: the fewest checkpoints"),
    (dict(num_train_epochs=1), "num_train_epochs is 1, expected 3"),
    (dict(max_steps=100), "max_steps is 100, expected -1: a max_steps above 0 overrides num_train_epochs"),
    (dict(per_device_train_batch_size=32), "per_device_train_batch_size is 32, expected 16"),
    (dict(per_device_train_batch_size=8, gradient_accumulation_steps=2), "per_device_train_batch_size is 8"),
    (dict(per_device_eval_batch_size=None), "per_device_eval_batch_size is 8, expected 64"),
    (dict(learning_rate=5e-5), "learning_rate is 5e-05, expected 0.0001"),
    (dict(lr_scheduler_type="cosine"), "lr_scheduler_type is 'cosine', expected 'linear'"),
    (dict(warmup_steps=50), r"warmup_steps is 50, expected 0.1: warm-up over 10 % of all steps: a float below 1 is "
                            r"a fraction in transformers 5 \(no warmup_ratio\)"),
    (dict(warmup_steps=None), "warmup_steps is 0, expected 0.1"),
    (dict(weight_decay=None), "weight_decay is 0.0, expected 0.01"),
    (dict(seed=None), "seed is 42, expected 0"),
    (dict(report_to="wandb"), r"report_to is \['wandb'\], expected \[\]: report_to='none' \(read back as \[\]\)"),
])
def test_training_arguments_mistakes(changes, message):
    with pytest.raises(AssertionError, match=f"TrainingArguments for the stated goal: {message}"):
        exercises.check_trainer_setup(METRICS, arguments_with(**changes))


def test_training_arguments_that_transformers_5_refuses():
    with pytest.raises(TypeError, match="unexpected keyword argument 'warmup_ratio'"):   # gone in transformers 5
        exercises.check_trainer_setup(METRICS, arguments_with(warmup_steps=None, warmup_ratio=0.1))
    with pytest.raises(ValueError, match="requires the save and eval strategy to match"):
        exercises.check_trainer_setup(METRICS, arguments_with(eval_strategy="steps"))
    with pytest.raises(AssertionError, match="return transformers.TrainingArguments for the output_dir given"):
        exercises.check_trainer_setup(METRICS, lambda output_dir: arguments_with()("elsewhere"))
    with pytest.raises(AssertionError, match="return transformers.TrainingArguments .*got \\{'eval_strategy'"):
        exercises.check_trainer_setup(METRICS, lambda output_dir: {"eval_strategy": "epoch"})


# --- every hint of lesson 07 asks a question and states neither the method nor, for 07.4, the answer ----------

def _one_function(check):
    """A checker of two functions as one of one: the other gets the reference, so only one hint is printed."""
    return {"compute_metrics": lambda fn: check(fn, ARGUMENTS), "arguments": lambda fn: check(METRICS, fn)}


HINTS = {  # exercise -> (a checker of one function, what its hint must not say)
    "07.1": (exercises.check_binary_metrics, ("tp / (tp + fp)", "tp + fn", "2 * p", "/ (p + r)")),
    "07.2": (exercises.check_padded_tokens, ("len(lengths) * max_length", "max(b)", "* max_length")),
    "07.4": (lambda fn: exercises.check_learning_rate_experiment(fn, ..., FakeTrainer(0.75), "test"),
             ("lower", "higher", "about the same", "too little", "too few", "not enough", "smaller rate",
              "further", "farther", "dataclasses.replace", "load_for_classification")),
    "07.5": (exercises.check_sorted_padding, ("sorted(", ".sort(", "minus", "- sum", "max(b)", "len(b)")),
    "07.6 compute_metrics": (_one_function(exercises.check_trainer_setup)["compute_metrics"],
                             ("argmax", "axis=-1", "[0]", "np.unique", "2 * tp", "if tp", "is 0", "zero")),
    "07.6 arguments": (_one_function(exercises.check_trainer_setup)["arguments"],
                       ("eval_strategy", "save_strategy", "metric_for_best_model", "greater_is_better",
                        "save_total_limit", "warmup_steps", "0.1", "\"epoch\"", "'none'", "load_best_model_at_end")),
}


@pytest.mark.parametrize("exercise", sorted(HINTS))
def test_hints_guide_without_giving_the_method_or_the_answer(exercise, capsys):
    checker, giveaways = HINTS[exercise]
    assert_hint_guides(checker, giveaways, capsys)


def test_the_few_labels_prediction(capsys):
    exercises.check_prediction("07.p2", ...)
    assert capsys.readouterr().out.startswith("⏳ prediction 07.p2: not answered yet. Fine-tuned on the first 100")
    exercises.check_prediction("07.p2", "c")  # measured in lesson 07: +0.163 at 100 lines, +0.043 with all
    assert "✅ prediction 07.p2: c) larger" in capsys.readouterr().out
    for wrong in ("a", "b"):
        with pytest.raises(AssertionError, match=f"prediction 07.p2: not '{wrong}'"):
            exercises.check_prediction("07.p2", wrong)
