"""Run a lesson's notebook top to bottom in a given profile, as a learner's Run All would, and report
its wall-clock time and the first error (the committed notebook is not changed).

    python benchmarks/run_lesson.py --profile cpu notebooks/04_train_small_transformer.ipynb
    python benchmarks/run_lesson.py --profile cpu notebooks/0[45]_*.ipynb --json results.jsonl

CI runs only the smoke profile; this script is how the default profile's times in RESULTS.md and
the README are measured (one lesson at a time, on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def run_lesson(path: Path, profile: str, timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    os.environ["FMTEACH_PROFILE"] = profile  # the kernel inherits it
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err).strip().splitlines()[-1][:300]
    seconds = time.perf_counter() - started
    return {"lesson": path.name, "profile": profile, "seconds": round(seconds, 1), "error": error,
            "cpus": os.cpu_count(), "machine": platform.machine(), "date": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default="cpu")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may take")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per lesson to this file")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        record = run_lesson(path, args.profile, args.timeout)
        status = "ok" if record["error"] is None else f"ERROR: {record['error']}"
        print(f"{record['lesson']}: {record['profile']} profile, {record['seconds'] / 60:.1f} min, {status}", flush=True)
        if args.json is not None:
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
