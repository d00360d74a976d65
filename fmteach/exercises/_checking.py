"""What every lesson's checkers share: the verdict printed, calls that an exercise forbids, the
"predict, then run" questions and the reference solutions.

A checker runs the learner's function inside ``with _exercise(title, hint):``. It prints
``✅ title: correct``, or raises an ``AssertionError`` that says what is wrong (never the answer)
followed by the hint; an exercise not attempted yet (its function still raises
``NotImplementedError``, or its answer is ``...``) only prints a reminder and the hint, so a
notebook always runs from top to bottom.

Each lesson module registers its questions with :func:`_add_prediction` and its solutions with
:func:`_add_solution`; :func:`solution` and :func:`check_prediction` read the one registry.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable

import torch

__all__ = ["solution", "check_prediction", "check_measured_prediction"]


class _NotAttempted(Exception):
    """Raised by a checker when the learner's answer is still ``...``."""


@contextlib.contextmanager
def _exercise(title: str, hint: str):
    try:
        yield
    except (NotImplementedError, _NotAttempted):
        print(f"⏳ {title}: not attempted yet. Hint: {hint}")
    except AssertionError as exc:
        raise AssertionError(f"{title}: {exc}\nHint: {hint}") from None
    else:
        print(f"✅ {title}: correct")


def _call(fn: Callable, *args):
    if not callable(fn):
        raise AssertionError(f"expected a function, got {type(fn).__name__}")
    return fn(*args)


def _close(actual, expected, what: str, atol: float = 1e-6) -> None:
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, got {type(actual).__name__}")
    if actual.shape != expected.shape:
        raise AssertionError(f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(actual.to(expected.dtype), expected, atol=atol, rtol=1e-5, equal_nan=False):
        diff = (actual.to(expected.dtype) - expected).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(f"{what} differs from the reference by up to {diff:.3g}")


def _check_fields(obj, goal: dict[str, tuple[object, str]]) -> None:
    """Each field of ``obj`` (a config such as ``TrainingArguments``) against ``goal``: field -> (expected, why);
    an enum is read as its value, a tuple of expected values accepts any of them, numbers compare with a
    tolerance. The first field that differs is an ``AssertionError`` naming it, what was expected and why."""
    for field, (expected, why) in goal.items():
        got = getattr(getattr(obj, field, None), "value", getattr(obj, field, None))
        if isinstance(expected, (int, float)) and not isinstance(expected, bool):
            same = isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)
        else:
            same = got in expected if isinstance(expected, tuple) else got == expected and type(got) is type(expected)
        if not same:
            shown = " or ".join(map(repr, expected)) if isinstance(expected, tuple) else repr(expected)
            raise AssertionError(f"{field} is {got!r}, expected {shown}: {why}")


# --- Calls an exercise forbids ----------------------------------------------------------------

_SHORT_NAMES = (("torch.nn.functional.", "F."), ("torch.Tensor.", "Tensor."), ("fmteach.attention.", "fmteach."),
                ("fmteach.masks.", "fmteach."))


def _resolve(dotted: str) -> tuple[object, str, str]:
    """``"torch.nn.functional.unfold"`` -> (the owner object, ``"unfold"``, ``"F.unfold"``): the longest
    importable module prefix, then attributes (a class, then its method)."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:-1]:
            owner = getattr(owner, attribute)
        name = dotted
        for long, short in _SHORT_NAMES:
            name = name.replace(long, short, 1) if name.startswith(long) else name
        return owner, parts[-1], name
    raise ValueError(f"cannot import any module of {dotted!r}")


_MISSING = object()


@contextlib.contextmanager
def _forbidden(*targets: str | tuple[object, str, str]):
    """While active, each target raises ``AssertionError`` naming the call, so a learner's function that
    uses what the exercise forbids fails with a clear message. A target is a dotted path
    (``"torch.nn.functional.unfold"``, ``"torch.nn.MultiheadAttention.forward"``) or a tuple
    ``(owner, attribute, shown name)``. Everything is restored on exit, whatever happened inside."""
    saved = []

    def refuse(name: str):
        def call(*args, **kwargs):
            raise AssertionError(f"your function calls {name}, which this exercise asks you to do without")
        return call

    try:
        for target in targets:
            owner, attribute, name = _resolve(target) if isinstance(target, str) else target
            own = vars(owner).get(attribute, _MISSING) if isinstance(owner, type) else getattr(owner, attribute)
            saved.append((owner, attribute, own))     # a class's own entry (staticmethods stay static)
            setattr(owner, attribute, refuse(name))
        yield
    finally:
        for owner, attribute, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, attribute)             # it was inherited: the parent's comes back
            else:
                setattr(owner, attribute, original)


@contextlib.contextmanager
def _refused(fn: Callable, *targets: str | tuple[object, str, str]):
    """:func:`_forbidden`, and every name in ``fn``'s globals bound to a target refused as well: a notebook's
    ``from fmteach.finetune import make_trainer``, made before the exercise, does not get around it."""
    targets = [target if isinstance(target, tuple) else _resolve(target) for target in targets]
    originals = {id(getattr(owner, name)): (owner, name) for owner, name, _ in reversed(targets)}  # first name wins
    namespace = getattr(fn, "__globals__", {})
    saved = {key: value for key, value in namespace.items() if id(value) in originals}
    with _forbidden(*targets):
        try:
            namespace.update({key: getattr(*originals[id(value)]) for key, value in saved.items()})  # the refusals
            yield
        finally:
            namespace.update(saved)


def _fused_attention_calls() -> tuple[str, ...]:
    """The ready-made attention functions that exercises building attention forbid."""
    return ("torch.nn.functional.scaled_dot_product_attention", "fmteach.scaled_dot_product_attention",
            "fmteach.attention.scaled_dot_product_attention")


# --- "Predict, then run" questions and reference solutions -------------------------------------

# id -> (question, {letter: choice}, right letter, why)
_PREDICTIONS: dict[str, tuple[str, dict[str, str], str, str]] = {}
_SOLUTIONS: dict[str, str] = {}


def _add_prediction(question_id: str, question: str, choices: dict[str, str], right: str, why: str) -> None:
    if question_id in _PREDICTIONS or right not in choices:
        raise ValueError(f"prediction {question_id!r}: registered twice, or its answer {right!r} is not a choice")
    _PREDICTIONS[question_id] = (question, choices, right, why)


def _add_solution(exercise_id: str, source: str) -> None:
    if exercise_id in _SOLUTIONS:
        raise ValueError(f"solution {exercise_id!r} registered twice")
    _SOLUTIONS[exercise_id] = source


class _Source(str):
    """A string that a notebook shows as the code it holds (not as a quoted repr)."""

    def __repr__(self) -> str:
        return str(self)


def _known(table: dict, kind: str, exercise_id) -> None:
    if exercise_id not in table:
        raise KeyError(f"no {kind} for exercise_id {exercise_id!r}; valid ids: {', '.join(sorted(table))}")


def _options(choices: dict[str, str]) -> str:
    return "; ".join(f"{letter}) {text}" for letter, text in choices.items())


def solution(exercise_id: str) -> str:
    """The reference solution of an exercise as source code, e.g. ``solution("01.2")``; try first."""
    _known(_SOLUTIONS, "solution", exercise_id)
    return _Source(_SOLUTIONS[exercise_id])


def check_prediction(question_id: str, answer) -> None:
    """A "predict, then run" question: ``answer`` is the letter of your choice (``...`` = not yet)."""
    _known(_PREDICTIONS, "prediction question", question_id)
    question, choices, right, why = _PREDICTIONS[question_id]
    if answer is ...:
        print(f"⏳ prediction {question_id}: not answered yet. {question}\n   Choose one: {_options(choices)}")
        return
    if not isinstance(answer, str) or answer.strip().lower() not in choices:
        raise ValueError(f"answer must be one of {', '.join(repr(c) for c in choices)}, got {answer!r}")
    if answer.strip().lower() != right:
        raise AssertionError(f"prediction {question_id}: not {answer!r}. Run the cells that follow and look at what "
                             f"they measure, then try again")
    print(f"✅ prediction {question_id}: {right}) {choices[right]}. Why: {why}")


def check_measured_prediction(question: str, prediction, measured, *, explanation: str,
                              tolerance: float | None = None) -> None:
    """"Predict, then run" with a measured answer (lessons 10-12): compare the prediction written *before*
    running with what the cell measured -- exactly, or within ``tolerance`` for a measured fraction.
    The explanation shows only once a prediction is made."""
    title = f"prediction: {question}"
    if prediction is ...:
        print(f"⏳ {title}: no prediction yet. Write it down before you look at the output, then run the cell again.")
        return
    if tolerance is not None and not isinstance(prediction, (int, float)):
        raise TypeError(f"{title}: the prediction should be a number, got {prediction!r}")
    close = prediction == measured if tolerance is None else abs(prediction - measured) <= tolerance
    if not close:
        within = "" if tolerance is None else f" (within {tolerance} counts as right)"
        raise AssertionError(f"{title}: you predicted {prediction!r}, the run measured {measured!r}{within}.\n"
                             f"Why: {explanation}")
    print(f"✅ {title}: you predicted {prediction!r} and the run measured {measured!r}. Why: {explanation}")
