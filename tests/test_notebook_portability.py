"""The committed notebook outputs must read the same on every machine.

nbval re-runs each notebook and compares every checked cell's output with the committed one, so a
printed float64 residue (``3.3e-16``), a timing, a path or a thread count makes ``python -m pytest``
fail on a machine whose CPU, file system or load differ from the one that wrote the outputs. This
test scans the committed outputs (no kernel needed) and names each output that cannot be portable.
Cells tagged ``nbval-ignore-output`` or ``nbval-skip`` are not compared by nbval and are exempt.
"""

from __future__ import annotations

import configparser
import json
import re
import socket
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SANITIZE_CFG = NOTEBOOKS / "nbval_sanitize.cfg"
EXEMPT_TAGS = {"nbval-ignore-output", "nbval-skip"}
TEXT_KEYS = ("text/plain", "text/html", "text/markdown", "text/latex")

# A float in e-notation below 1e-8 is a rounding residue unless it is an exact power of ten
# (a tolerance met, `< 1e-12 ✓`, or a config value such as `layer_norm_eps=1e-12`).
E_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([-+]\d+)\b")
LONG_ZERO_DECIMAL = re.compile(r"(?<![\w.])0\.0{8,}[1-9]")
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/])/(?:root|home|tmp|work|Users|usr|opt|var|private|mnt|content|srv)/"
    r"|\b[A-Za-z]:\\\\?[A-Za-z]"
)
TIMING = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|secs|seconds?|min|minutes?)\b(?!\w)"
    r"|\bit/s\b|\bs/it\b|\bWall time\b|\bCPU times\b"
)
THREADS = re.compile(r"\b\d+\s+(?:OpenMP\s+|torch\s+|intra-op\s+)?threads?\b", re.IGNORECASE)
LOCAL_URL = re.compile(r"(?:localhost|127\.0\.0\.1):\d+")
TQDM_STUB = re.compile(r"(?<!\d)0%\|")


def sanitizers() -> list[tuple[re.Pattern[str], str]]:
    """The regex/replace pairs nbval applies before comparing (notebooks/nbval_sanitize.cfg)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE_CFG, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def cell_is_exempt(cell: dict) -> bool:
    return bool(EXEMPT_TAGS & set(cell.get("metadata", {}).get("tags", [])))


def output_texts(cell: dict) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append("".join(out["text"]))
        for key in TEXT_KEYS:
            value = out.get("data", {}).get(key)
            if value is not None:
                texts.append("".join(value))
        if out.get("output_type") == "error":
            texts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return texts


def portability_problems(text: str, host: str | None = None) -> list[str]:
    """What in one output text would print differently on another machine (after sanitizing)."""
    for pattern, replacement in sanitizers():
        text = pattern.sub(replacement, text)
    found = []
    for m in E_NUMBER.finditer(text):
        mantissa = m.group(1)
        if float(m.group(0)) < 1e-8 and not (float(mantissa) == 1.0 and "." not in mantissa):
            found.append(f"float residue {m.group(0)!r}")
    found += [f"float residue {m.group(0)!r}" for m in LONG_ZERO_DECIMAL.finditer(text)]
    found += [f"absolute path {m.group(0)!r}" for m in ABSOLUTE_PATH.finditer(text)]
    found += [f"timing {m.group(0)!r}" for m in TIMING.finditer(text)]
    found += [f"thread count {m.group(0)!r}" for m in THREADS.finditer(text)]
    found += [f"local server address {m.group(0)!r}" for m in LOCAL_URL.finditer(text)]
    if host and len(host) >= 4 and host.lower() in text.lower():
        found.append(f"host name {host!r}")
    return found


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_checked_outputs_are_portable(path: Path) -> None:
    host = socket.gethostname()
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or cell_is_exempt(cell):
            continue
        for text in output_texts(cell):
            problems += [f"cell {number}: {p}" for p in portability_problems(text, host)]
    assert not problems, (
        f"{path.name}: outputs that differ between machines in cells nbval compares "
        "(print the tolerance met or a rounded value, or tag the cell nbval-ignore-output and "
        "assert the claim):\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_no_ci_markers_or_progress_stubs(path: Path) -> None:
    """Learners read the code and the stored outputs: no nbval comments, no '0%|' tqdm stubs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for number, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if re.search(r"#\s*(?:NBVAL|PYTEST_VALIDATE)_", source):
            problems.append(f"cell {number}: nbval marker comment (use a cell tag instead)")
        for text in output_texts(cell):
            if TQDM_STUB.search(text):
                problems.append(f"cell {number}: a tqdm '0%' progress stub in the stored output")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("max |ours - torch| = 3.3e-16", "float residue"),
        ("max difference 1.0e-15", "float residue"),
        ("diff 0.0000000004", "float residue"),
        ("model at /root/.cache/fmteach/x", "absolute path"),
        ("trained in 12.5 s", "timing"),
        ("took 3 min", "timing"),
        ("running with 2 threads", "thread count"),
        ("served at 127.0.0.1:8888", "local server address"),
    ],
)
def test_scanner_catches(text: str, kind: str) -> None:
    problems = portability_problems(text)
    assert problems and all(p.startswith(kind) for p in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        "max |ours - torch| < 1e-12 ✓",
        "output == torch.nn.MultiheadAttention: to 1e-10",
        "layer_norm_eps=1e-12, hidden_dropout_prob=0.1",
        "loss 2.39 vs 3.34; 14 layers; 3 heads; step 200/300",
        "PROGRESS: 10 s elapsed",  # sanitized by nbval_sanitize.cfg before comparison
        "lr 2.0e-03, weight decay 1e-2",
    ],
)
def test_scanner_passes_portable_text(text: str) -> None:
    assert portability_problems(text) == []
