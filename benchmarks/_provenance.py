"""How, where and when a benchmark was measured: the ``"how"`` block of a results JSON file.

The benchmark scripts (``lesson08.py``, ``lesson12.py``, ``transfer_minibert.py``) are run from the
repository root as ``python benchmarks/NAME.py ...``; Python then puts ``benchmarks/`` first on
``sys.path``, so they import this module as ``from _provenance import provenance``.

The notebooks read these keys of the block: ``command``, ``when_utc`` (printed as is, or its first
10 characters, the date) and ``where`` (split on ``", "``: its second part is the CPU count; lesson 08
rewrites ``" torch threads"``). Keep their format when changing this module.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO) -> str:
    """The short hash of ``repo``'s HEAD, or ``"unknown"`` outside a git checkout or without git."""
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (result.stdout.strip() or "unknown") if result.returncode == 0 else "unknown"


def command_line(script: str | Path, argv: list[str] | None = None) -> str:
    """The command that ran ``script`` with ``argv`` (``sys.argv[1:]`` when None), as typed from the
    repository root: ``python benchmarks/NAME.py ARGS``, arguments quoted for a POSIX shell."""
    path = Path(script).resolve()
    try:
        shown = path.relative_to(REPO).as_posix()
    except ValueError:  # a copy of the script outside the repository
        shown = path.as_posix()
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", shown, *args])


def provenance(script: str | Path, argv: list[str] | None = None, *, device="cpu", started: float | None = None,
               details: dict | None = None, note: str | None = None) -> dict:
    """The ``"how"`` block of a results file: how, where and when it was measured.

    Parameters
    ----------
    script : the benchmark script (pass its ``__file__``); the command names it relative to the repository.
    argv : its arguments, ``main(argv)``'s; None means ``sys.argv[1:]``.
    device : the device the script measured on (a ``torch.device`` or its type, e.g. ``"cpu"``, ``"cuda"``).
    started : ``time.perf_counter()`` at the start of the measurement; gives ``total_seconds``.
    details : the script's own settings (profile, steps, dataset sizes...), placed after ``command``.
    note : a remark appended to ``where`` in parentheses, e.g. ``"machine shared with other jobs"``.

    Returns
    -------
    A dict with, in this order: ``command`` (``python benchmarks/NAME.py ARGS``), the ``details``,
    ``when_utc`` (the current UTC time, ISO 8601 ``YYYY-MM-DD HH:MM``), ``where`` (``"x86_64 Linux,
    2 logical CPUs, device cpu, torch 2.x, 2 torch threads"``, then the note), ``torch_threads``,
    ``git_commit`` (HEAD's short hash, or ``"unknown"`` outside git) and ``total_seconds`` (one
    decimal; only when ``started`` is given).
    """
    import torch

    threads = torch.get_num_threads()
    where = (f"{platform.machine()} {platform.system()}, {os.cpu_count()} logical CPUs, "
             f"device {getattr(device, 'type', device)}, torch {torch.__version__}, {threads} torch threads")
    block = {
        "command": command_line(script, argv),
        **(details or {}),
        "when_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "where": f"{where} ({note})" if note else where,
        "torch_threads": threads,
        "git_commit": git_commit(),
    }
    if started is not None:
        block["total_seconds"] = round(time.perf_counter() - started, 1)
    return block
