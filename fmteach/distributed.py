"""Processes and random state for :func:`fmteach.train.train`: join the ``torchrun`` process group
(gloo on the CPU, nccl on CUDA) and capture/restore every RNG a run draws from, for exact resume."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.distributed as dist

from .profile import get_device

__all__ = ["cleanup_distributed", "setup_distributed"]


def setup_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; joins the process group when started by ``torchrun`` with several processes.

    The device follows :func:`fmteach.profile.get_device` (CUDA, then MPS, then the CPU), the rule of
    the notebooks; with several processes and no CUDA it is the CPU (gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    else:  # one process: the notebooks' rule (MPS, then the CPU); several: gloo, which needs CPU tensors
        device = get_device() if world == 1 else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), dist.get_world_size(), device) if dist.is_initialized() else (0, 1, device)


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _rng_state(data_generator: torch.Generator) -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],  # lists: loadable with weights_only
        "data": data_generator.get_state(),
    }


def _set_rng_state(state: dict, data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    data_generator.set_state(state["data"])
