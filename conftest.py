"""Test-wide settings: the committed notebook outputs are the smoke profile's, and nothing may
reach the Hugging Face hub. Set before any test or notebook kernel starts (kernels inherit them)."""

import os

import pytest

os.environ["FMTEACH_PROFILE"] = "smoke"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def other_cpu_capability(cpuinfo: str) -> str | None:
    """A vector-kernel level below this CPU's best, for ``ATEN_CPU_CAPABILITY``: the notebooks are
    executed for committing with the CPU's own kernels and checked here with another level's, so a
    stored number that moves between CPUs (a live-trained loss printed to its last digits) fails on
    the machine that wrote it, not only on someone else's. ``None`` where x86 flags are not found."""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "avx2"
    if "avx2" in flags:
        return "default"
    return None


try:
    with open("/proc/cpuinfo", encoding="utf-8") as _cpuinfo:
        _level = other_cpu_capability(_cpuinfo.read())
except OSError:  # not Linux: no check of this kind
    _level = None
if _level is not None:
    os.environ.setdefault("ATEN_CPU_CAPABILITY", _level)  # notebook kernels inherit it

# The full tier (`python -m pytest`, what CI runs) runs everything; the quick tier
# (`python -m pytest -m "not slow"`) leaves out what is marked slow: every notebook, the tests that
# build and install the wheel, drive a browser, run the GPU dry run or start notebook kernels, and the unit tests that
# train for longer than a few seconds (marked one by one with @pytest.mark.slow).
SLOW_FILES = {"test_wheel_install.py", "test_jupyterlab_browser.py", "test_gpu_check.py", "test_run_lesson.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: left out of the quick tier (python -m pytest -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
