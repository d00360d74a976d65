"""One switch for run sizes, the device, and seeds.

``FMTEACH_PROFILE`` picks how big every lesson runs:

* ``smoke`` -- what CI runs: every notebook end to end in about a minute on 2 CPU cores;
* ``cpu``   -- real results on a laptop in minutes;
* ``gpu``   -- the headline results on one GPU.

Unset, the profile follows the hardware: ``gpu`` when CUDA is available, else ``cpu``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu")
PROFILE_ENV = "FMTEACH_PROFILE"


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


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a run prints the same numbers twice."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def describe_environment() -> str:
    """One line for a notebook's setup cell: profile, device and library versions."""
    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else device.type
    return (
        f"profile={get_profile()}  device={name}  torch={torch.__version__}  "
        f"threads={torch.get_num_threads()}"
    )
