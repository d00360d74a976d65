"""Run a lesson's notebook top to bottom in a given profile, as a learner's Run All would, and report
its wall-clock time and the first error (the committed notebook is not changed).

    python benchmarks/run_lesson.py --profile cpu notebooks/04_train_small_transformer.ipynb
    python benchmarks/run_lesson.py --profile cpu notebooks/0[45]_*.ipynb --json results.jsonl
    python benchmarks/run_lesson.py --profile cpu notebooks/11_seq2seq_and_vit.ipynb \
        --record benchmarks/results/lesson11_cpu.json --names vit_accuracy,logistic_accuracy

``--record`` also writes the values of the named variables after Run All (numbers, or dicts and
lists of them, rounded to 4 decimals) with how, where and when they were measured: the results
file a lesson reads to quote the figures of a profile that its stored (smoke) outputs do not show.

CI runs only the smoke profile; this script is how the default profile's times in RESULTS.md and
the README are measured (one lesson at a time, on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time
from pathlib import Path


def _round(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def run_lesson(path: Path, profile: str, timeout: int, names: tuple[str, ...] = ()) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    os.environ["FMTEACH_PROFILE"] = profile  # the kernel inherits it
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    error, values = None, None
    with client.setup_kernel():
        try:
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as err:
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in str(err).strip().splitlines() if line.strip()]
            culprit = next((line.strip() for line in reversed(lines) if line.lstrip().startswith("---->")), "")
            error = f"cell {index}: {lines[-1].strip()} {culprit}"[:400]
        seconds = time.perf_counter() - started
        if names and error is None:  # read the named variables from the kernel, after Run All
            probe = nbformat.v4.new_code_cell(
                f"import json as _json; print(_json.dumps({{n: globals()[n] for n in {list(names)!r}}}, default=float))")
            notebook.cells.append(probe)  # nbclient writes each executed cell back into the notebook
            client.execute_cell(probe, len(notebook.cells) - 1)
            values = _round(json.loads("".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")))
    return {"lesson": path.name, "profile": profile, "seconds": round(seconds, 1), "error": error, "values": values,
            "cpus": os.cpu_count(), "machine": platform.machine(), "date": time.strftime("%Y-%m-%d")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default="cpu")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a single cell may take")
    parser.add_argument("--json", type=Path, default=None, help="append one JSON line per lesson to this file")
    parser.add_argument("--record", type=Path, default=None,
                        help="write the --names variables of one lesson, with how/where/when, to this JSON file")
    parser.add_argument("--names", default="", help="comma-separated variable names to record after Run All")
    args = parser.parse_args(argv)
    names = tuple(n for n in args.names.split(",") if n)
    if args.record is not None and (len(args.notebooks) != 1 or not names):
        parser.error("--record takes one notebook and a non-empty --names list")
    for path in args.notebooks:
        started = time.perf_counter()
        record = run_lesson(path, args.profile, args.timeout, names)
        status = "ok" if record["error"] is None else f"ERROR: {record['error']}"
        print(f"{record['lesson']}: {record['profile']} profile, {record['seconds'] / 60:.1f} min, {status}", flush=True)
        if args.json is not None:
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if args.record is not None:
            if record["error"] is not None:
                raise SystemExit(f"not writing {args.record}: the run stopped with an error")
            from _provenance import provenance  # benchmarks/ is on sys.path when run as a script

            how = provenance(__file__, argv, started=started, details={"lesson": record["lesson"], "profile": args.profile})
            results = {"lesson": record["lesson"], "profile": args.profile, "run_all_minutes": round(record["seconds"] / 60, 1),
                       "values": record["values"], "how": how}
            args.record.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {args.record}")


if __name__ == "__main__":
    main()
