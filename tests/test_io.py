"""The base layer: atomic writes, checked torch loads, mode and RNG scoping, the offline switches, decay groups,
argument checks."""

import hashlib
import json
import os
import random

import numpy as np
import pytest
import torch

from fmteach._checks import check_positive, is_int, is_number, outside
from fmteach._io import (
    CheckpointError,
    append_jsonl,
    atomic_torch_save,
    atomic_write,
    eval_mode,
    file_sha256,
    flush_denormal,
    fmteach_offline,
    hub_offline,
    sha256_hex,
    torch_load,
)
from fmteach.optim import decay_parameter_groups, linear_warmup_decay
from fmteach.seeding import preserved_rng, seeded


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "sub" / "data.txt"
    atomic_write(path, lambda tmp: tmp.write_text("old"))

    def broken(tmp):
        tmp.write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.txt"]  # no .tmp left behind


def test_atomic_write_gives_each_writer_its_own_temporary_file(tmp_path):
    """Two writers of one file at once (here one inside the other, as two processes would overlap)
    write to two temporary files in the target's folder; the last rename wins and the file is whole."""
    path = tmp_path / "vocab.json"
    seen = []

    def outer(tmp):
        seen.append(tmp)
        tmp.write_text("outer, " * 1000)
        atomic_write(path, inner)
        tmp.write_text("outer, whole")

    def inner(tmp):
        seen.append(tmp)
        tmp.write_text("inner, whole")

    atomic_write(path, outer)
    assert seen[0] != seen[1] and {p.parent for p in seen} == {tmp_path} and all(p.name.endswith(".tmp") for p in seen)
    assert path.read_text() == "outer, whole" and [p.name for p in tmp_path.iterdir()] == ["vocab.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the mode of any new file, not mkstemp's 0o600


def _write_at_once(path, versions: dict[str, str]) -> list[BaseException]:
    """Each of ``versions`` written to ``path`` by a thread of its own through :func:`atomic_write`; returns
    what they raised. Barriers make the overlap certain: every writer has opened its temporary file
    before any writes, and every writer has written all its lines before any renames."""
    import threading

    opened, written = (threading.Barrier(len(versions), timeout=10) for _ in range(2))
    errors = []

    def writer(text):
        def fill(tmp):
            with open(tmp, "w") as handle:
                opened.wait()
                for line in text.splitlines(keepends=True):
                    handle.write(line)
                    handle.flush()
            written.wait()
        try:
            atomic_write(path, fill)
        except BaseException as error:  # any failure of a writer fails the test
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(text,)) for text in versions.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_two_threads_writing_one_file_at_once_leave_one_whole_version(tmp_path):
    """Two writers of one path at the same time. With one shared ``<name>.tmp`` the two versions mixed
    in one file and the second rename found nothing to move; with a temporary file each, no writer
    fails and the target holds one writer's whole text."""
    path = tmp_path / "streams.txt"
    versions = {name: "".join(f"{name} {i:04d}\n" for i in range(400)) for name in ("first", "second")}
    for _ in range(10):
        assert _write_at_once(path, versions) == []
        assert path.read_text() in versions.values()
        assert [p.name for p in tmp_path.iterdir()] == ["streams.txt"]  # no temporary file left behind


def test_sha256_of_bytes_and_of_a_file(tmp_path):
    data = bytes(range(256)) * 5000  # more than one 1 MiB chunk
    (tmp_path / "blob").write_bytes(data)
    assert file_sha256(tmp_path / "blob") == sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_torch_load_round_trip_and_map_location(tmp_path):
    path = atomic_torch_save({"w": torch.arange(3.0)}, tmp_path / "x.pt")
    got = torch_load(path, map_location="cpu", required_keys=("w",))
    torch.testing.assert_close(got["w"], torch.arange(3.0))


def test_torch_load_names_the_file_for_each_bad_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt.*expected a checkpoint"):
        torch_load(tmp_path / "missing.pt", expected="a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is empty"):
        torch_load(tmp_path / "empty.pt")
    good = atomic_torch_save({"w": torch.ones(100)}, tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt cannot be read as .*truncated"):
        torch_load(tmp_path / "cut.pt")
    (tmp_path / "notes.pt").write_text("these are my notes")
    with pytest.raises(CheckpointError, match="notes.pt cannot be read"):
        torch_load(tmp_path / "notes.pt")
    with pytest.raises(CheckpointError, match=r"good.pt holds no 'model'"):
        torch_load(tmp_path / "good.pt", required_keys=("model",))


def test_torch_load_refuses_arbitrary_objects(tmp_path):
    """weights_only=True: a pickle that would build an arbitrary object is refused, not executed."""
    torch.save({"obj": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")  # a whole module, not weights
    with pytest.raises(CheckpointError, match="module.pt"):
        torch_load(tmp_path / "module.pt")


def test_eval_mode_restores_the_mode_even_after_an_error():
    model = torch.nn.Dropout(0.5)
    with eval_mode(model):
        assert not model.training
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            model.train()
            raise RuntimeError("boom")
    assert not model.training


def test_flush_denormal_is_scoped():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-denormal mode")
    tiny = 1e-323  # a float64 subnormal
    with flush_denormal():
        assert torch.tensor([tiny], dtype=torch.float64).item() == 0.0
    assert torch.tensor([tiny], dtype=torch.float64).item() > 0.0


@pytest.mark.parametrize("value, expected", [("1", True), (" TRUE ", True), ("on", True), ("0", False), ("", False),
                                             ("no", False)])
def test_offline_switches(monkeypatch, value, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setenv("FMTEACH_OFFLINE", value)
    assert hub_offline() is expected and fmteach_offline() is expected


def test_seeded_draws_from_the_seed_and_gives_the_callers_rng_back():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        inside = torch.rand(3)
    torch.testing.assert_close(torch.rand(3), expected_next)  # as if the block had not run
    torch.manual_seed(7)
    torch.testing.assert_close(inside, torch.rand(3))
    with pytest.raises(TypeError, match="seed must be an int"):
        with seeded(1.5):
            pass


def test_preserved_rng_covers_python_and_numpy():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with preserved_rng():
        random.seed(99), np.random.seed(99), torch.manual_seed(99)
        random.random(), np.random.rand(), torch.rand(1)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_decay_groups_split_matrices_from_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    model[0].weight.requires_grad_(False)
    decay, no_decay = decay_parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decay["params"]] == [(4, 4)]  # the frozen embedding is left out
    assert [tuple(p.shape) for p in no_decay["params"]] == [(4,), (4,), (4,)]  # bias, LN gain, LN shift
    with pytest.raises(ValueError, match="weight_decay must be a number >= 0, got -1"):
        decay_parameter_groups(model, -1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        decay_parameter_groups(model.requires_grad_(False), 0.1)


def test_is_int_and_check_positive():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(True) and not is_int(2.0) and not is_int("3")
    assert is_number(0.5) and is_number(np.float32(2)) and is_number(3) and not is_number(False) and not is_number("1")
    check_positive(a=1, b=np.int64(2))
    check_positive(limit=None, allow_none=True)
    for bad in (0, -1, 2.5, True, None, "3"):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bad!r}"):
            check_positive(batch_size=bad)
    with pytest.raises(ValueError, match="max_steps must be a positive int or None, got 0"):
        check_positive(max_steps=0, allow_none=True)


def test_outside_checks_values_on_the_cpu_only():
    ids = torch.tensor([[0, 3], [4, 1]])
    assert not outside(ids, 5) and outside(ids, 4) and outside(-ids - 1, 10)
    assert not outside(torch.empty(0, dtype=torch.long), 1)
    labels = torch.tensor([1, -100, 0])
    assert outside(labels, 2) and not outside(labels, 2, ignore=-100)
    assert not outside(torch.full((3,), 7, device="meta"), 2)  # not a CPU tensor: not read back


def test_linear_warmup_decay():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factor = linear_warmup_decay(optimizer, 2, 5).lr_lambdas[0]
    assert [factor(s) for s in range(6)] == [0.5, 1.0, 1.0, 2 / 3, 1 / 3, 0.0]
    assert linear_warmup_decay(optimizer, 0, 4).lr_lambdas[0](0) == 1.0  # no warm-up


def test_measured_results_reads_the_first_folder_that_has_the_file(tmp_path):
    import json

    from fmteach.notebook import measured_results

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "lesson99_cpu.json").write_text(json.dumps({"values": {"x": 0.5}}))
    assert measured_results("lesson99_cpu.json", search=[first, second]) == {"values": {"x": 0.5}}
    (first / "lesson99_cpu.json").write_text(json.dumps({"values": {"x": 0.25}}))
    assert measured_results("lesson99_cpu.json", search=[first, second])["values"]["x"] == 0.25
    assert measured_results("missing.json", search=[first, second]) is None  # not installed: None, no error
    (first / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        measured_results("broken.json", search=[first])
    with pytest.raises(ValueError, match="filename must be a file name ending in .json"):
        measured_results("../secrets.txt")


def test_every_committed_lesson_results_file_is_found_from_the_notebooks_folder(monkeypatch):
    from pathlib import Path

    from fmteach.notebook import measured_results

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo / "notebooks")
    for path in sorted((repo / "benchmarks" / "results").glob("lesson*.json")):
        record = measured_results(path.name)
        assert record is not None and "how" in record, path.name


def test_near_holds_a_headline_number_to_its_recorded_value_in_that_profile_only(monkeypatch):
    from fmteach.notebook import near

    monkeypatch.setenv("FMTEACH_PROFILE", "smoke")
    assert near(0.905, 0.01, smoke=0.901) == 0.905
    with pytest.raises(AssertionError, match=r"0\.9300 is not within 0\.01 of 0\.9010.*smoke"):
        near(0.93, 0.01, smoke=0.901)
    with pytest.raises(AssertionError):
        near(float("nan"), 0.01, smoke=0.901)
    monkeypatch.setenv("FMTEACH_PROFILE", "cpu")
    assert near(0.5, 0.01, smoke=0.901) == 0.5          # no cpu value recorded: nothing to hold it to
    with pytest.raises(AssertionError, match="cpu"):
        near(0.5, 0.01, smoke=0.901, cpu=0.84)
    for bad in (dict(smok=0.9), {}):
        with pytest.raises(ValueError, match="by profile"):
            near(0.5, 0.01, **bad)
    with pytest.raises(ValueError, match="tol"):
        near(0.5, 0, smoke=0.5)


def test_append_jsonl_adds_one_line_per_record_and_nothing_without_a_path(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"event": "start", "out": tmp_path})  # a Path is written as its text
    append_jsonl(path, {"event": "eval", "loss": 1.5})
    append_jsonl(None, {"event": "lost"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"event": "start", "out": str(tmp_path)},
                                                    {"event": "eval", "loss": 1.5}]
