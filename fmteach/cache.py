"""Where fetched assets live, and the one error every missing asset raises.

:func:`cache_dir` resolves ``$FMTEACH_CACHE``, then a checkout's git-ignored ``data/cache``, then
``$XDG_CACHE_HOME/fmteach`` (by default ``~/.cache/fmteach``). :class:`MissingAssetError` carries
the exact command that fixes what is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["MissingAssetError", "cache_dir"]


class MissingAssetError(FileNotFoundError):
    """An asset is not installed or not reachable; the message says how to get it."""


def _checkout_root() -> Path | None:
    """The clone fmteach is imported from, or ``None`` when it is installed (a wheel, Colab)."""
    root = Path(__file__).resolve().parent.parent
    # a checkout has the project file and the data card beside the package; site-packages has neither
    return root if (root / "pyproject.toml").is_file() and (root / "data" / "README.md").is_file() else None


def cache_dir() -> Path:
    """Where fetched assets live: ``$FMTEACH_CACHE``; else, in a checkout, its git-ignored
    ``data/cache``; else ``$XDG_CACHE_HOME/fmteach``, by default ``~/.cache/fmteach``."""
    env = os.environ.get("FMTEACH_CACHE", "").strip()
    root = _checkout_root()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if env:
        path = Path(env).expanduser()
    elif root is not None:
        path = root / "data" / "cache"
    elif xdg and Path(xdg).is_absolute():  # the XDG spec: a relative path is ignored
        path = Path(xdg) / "fmteach"
    else:
        path = Path.home() / ".cache" / "fmteach"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MissingAssetError(f"cannot create the asset cache {path} ({exc.strerror}); "
                                f"set FMTEACH_CACHE to a writable folder") from exc
    return path


def _package_dir(module: str, pip_spec: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"the Python package {module!r} is not installed; run: pip install {pip_spec}")
    return Path(next(iter(spec.submodule_search_locations)))
