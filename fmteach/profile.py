"""One switch for run sizes; the device, its training precision, and seeds.

``FMTEACH_PROFILE`` picks how big every lesson runs:

* ``smoke`` -- what CI runs: every notebook end to end in about a minute on 2 CPU cores;
* ``cpu``   -- real results on a laptop in minutes;
* ``gpu``   -- the headline results on one GPU.

Unset, the profile follows the hardware: ``gpu`` when CUDA is available, else ``cpu``.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

from ._checks import is_int

PROFILES = ("smoke", "cpu", "gpu")
PROFILE_ENV = "FMTEACH_PROFILE"
DEFAULT_SEED = 0  # every ``seed=`` argument of the package defaults to this


def get_profile() -> str:
    """The active profile: ``$FMTEACH_PROFILE`` if set, else ``gpu`` with CUDA, else ``cpu``."""
    value = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not value:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={value!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return value


def by_profile(smoke, cpu, gpu, profile: str | None = None):
    """Pick one of three values by profile: ``n_steps = by_profile(smoke=20, cpu=2000, gpu=5000)``."""
    profile = get_profile() if profile is None else profile
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[profile]


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU (or ``prefer`` if given)."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The 16-bit type to train in on ``device``, or ``None`` for plain float32.

    bf16 on a CUDA GPU that computes it natively (A100, L4, H100, RTX 30xx and newer); fp16 on
    older GPUs such as Colab's T4 or a V100, where the caller must scale the loss
    (``torch.amp.GradScaler``) because fp16 gradients underflow; ``None`` on the CPU and MPS,
    where the lessons train in float32.
    """
    if isinstance(device, str):
        device = torch.device(device)
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device or a string such as 'cuda', got {type(device).__name__}")
    if device.type != "cuda":
        return None
    # including_emulation=False: on a T4 torch would otherwise say yes and emulate bf16, slowly.
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


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


def describe_environment() -> str:
    """One line for a notebook's setup cell: profile, device and library versions."""
    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else device.type
    return (
        f"profile={get_profile()}  device={name}  torch={torch.__version__}  "
        f"threads={torch.get_num_threads()}"
    )
