"""Processes and random state for :func:`fmteach.train.train`: join the ``torchrun`` process group
(gloo on the CPU, nccl on CUDA), build a cache file once while the other processes wait
(:func:`build_once`), and capture/restore every RNG a run draws from, for exact resume."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ._io import atomic_write
from .profile import get_device

__all__ = ["build_once", "cleanup_distributed", "setup_distributed"]


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


def build_once(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Make sure the file ``path`` exists: ``write(tmp)`` writes it (through :func:`fmteach._io.atomic_write`)
    when it is missing, in one process per machine; then every process may read it.

    Without a process group this is "write it if it is missing". Under ``torchrun`` (a process group
    initialised) the first process of each machine (``LOCAL_RANK`` 0) writes it while the others
    wait at a barrier, so N processes with an empty cache build it once, not N times into the same
    file; every process passes the barrier, whether the file was there or not, so none waits for
    ever. If the writer fails, the others go on after the barrier and find no file."""
    path = Path(path)
    if not (dist.is_available() and dist.is_initialized()):
        if not path.exists():
            atomic_write(path, write)
        return path
    try:
        if int(os.environ.get("LOCAL_RANK", dist.get_rank())) == 0 and not path.exists():
            atomic_write(path, write)
    finally:
        dist.barrier()
    if not path.exists():
        raise FileNotFoundError(f"{path}: the first process of this machine did not write it (see its error)")
    return path


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
