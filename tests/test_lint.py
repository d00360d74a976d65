"""ruff over the package, the tests and the benchmarks, with the rules in pyproject.toml [tool.ruff]
(pyflakes, import order, bugbear): the test suite fails on a finding, and says which."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "fmteach", "tests", "benchmarks"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"ruff check fmteach tests benchmarks:\n{result.stdout}{result.stderr}"
