"""Exercise checkers, "predict, then run" questions and reference solutions of lessons 08 and 09:
kept until notebooks 08/09 import fmteach.exercises.

Everything here is :mod:`fmteach.exercises` (``lesson08``, ``lesson09``), re-exported. Only
``check_prediction``'s reminder keeps the one-line form those notebooks' stored outputs show.
"""

from __future__ import annotations

from . import exercises
from .exercises import (check_association, check_chance_baselines, check_count_normalized_duplicates,
                        check_prototype_predict, solution)
from .exercises._checking import _PREDICTIONS, _known, _options

__all__ = ["check_prediction", "solution", "check_chance_baselines", "check_prototype_predict",
           "check_count_normalized_duplicates", "check_association"]


def check_prediction(question_id: str, answer) -> None:
    """:func:`fmteach.exercises.check_prediction`, with the reminder on one line, as notebooks 08/09 print it."""
    if answer is ...:
        _known(_PREDICTIONS, "prediction question", question_id)
        question, choices, _, _ = _PREDICTIONS[question_id]
        print(f"⏳ prediction {question_id}: not answered yet. {question} Choose {_options(choices)}")
        return
    exercises.check_prediction(question_id, answer)
