"""One switch for run sizes; the device and its training precision (seeds: :mod:`fmteach.seeding`).

``FMTEACH_PROFILE`` picks how big every lesson runs:

* ``smoke`` -- what CI runs: every notebook end to end in about a minute on 2 CPU cores;
* ``cpu``   -- real results on a laptop in minutes;
* ``gpu``   -- the headline results on one GPU.

Unset, the profile follows the hardware: ``gpu`` when CUDA is available, else ``cpu``.
"""

from __future__ import annotations

import os

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


def describe_environment() -> str:
    """One line for a notebook's setup cell: profile, device and library versions."""
    device = get_device()
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else device.type
    return (
        f"profile={get_profile()}  device={name}  torch={torch.__version__}  "
        f"threads={torch.get_num_threads()}"
    )
