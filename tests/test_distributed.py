"""fmteach.distributed with two real processes (gloo on the CPU, started as torchrun would): they
join one process group, and a missing cache file is built once."""

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from fmteach.distributed import build_once, cleanup_distributed, setup_distributed


def _two_processes_build_one_file(rank: int, world: int, folder: str, port: int) -> None:
    """One process of two: both ask for the same missing files; only rank 0 may write them."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),  # what torchrun sets
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    assert setup_distributed() == (rank, world, torch.device("cpu"))
    try:
        def write(tmp):
            with open(f"{folder}/writers.log", "a") as log:
                log.write(f"{rank}\n")
            time.sleep(0.5)  # a slow build: the other process must wait for it, not build the file too
            tmp.write_text(f"built by rank {rank}")

        def fail(tmp):
            raise RuntimeError("the build broke")

        # a failing build: rank 0 gets its error, rank 1 is let through the barrier and finds no file
        expected = RuntimeError if rank == 0 else FileNotFoundError
        try:
            build_once(f"{folder}/broken.txt", fail)
        except expected:
            pass
        else:
            raise AssertionError(f"rank {rank}: no {expected.__name__}")
        path = build_once(f"{folder}/cache/streams.txt", write)
        assert path.read_text() == "built by rank 0", path.read_text()
        build_once(path, write)  # there already: nobody writes, both pass the barrier
    finally:
        cleanup_distributed()


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA, setup_distributed joins with nccl, one GPU per process")
def test_two_gloo_processes_join_and_build_a_missing_file_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_two_processes_build_one_file, args=(2, str(tmp_path), port), nprocs=2, join=True)
    assert (tmp_path / "writers.log").read_text() == "0\n"  # written once, by rank 0
    assert (tmp_path / "cache" / "streams.txt").read_text() == "built by rank 0"
    assert not (tmp_path / "broken.txt").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["streams.txt"]  # no temporary file left


def test_build_once_without_a_process_group(tmp_path):
    calls = []
    path = tmp_path / "sub" / "vocab.json"
    for _ in range(2):
        assert build_once(path, lambda tmp: (calls.append(tmp), tmp.write_text("{}"))) == path
    assert len(calls) == 1 and path.read_text() == "{}"
    with pytest.raises(RuntimeError, match="broke"):
        build_once(tmp_path / "other.json", lambda tmp: (_ for _ in ()).throw(RuntimeError("broke")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
