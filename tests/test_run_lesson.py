"""benchmarks/run_lesson.py: Run All of a notebook in a profile, its time and first error, and the
``--record`` results file that a lesson reads to quote another profile's figures."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(notebook, path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "run_lesson.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_record_writes_the_named_values_with_how_and_the_profile(tmp_path):
    lesson = _notebook(tmp_path / "99_tiny.ipynb", "import os\nprofile = os.environ['FMTEACH_PROFILE']",
                       "accuracy = 2 / 3\nresults = {'a': 0.123456789, 'b': [1.0, 2]}")
    out = tmp_path / "lesson99.json"
    done = _run("--profile", "smoke", str(lesson), "--record", str(out), "--names", "accuracy,results,profile")
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["values"] == {"accuracy": 0.6667, "results": {"a": 0.1235, "b": [1.0, 2]}, "profile": "smoke"}
    assert record["lesson"] == "99_tiny.ipynb" and record["profile"] == "smoke"
    assert record["how"]["command"].startswith("python benchmarks/run_lesson.py --profile smoke")
    assert {"when_utc", "where", "git_commit"} <= set(record["how"])


def test_a_failing_lesson_reports_its_error_and_writes_no_record(tmp_path):
    lesson = _notebook(tmp_path / "98_broken.ipynb", "x = 1", "assert x == 2, 'x is not two'")
    out = tmp_path / "lesson98.json"
    done = _run("--profile", "smoke", str(lesson), "--record", str(out), "--names", "x")
    assert done.returncode != 0 and not out.exists()
    assert "ERROR" in done.stdout and "x is not two" in done.stdout


def test_record_needs_names():
    done = _run(str(REPO / "notebooks" / "01_scaled_attention.ipynb"), "--record", "/tmp/never.json")
    assert done.returncode == 2 and "--names" in done.stderr
