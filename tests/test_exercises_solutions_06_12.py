"""Reference solutions of lessons 06-12, given on request (``exercises.solution("10.1")``) rather than in
visible cells: every registered solution, run exactly as a learner would paste it, passes its checker;
a solution cell still in a notebook is the registered one; a notebook without solution cells names
every registered solution of its lesson in its markdown."""

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fmteach import exercises
from fmteach.exercises import _checking
from fmteach.leakage import normalize_text

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# id -> (the name the solution defines, its checker); None: the solution calls the checker itself
CHECKERS = {
    "06.1": (None, None),
    "06.2": ("attention_at_offset", exercises.check_attention_at_offset),
    "07.1": ("binary_metrics", exercises.check_binary_metrics),
    "07.2": ("padded_tokens", exercises.check_padded_tokens),
    "07.5": ("padding_tokens", exercises.check_sorted_padding),
    "08.1": ("stratified_guess_accuracy", exercises.check_stratified_guess),
    "08.2": ("prototype_predict", exercises.check_prototype_predict),
    "08.3": ("calibrated_cloze_scores", exercises.check_cloze_calibration),
    "09.1": ("count_normalized_duplicates", exercises.check_count_normalized_duplicates),
    "09.2": ("association", exercises.check_association),
    "09.3": ("early_stopping", exercises.check_early_stopping),
    "10.1": ("align_labels", exercises.check_align_labels),
    "10.2": ("best_span", exercises.check_best_span),
    "11.1": ("cross_attention", exercises.check_cross_attention),
    "11.2": ("patchify", exercises.check_patchify),
    "12.1": ("MyLoRALinear", exercises.check_lora_linear),
}
# 07.4 fine-tunes MiniLM twice (minutes): tests/test_exercises_07.py checks its source instead; 07.6 has two
# functions and a verdict for each: tests/test_exercises_07.py runs it
NOT_RUN_HERE = {"07.4", "07.6"}


def lesson_ids(lesson: str) -> set[str]:
    return {exercise_id for exercise_id in _checking._SOLUTIONS if exercise_id.startswith(f"{lesson}.")}


def run_solution(exercise_id: str):
    """Exec the registered source in what the lesson has defined by then (small stand-ins for its objects)."""
    namespace = {"math": math, "torch": torch, "nn": nn, "F": F, "exercises": exercises,
                 "normalize_text": normalize_text,
                 "cfg": SimpleNamespace(hidden_size=384, intermediate_size=1536)}  # MiniLM's sizes (lesson 06)
    exec(exercises.solution(exercise_id), namespace)  # noqa: S102  our own source text
    return namespace


def test_every_registered_solution_of_lessons_06_12_is_run_here():
    registered = set().union(*(lesson_ids(f"{n:02d}") for n in range(6, 13)))
    assert registered == set(CHECKERS) | NOT_RUN_HERE


@pytest.mark.parametrize("exercise_id", sorted(CHECKERS))
def test_reference_solution_passes_its_checker(exercise_id, capsys):
    name, checker = CHECKERS[exercise_id]
    namespace = run_solution(exercise_id)
    if checker is not None:
        checker(namespace[name])
    out = capsys.readouterr().out
    assert out.count("✅") == 1 and "⏳" not in out, out


def solution_cells(cells):
    return [cell for cell in cells if "solution" in cell.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("lesson", [f"{n:02d}" for n in range(6, 13)])
def test_solution_cells_are_registered_or_named_in_the_lesson(lesson):
    path, = NOTEBOOKS.glob(f"{lesson}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    left = solution_cells(cells)
    for cell in left:  # until a lesson's cells are removed, each must be what the package gives on request
        source = "".join(cell["source"])
        asked = re.search(r'check_prediction\("(\d\d\.p\d)"', source)
        if asked:
            assert asked.group(1) in _checking._PREDICTIONS
        else:
            assert any(source.startswith(_checking._SOLUTIONS[i].rstrip("\n")) for i in lesson_ids(lesson)), source
    markdown = "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    named = set(re.findall(r'solution\("(\d\d\.\d+)"\)', markdown))
    for line in re.findall(r"Reference solutions, when you want them:(.*?)(?:\n\n|$)", markdown, flags=re.S):
        named |= set(re.findall(r'"(\d\d\.\d+)"', line))
    assert named <= lesson_ids(lesson), f"{path.name} names solutions that are not registered"
    if not left:
        assert named == lesson_ids(lesson), f"{path.name} should name every solution of its lesson"
        assert not re.search(r"hidden (solution|cell)", markdown), f"{path.name} still speaks of a hidden solution"
