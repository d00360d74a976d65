"""Seeds: the same profile on the same machine prints the same numbers twice.

``DEFAULT_SEED`` is every ``seed=`` argument's default. ``set_seed`` reseeds the caller's random
state (a notebook's setup cell does); library code draws inside ``seeded(seed)``, which gives the
caller's state back afterwards, so a library call never reseeds the caller.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from ._checks import is_int

__all__ = ["DEFAULT_SEED", "set_seed", "seeded", "preserved_rng"]

DEFAULT_SEED = 0  # every ``seed=`` argument of the package defaults to this


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a run prints the same numbers twice."""
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)  # a NumPy integer too: random.seed takes Python's int only
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """``with seeded(seed):`` draws torch's random numbers (weights, dropout masks) from ``seed``
    inside the block and gives back the caller's RNG state after it, on the CPU and every CUDA
    device. Library functions seed this way, so a call never reseeds the caller's global RNG."""
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Give back the caller's random state (torch on the CPU and every CUDA device, Python's ``random``,
    NumPy's global RNG) when the block ends, whatever the block seeded or drew."""
    py, npy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
