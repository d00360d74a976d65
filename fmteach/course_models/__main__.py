"""Write a course model's folder from a finished training run (the second half of its rebuild command).

    python -m fmteach.course_models export minigpt-shakespeare runs/course-models/minigpt-shakespeare
    python -m fmteach.course_models export minibert-shakespeare runs/course-models/minibert-shakespeare
    python -m fmteach.course_models remeasure minibert-shakespeare   # metrics again, same weights
    python -m fmteach.course_models verify            # check every shipped file's sha256
    python -m fmteach.course_models commands          # the command that rebuilds each model

``export`` reads the run's ``ckpt.pt`` and ``history.json``, writes ``model.safetensors``,
``config.json``, the tokenizer and ``manifest.json`` (command, commit, seed, versions, training
time, metrics measured on the held-out plays, sha256 of every file) into the package folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .._io import file_sha256, torch_load
from ..train import HISTORY_NAME, read_history
from . import (
    CONFIG,
    COURSE_MODELS,
    CURVE,
    MANIFEST,
    WEIGHTS,
    _spec,
    course_model,
    course_model_dir,
    fixed_slice_loss,
    rebuild_command,
    verify_course_model,
)

MACHINE = "2 CPU cores (x86-64), shared with other jobs; OMP_NUM_THREADS=1"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_model  # handles the tied embedding/decoder weights

    save_model(model, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # safetensors writes 0600; a package file is world-readable


def _export_minigpt(run: Path, folder: Path) -> tuple[dict, dict]:
    from ..lm_data import load_shakespeare_chars
    from ..train_lm import load_trained

    model, tokenizer, ckpt = load_trained(run)
    summary = read_history(run / HISTORY_NAME)["summary"]
    _save_weights(model, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(asdict(model.config), indent=1) + "\n")
    (folder / "vocab.json").write_text(json.dumps({"chars": tokenizer.chars}, ensure_ascii=False) + "\n")
    data = load_shakespeare_chars(ckpt["extra"]["val_plays"])
    metrics = {
        "final_val_loss": round(summary["final_val_loss"], 4),
        "final_train_loss": round(summary["final_train_loss"], 4),
        "fixed_slice_val_loss": round(fixed_slice_loss(model, data.val), 4),
        "unigram_baseline": round(summary["unigram_baseline"], 4),
        "steps": summary["final_step"],
        "parameters": model.num_parameters()["total"],
    }
    timing = {"train_seconds": round(summary["train_seconds"], 1), "wall_seconds": round(summary["wall_seconds"], 1)}
    return metrics, {"seed": summary["train_config"]["seed"], **timing}


def _export_minibert(run: Path, folder: Path) -> tuple[dict, dict]:
    from ..bert import MiniBertForMaskedLM
    from ..bert_config import BertConfig
    from ..pretrain_mlm import MLMRecipe
    from ..wordpiece import train_wordpiece_tokenizer

    ckpt = torch_load(run / "ckpt.pt", expected="a checkpoint written by python -m fmteach.pretrain_mlm",
                      required_keys=("model", "model_config", "extra", "step"))
    if (run / HISTORY_NAME).is_file():
        history = read_history(run / HISTORY_NAME)
    else:  # a checkpoint written by --checkpoint-interval while the run went on: no summary yet
        history = {"summary": {"profile": ckpt["extra"].get("profile", "cpu"), "seconds": None, "steps": ckpt["step"]}}
    model = MiniBertForMaskedLM(BertConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    recipe_name = history["summary"].get("recipe") or ckpt["extra"].get("recipe", "profile")
    recipe = MLMRecipe.course() if recipe_name == "course" else MLMRecipe.from_profile(history["summary"]["profile"])
    recipe = replace(recipe, corpus=ckpt["extra"].get("corpus", "shakespeare"))
    tokenizer = train_wordpiece_tokenizer(recipe.vocab_size, corpus=recipe.corpus)
    _save_weights(model, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(asdict(model.config), indent=1) + "\n")
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    metrics = {**minibert_metrics(model, tokenizer, recipe), "steps": ckpt["step"],
               "parameters": sum(p.numel() for p in model.parameters())}
    seconds = history["summary"]["seconds"]
    return metrics, {"seed": ckpt["train_config"]["seed"], "train_seconds": None if seconds is None else round(seconds, 1),
                     "corpus": recipe.corpus}


def minibert_metrics(model, tokenizer, recipe) -> dict:
    """The manifest's held-out figures of a mini-BERT: accuracy split by what the input held at each
    scored position (``[MASK]`` is the headline; unchanged tokens can be copied), beside the
    most-frequent-token baseline at ``[MASK]``."""
    from ..mlm import MLMData, mlm_metrics

    data = MLMData.from_corpus(tokenizer, recipe.corpus, seq_len=recipe.seq_len)  # held out: the same plays
    batches = data.validation_batches(n_rows=recipe.val_rows)
    measured = mlm_metrics(model, batches, mask_token_id=tokenizer.mask_token_id)
    return {
        "heldout_accuracy_at_mask": round(measured["accuracy_at_mask"], 4),
        "heldout_top5_at_mask": round(measured["top5_at_mask"], 4),
        "most_frequent_token_accuracy_at_mask": round(data.most_frequent_token_accuracy(batches), 4),
        "heldout_accuracy_unchanged": round(measured["accuracy_unchanged"], 4),
        "heldout_accuracy_random": round(measured["accuracy_random"], 4),
        "heldout_accuracy_all_selected": round(measured["accuracy_all_selected"], 4),
        "heldout_positions": {k: measured[f"n_{k}"] for k in ("mask", "unchanged", "random")},
        "heldout_mlm_loss": round(measured["mlm_loss"], 4),
        "heldout_perplexity": round(measured["perplexity"], 1),
        "heldout_rows": recipe.val_rows, "seq_len": recipe.seq_len,
    }


def remeasure(name: str) -> dict:
    """Measure a shipped mini-BERT again with today's :func:`~fmteach.mlm.mlm_metrics` and rewrite its
    manifest's metrics (weights, files and checksums untouched); returns the new manifest."""
    from ..pretrain_mlm import MLMRecipe

    spec = _spec(name)
    if spec.kind != "minibert":
        raise ValueError(f"remeasure supports the mini-BERT course models, got {name!r} ({spec.kind})")
    loaded = course_model(name)
    manifest = json.loads((course_model_dir(name) / MANIFEST).read_text())
    recipe = MLMRecipe.course() if "--recipe course" in manifest["command"] else MLMRecipe.from_profile("cpu")
    recipe = replace(recipe, corpus="mixed" if "--corpus mixed" in manifest["command"] else "shakespeare")
    old = manifest["metrics"]
    manifest["metrics"] = {**minibert_metrics(loaded.model, loaded.tokenizer, recipe),
                           **{k: old[k] for k in ("steps", "parameters") if k in old}}
    manifest["metrics_measured"] = {"date": datetime.date.today().isoformat(), "at_commit": _git("rev-parse", "HEAD"),
                                    "command": f"python -m fmteach.course_models remeasure {name}"}
    (course_model_dir(name) / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


CURVE_MLM_KEYS = ("mlm_loss", "accuracy_at_mask", "top5_at_mask", "perplexity")  # kept when the run records them


def _write_curve(jsonl: Path, path: Path) -> None:
    """The evaluations of a ``--metrics-jsonl`` file, with their wall-clock seconds, as ``curve.json``."""
    evals, offset, last, commands_seconds = [], 0.0, 0.0, []
    for line in jsonl.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("event") == "start":  # a resumed command: its clock starts again at 0
            offset = last
        elif record.get("event") == "eval":
            if evals and record["step"] <= evals[-1]["step"]:  # a resumed command evaluating its first step again
                continue
            kept = {k: record[k] for k in ("step", "train_loss", "val_loss", *CURVE_MLM_KEYS) if k in record}
            if "seconds" in record:  # older mini-BERT runs recorded no clock at their evaluations
                last = offset + record["seconds"]
                kept["seconds"] = round(last, 1)
            evals.append(kept)
        elif record.get("event") == "final" and record.get("seconds") is not None:
            commands_seconds.append(record["seconds"])
    if not evals:
        raise ValueError(f"{jsonl} holds no evaluation records")
    timed = all("seconds" in e for e in evals)
    about = ("held-out and training loss at every evaluation of the training run (a mini-BERT's also its "
             "held-out MLM loss and accuracy at [MASK]); ")
    about += ("seconds of wall-clock time since training started, summed over resumed commands (the time "
              "between a command's last evaluation and its stop is not counted)" if timed else
              "the run recorded no clock at its evaluations: train_seconds is the sum of its commands' "
              "training times")
    curve = {"about": about, "evals": evals}
    if not timed:
        curve["train_seconds"] = round(sum(commands_seconds), 1) if commands_seconds else None
    path.write_text(json.dumps(curve, indent=0) + "\n")


def export(name: str, run: str | Path, trained_at_commit: str | None = None, *, metrics_jsonl: str | Path | None = None,
           machine: str = MACHINE, note: str | None = None) -> dict:
    """Write ``name``'s folder from the run folder ``run``; returns the manifest.

    ``trained_at_commit``: the commit checked out when training started (default: HEAD now);
    ``metrics_jsonl``: the run's ``--metrics-jsonl`` file, shipped as the model's training curve;
    ``machine``: where it trained, in words."""
    spec, run, folder = _spec(name), Path(run), course_model_dir(name)
    if not (run / "ckpt.pt").is_file():
        raise FileNotFoundError(f"run={str(run)!r} holds no ckpt.pt; train first: {spec.train_command}")
    folder.mkdir(parents=True, exist_ok=True)
    metrics, facts = (_export_minigpt if spec.kind == "minigpt" else _export_minibert)(run, folder)
    files = [WEIGHTS, CONFIG, spec.tokenizer_file]
    if metrics_jsonl is not None:
        _write_curve(Path(metrics_jsonl), folder / CURVE)
        # the run's history.json knows only its last command; the curve sums every resumed command
        facts = {k: v for k, v in facts.items() if k != "wall_seconds"}
        curve = json.loads((folder / CURVE).read_text())
        facts["train_seconds"] = curve["evals"][-1]["seconds"] if "seconds" in curve["evals"][-1] else curve["train_seconds"]
        files.append(CURVE)
    files = sorted(files)
    changed = _git("status", "--porcelain", "--", "fmteach")
    manifest = {
        "name": name,
        "command": rebuild_command(name),
        "git_commit": trained_at_commit or _git("rev-parse", "HEAD"),
        "exported_at_commit": _git("rev-parse", "HEAD"),
        "uncommitted_package_files_at_export": [line.split()[-1] for line in changed.splitlines()
                                                if not line.split()[-1].startswith("fmteach/course_models")],
        **facts,
        "torch": torch.__version__, "python": platform.python_version(),
        "machine": machine,
        "dtype": "float32",
        "date": datetime.date.today().isoformat(),
        "metrics": metrics,
        **({"note": note} if note else {}),
        "sha256": {f: file_sha256(folder / f) for f in files},
        "bytes": {f: (folder / f).stat().st_size for f in files},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    course_model(name)  # loads back through the checked path
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fmteach.course_models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write a course model's folder from a finished run")
    ex.add_argument("name", choices=list(COURSE_MODELS))
    ex.add_argument("run", help="the run folder the training command wrote")
    ex.add_argument("--trained-at-commit", default=None, help="the commit checked out when training started")
    ex.add_argument("--metrics-jsonl", default=None, help="the run's --metrics-jsonl file: shipped as its curve")
    ex.add_argument("--note", default=None, help="anything about the run the command does not say")
    ex.add_argument("--machine", default=MACHINE, help=f"where it trained, in words (default: {MACHINE!r})")
    re_ = sub.add_parser("remeasure", help="measure a shipped mini-BERT again and rewrite its manifest's metrics")
    re_.add_argument("name", choices=list(COURSE_MODELS))
    sub.add_parser("verify", help="check the sha256 of every shipped file")
    sub.add_parser("commands", help="print each model's rebuild command")
    args = parser.parse_args(argv)
    if args.action == "export":
        print(json.dumps(export(args.name, args.run, args.trained_at_commit, metrics_jsonl=args.metrics_jsonl,
                                machine=args.machine, note=args.note), indent=1))
    elif args.action == "remeasure":
        print(json.dumps(remeasure(args.name)["metrics"], indent=1))
    elif args.action == "verify":
        for name in COURSE_MODELS:
            manifest = verify_course_model(name)
            print(f"{name}: {len(manifest['sha256'])} files ok")
    else:
        for name in COURSE_MODELS:
            print(f"{name}:\n  {rebuild_command(name)}")


if __name__ == "__main__":
    sys.exit(main())
