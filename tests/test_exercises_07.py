"""The exercise checkers of lesson 07 (fine-tuning): right answers pass, wrong ones fail, none is a reminder."""

from types import SimpleNamespace

import pytest

from fmteach import exercises


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
    with pytest.raises(AssertionError, match="you predicted 'higher'; measured .*: lower.\nWhy: .*\nHint: change one"):
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
    with pytest.raises(AssertionError, match="changed the list it was given .*\n.*Hint: padding in one batch"):
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
