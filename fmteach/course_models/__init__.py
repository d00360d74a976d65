"""The course models: MiniGPT and the mini-BERT, trained once by the course's own CLIs and shipped.

Lessons train a small model live for a few seconds (what that gives), then load the shipped one
for what a trained model does::

    from fmteach.course_models import course_model
    gpt = course_model("minigpt-shakespeare")     # .model (eval mode), .tokenizer, .manifest
    bert = course_model("minibert-shakespeare")

Each model is a folder next to this file: ``model.safetensors`` (no pickle), ``config.json``, its
tokenizer, and ``manifest.json`` (the exact command that made it, git commit, seed, torch version,
training time, measured metrics and the sha256 of every file). Loading checks every sha256
against the manifest: a missing or altered file raises :class:`~fmteach.cache.MissingAssetError`
naming the file and the command that rebuilds it (``python -m fmteach.course_models --help``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import eval_mode, file_sha256
from ..bert import MiniBertForMaskedLM
from ..bert_config import BertConfig
from ..cache import MissingAssetError
from ..lm_data import CharTokenizer
from ..model import GPTConfig, MiniGPT
from ..wordpiece import load_wordpiece_tokenizer

__all__ = ["COURSE_MODELS", "CourseModel", "course_curve", "recorded_run", "course_model", "course_model_dir", "verify_course_model",
           "rebuild_command", "fixed_slice_loss"]

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass(frozen=True)
class _Spec:
    kind: str            # "minigpt" or "minibert"
    tokenizer_file: str  # the tokenizer, next to the weights
    train_command: str   # the training run (the course's own CLI)


RUN_ROOT = "runs/course-models"
COURSE_MODELS: dict[str, _Spec] = {
    "minigpt-shakespeare": _Spec(
        "minigpt", "vocab.json",
        f"python -m fmteach.train_lm --recipe course --out {RUN_ROOT}/minigpt-shakespeare --no-progress "
        f"--metrics-jsonl {RUN_ROOT}/minigpt-shakespeare.jsonl"),
    "minibert-shakespeare": _Spec(
        "minibert", "tokenizer.json",
        f"python -m fmteach.pretrain_mlm --recipe course --out {RUN_ROOT}/minibert-shakespeare --no-progress "
        f"--metrics-jsonl {RUN_ROOT}/minibert-shakespeare.jsonl"),
    # the same recipe on Shakespeare plus the training splits of the course's English data sets
    "minibert-mixed": _Spec(
        "minibert", "tokenizer.json",
        f"python -m fmteach.pretrain_mlm --recipe course --corpus mixed --out {RUN_ROOT}/minibert-mixed --no-progress "
        f"--metrics-jsonl {RUN_ROOT}/minibert-mixed.jsonl"),
}


def _spec(name: str) -> _Spec:
    if name not in COURSE_MODELS:
        raise ValueError(f"name={name!r} is not a course model; choose one of {', '.join(COURSE_MODELS)}")
    return COURSE_MODELS[name]


def rebuild_command(name: str) -> str:
    """The commands (run from the repository root) that train ``name`` and write its folder."""
    curve = f" --metrics-jsonl {RUN_ROOT}/{name}.jsonl" if "--metrics-jsonl" in _spec(name).train_command else ""
    return (f"{_spec(name).train_command} && "
            f"python -m fmteach.course_models export {name} {RUN_ROOT}/{name}{curve}")


RUNS_DIR = MODELS_DIR / "runs"  # recorded training runs that are not shipped models (for comparison)


def recorded_run(name: str) -> dict:
    """A recorded training run shipped for comparison (``{"about", "command", "evals": [...]}``), e.g.
    ``"minigpt-cpu-profile"``: the cpu profile's MiniGPT run that lesson 04 draws beside the course model."""
    path = RUNS_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RUNS_DIR.glob("*.json"))
        raise ValueError(f"name={name!r} is not a recorded run; choose one of {', '.join(known) or '(none)'}")
    return json.loads(path.read_text())


CURVE = "curve.json"  # optional: the training curve (evaluations with wall-clock seconds), when exported


def course_curve(name: str) -> dict | None:
    """``name``'s shipped training curve (``{"evals": [{"step", "train_loss", "val_loss", "seconds"}, ...],
    ...}``, sha256-checked with the rest), or ``None`` for a model shipped without one."""
    manifest = verify_course_model(name)
    if CURVE not in manifest.get("sha256", {}):
        return None
    return json.loads((course_model_dir(name) / CURVE).read_text())


def course_model_dir(name: str) -> Path:
    """The folder that holds ``name``'s files (inside the installed package)."""
    _spec(name)
    return MODELS_DIR / name


def verify_course_model(name: str) -> dict:
    """The manifest of ``name`` after checking that every file it lists has its sha256.

    Raises :class:`MissingAssetError` naming the missing or altered file and the rebuild command."""
    folder = course_model_dir(name)
    fix = f"rebuild it with: {rebuild_command(name)}"
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise MissingAssetError(f"course model {name!r}: {manifest_path} is missing; {fix}")
    manifest = json.loads(manifest_path.read_text())
    expected = manifest.get("sha256", {})
    needed = {WEIGHTS, CONFIG, _spec(name).tokenizer_file}
    if not needed <= set(expected):
        raise MissingAssetError(f"course model {name!r}: {manifest_path} lists no sha256 for "
                                f"{sorted(needed - set(expected))}; {fix}")
    for filename, sha in expected.items():
        path = folder / filename
        if not path.is_file():
            raise MissingAssetError(f"course model {name!r}: {path} is missing; {fix}")
        actual = file_sha256(path)
        if actual != sha:
            raise MissingAssetError(f"course model {name!r}: {path} has sha256 {actual[:16]}…, the manifest "
                                    f"says {sha[:16]}… (altered or half-written); {fix}")
    return manifest


@dataclass(frozen=True)
class CourseModel:
    """A loaded course model: ``model`` (eval mode), its ``tokenizer`` and its ``manifest``."""

    name: str
    model: torch.nn.Module
    tokenizer: Any  # CharTokenizer (MiniGPT) or PreTrainedTokenizerFast (mini-BERT)
    manifest: dict


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_model  # safetensors: plain tensors, no pickle, nothing executed

    load_model(model, str(path), strict=True, device="cpu")  # raises on a missing or unexpected tensor


def course_model(name: str, device: torch.device | str = "cpu") -> CourseModel:
    """Load the shipped course model ``name`` (see :data:`COURSE_MODELS`) after checking its sha256s."""
    manifest = verify_course_model(name)
    folder, spec = course_model_dir(name), _spec(name)
    config = json.loads((folder / CONFIG).read_text())
    if spec.kind == "minigpt":
        model = MiniGPT(GPTConfig(**config))
        tokenizer = CharTokenizer(json.loads((folder / spec.tokenizer_file).read_text())["chars"])
    else:
        model = MiniBertForMaskedLM(BertConfig(**config))
        tokenizer = load_wordpiece_tokenizer(folder / spec.tokenizer_file)
    _load_weights(model, folder / WEIGHTS)
    return CourseModel(name, model.to(device).eval(), tokenizer, manifest)


@torch.no_grad()
def fixed_slice_loss(model: MiniGPT, ids: torch.Tensor, n_windows: int = 64) -> float:
    """Mean next-character cross-entropy over ``n_windows`` evenly spaced windows of ``ids`` (no RNG).

    ``ids`` is a 1-D tensor of token ids (e.g. the held-out plays); each window holds
    ``block_size + 1`` ids, so it scores ``block_size`` predictions."""
    block = model.config.block_size
    if ids.dim() != 1 or len(ids) < n_windows * (block + 1):
        raise ValueError(f"ids has shape {tuple(ids.shape)}: need a 1-D tensor of at least "
                         f"n_windows * (block_size + 1) = {n_windows * (block + 1)} ids")
    starts = torch.linspace(0, len(ids) - block - 1, n_windows).long()
    windows = torch.stack([ids[s: s + block + 1] for s in starts.tolist()])  # (n_windows, block + 1)
    device = next(model.parameters()).device
    with eval_mode(model):
        loss = model(windows[:, :-1].to(device), windows[:, 1:].to(device)).loss
    return loss.item()
