"""Test-wide settings: the committed notebook outputs are the smoke profile's, and nothing may
reach the Hugging Face hub. Set before any test or notebook kernel starts (kernels inherit them)."""

import os

import pytest

os.environ["FMTEACH_PROFILE"] = "smoke"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The full tier (`python -m pytest`, what CI runs) runs everything; the quick tier
# (`python -m pytest -m "not slow"`) leaves out what is marked slow: every notebook, the tests that
# build and install the wheel, drive a browser or run the GPU dry run, and the unit tests that
# train for longer than a few seconds (marked one by one with @pytest.mark.slow).
SLOW_FILES = {"test_wheel_install.py", "test_jupyterlab_browser.py", "test_gpu_check.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: left out of the quick tier (python -m pytest -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
