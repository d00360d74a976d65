"""fmteach.exercises as a package: one module per lesson under ~300 lines, every checker re-exported,
no heavy lesson code imported by lesson 01's ``from fmteach import exercises``, the 08/09 shim, and
the one ``_forbidden`` that restores whatever it patched."""

import subprocess
import sys
from pathlib import Path

import pytest

from fmteach import exercises
from fmteach.exercises import _checking

PACKAGE = Path(exercises.__file__).parent


def test_one_small_module_per_lesson():
    names = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert names == ["__init__", "_checking", *(f"lesson{n:02d}" for n in range(1, 13))]
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 300, path.name


def test_every_checker_is_reexported():
    import importlib

    for n in range(1, 13):
        module = importlib.import_module(f"fmteach.exercises.lesson{n:02d}")
        for name in module.__all__:
            assert getattr(exercises, name) is getattr(module, name) and name in exercises.__all__
    assert {"solution", "check_prediction", "check_measured_prediction"} <= set(exercises.__all__)


def test_importing_the_exercises_pulls_in_no_lesson_code():
    code = ("import sys; import fmteach.exercises; "
            "print(' '.join(m for m in sys.modules if m.startswith(('fmteach', 'transformers', 'sklearn', 'matplotlib'))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())
    assert loaded <= {"fmteach", "fmteach._checks", "fmteach.attention", "fmteach.masks", "fmteach.notebook",
                      "fmteach.profile", "fmteach.seeding", "fmteach.exercises", "fmteach.exercises._checking",
                      *(f"fmteach.exercises.lesson{n:02d}" for n in range(1, 13))}, loaded


def test_lessons_08_09_questions(capsys):
    exercises.check_prediction("08.p1", ...)
    assert capsys.readouterr().out.startswith("⏳ prediction 08.p1: not answered yet. BBC News")
    exercises.check_prediction("09.p1", "C")
    assert "✅ prediction 09.p1: c)" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="prediction 08.p1: not 'b'"):
        exercises.check_prediction("08.p1", "b")
    with pytest.raises(KeyError, match="valid ids: 01.p1"):
        exercises.check_prediction("08.p9", ...)


class _Owner:
    @staticmethod
    def helper():
        return "original"


class _Child(_Owner):
    pass


def test_forbidden_restores_static_and_inherited_attributes():
    with pytest.raises(AssertionError, match="your function calls the helper, which this exercise asks you to do without"):
        with _checking._forbidden((_Owner, "helper", "the helper"), (_Child, "helper", "the child's helper")):
            assert _Child.helper is not _Owner.helper
            _Owner.helper()
    assert _Owner.helper() == "original" and isinstance(vars(_Owner)["helper"], staticmethod)
    assert "helper" not in vars(_Child)
    with pytest.raises(ValueError, match="cannot import any module"):
        with _checking._forbidden("no_such_module.function"):
            pass


def test_registries_refuse_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        _checking._add_solution("01.1", "")
    with pytest.raises(ValueError, match="registered twice"):
        _checking._add_prediction("01.p1", "?", {"a": "x"}, "a", "")
