"""One line per GPU-check step, made from the step's JSON-lines file, printed and appended to it.

    python benchmarks/gpu_summary.py minigpt OUT/minigpt.jsonl --rc 0 --wall 183

The line names the step, its status (``ok``; ``ok, stopped by its time budget``; ``FAILED``) and its
headline figures, read from the step's ``final`` record. A step killed before its ``final`` record
still reports the last record it wrote, so a run cut short says how far it got.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STEPS = ("finetune", "mlm", "minigpt", "throughput", "attention", "compile")


def read_records(path: Path) -> list[dict]:
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut off by a kill: the ones before it still count
                pass
    return records


def figures(step: str, final: dict) -> dict:
    """The headline figures of a step's final record (names as in RESULTS.md)."""
    if step == "finetune":
        return {"test_accuracy": final["test"]["accuracy"], "test_f1": final["test"]["f1"],
                "train_seconds": final["train_seconds"], "steps": final["steps"], "max_steps": final["max_steps"],
                "padding_speedup": final.get("padding", {}).get("speedup")}
    if step == "mlm":
        last = final["final"] or {}
        return {"accuracy_at_mask": last.get("accuracy_at_mask"), "perplexity": last.get("perplexity"),
                "most_frequent_token_accuracy": final["most_frequent_token_accuracy"],
                "train_seconds": final["seconds"], "steps": final["steps"], "max_steps": final["max_steps"]}
    if step == "minigpt":
        return {"val_loss": final["final_val_loss"], "unigram_baseline": final["unigram_baseline"],
                "train_seconds": final["train_seconds"], "steps": final["final_step"], "max_steps": final["max_steps"]}
    if step in ("throughput", "compile"):
        rates = final["tokens_per_s"]
        return {"minigpt_tokens_per_s": rates["MiniGPT"], "gpt2_tokens_per_s": rates["GPT2LMHeadModel"],
                "ratio": final["ratio"], "mfu_minigpt": final.get("mfu", {}).get("MiniGPT"),
                "mfu_gpt2": final.get("mfu", {}).get("GPT2LMHeadModel"), "compile": final["compile"]}
    if step == "attention":
        return {"max_T": final["max_T"], "speedup_at_max_T": final["speedup_at_max_T"],
                "memory_ratio_at_max_T": final["memory_ratio_at_max_T"]}
    raise ValueError(f"step={step!r} is not one of {', '.join(STEPS)}")


def describe(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summarise(step: str, path: Path, rc: int, wall: float) -> dict:
    records = read_records(path)
    final = next((r for r in reversed(records) if r.get("event") == "final"), None)
    summary = {"event": "summary", "step": step, "rc": rc, "wall_seconds": wall, "records": len(records)}
    if final is None:
        reason = "timed out" if rc in (124, 137) else f"exit {rc}"
        last = records[-1] if records else {}
        summary |= {"status": "FAILED", "figures": {}, "last_record": last}
        summary["line"] = (f"SUMMARY {step} FAILED ({reason}, {wall:.0f} s): no final record; "
                           f"{len(records)} records, the last: {json.dumps(last, default=str)[:200]}")
        return summary
    found = figures(step, final)
    out_of_time = bool(final.get("out_of_time"))
    status = "ok" if rc == 0 else f"exit {rc} after its final record"
    if out_of_time:
        status += ", stopped by its time budget"
    device = final.get("device", "?")
    summary |= {"status": status, "figures": found, "device": device}
    summary["line"] = (f"SUMMARY {step} {status} ({wall:.0f} s on {device}): "
                       + ", ".join(f"{k}={describe(v)}" for k, v in found.items()))
    return summary


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--rc", type=int, required=True, help="the step's exit status")
    parser.add_argument("--wall", type=float, required=True, help="the step's wall-clock seconds")
    args = parser.parse_args(argv)
    summary = summarise(args.step, args.jsonl, args.rc, args.wall)
    cut_off = args.jsonl.is_file() and not args.jsonl.read_bytes().endswith(b"\n")  # a kill mid-line
    with open(args.jsonl, "a", encoding="utf-8") as f:
        f.write(("\n" if cut_off else "") + json.dumps(summary, default=str) + "\n")
    print(summary["line"], flush=True)
    return summary


if __name__ == "__main__":
    main()
