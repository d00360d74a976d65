"""benchmarks/_provenance.py: the "how" block that lesson08.py, lesson09.py, lesson12.py and transfer_minibert.py
write into their results files (the command, the commit, the machine, the date), and the keys the
notebooks read from the committed ones."""

import datetime
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ["lesson08.py", "lesson09.py", "lesson12.py", "transfer_minibert.py"]


def _load():
    spec = importlib.util.spec_from_file_location("_provenance", REPO / "benchmarks" / "_provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prov = _load()


def _head() -> str:
    if shutil.which("git") is None:
        return "unknown"
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "unknown"


def test_block_has_the_keys_in_order():
    import time

    block = prov.provenance(REPO / "benchmarks" / "lesson12.py", ["--profile", "cpu"], device="cpu",
                            started=time.perf_counter(), details={"profile": "cpu", "steps": 100})
    assert list(block) == ["command", "profile", "steps", "when_utc", "where", "torch_threads", "git_commit",
                           "total_seconds"]
    assert block["profile"] == "cpu" and block["steps"] == 100
    assert isinstance(block["torch_threads"], int) and block["torch_threads"] >= 1
    assert isinstance(block["total_seconds"], float) and 0 <= block["total_seconds"] < 60
    assert "total_seconds" not in prov.provenance(REPO / "benchmarks" / "lesson12.py", [])
    json.dumps(block)  # it goes into a JSON file as it is


def test_command_names_the_script_and_its_arguments(monkeypatch):
    script = REPO / "benchmarks" / "lesson08.py"
    args = ["--profile", "cpu", "--out", "benchmarks/results/lesson08_cpu.json", "--finetune-ks", "1", "4"]
    assert prov.provenance(script, args)["command"] == (
        "python benchmarks/lesson08.py --profile cpu --out benchmarks/results/lesson08_cpu.json --finetune-ks 1 4")
    assert prov.command_line(script, []) == "python benchmarks/lesson08.py"
    assert prov.command_line(script, ["--note", "two words"]) == "python benchmarks/lesson08.py --note 'two words'"
    monkeypatch.setattr(sys, "argv", ["benchmarks/lesson08.py", "--profile", "smoke"])  # argv=None: the command line
    assert prov.command_line(script) == "python benchmarks/lesson08.py --profile smoke"


def test_commit_is_head_or_unknown(tmp_path, monkeypatch):
    assert prov.provenance(REPO / "benchmarks" / "lesson12.py", [])["git_commit"] == _head()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # tmp_path is in no repository
    assert prov.git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("PATH", "")  # no git at all
    assert prov.git_commit(REPO) == "unknown"


def test_date_is_iso_8601_utc_now():
    before = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    when = prov.provenance(REPO / "benchmarks" / "lesson12.py", [])["when_utc"]
    after = datetime.datetime.now(datetime.timezone.utc)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", when), when  # notebooks print it, or its first 10 chars
    parsed = datetime.datetime.fromisoformat(when).replace(tzinfo=datetime.timezone.utc)
    assert before <= parsed <= after


def test_where_keeps_the_format_the_notebooks_split():
    where = prov.provenance(REPO / "benchmarks" / "lesson08.py", [], device="cuda", note="shared")["where"]
    parts = where.split(", ")
    assert parts[1].endswith(" logical CPUs")  # lessons 07 and 12 print where.split(', ')[1]
    assert parts[2] == "device cuda" and parts[3].startswith("torch ")
    assert where.endswith(" torch threads (shared)")  # lesson 08 rewrites ' torch threads'


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_scripts_use_it(script):
    source = (REPO / "benchmarks" / script).read_text()
    assert "from _provenance import provenance" in source and "provenance(__file__, argv" in source
    assert "rev-parse" not in source and "platform." not in source  # no second copy of the block


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks" / "results").glob("lesson*.json"))
                         + sorted((REPO / "fmteach" / "course_models" / "runs").glob("*transfer*.json")),
                         ids=lambda p: p.name)
def test_committed_results_carry_what_the_notebooks_read(path):
    how = json.loads(path.read_text())["how"]
    assert {"command", "when_utc", "where", "git_commit"} <= set(how)
    assert how["command"].startswith("python benchmarks/")
    datetime.datetime.fromisoformat(how["when_utc"])
    assert how["where"].split(", ")[1].endswith(" logical CPUs")
