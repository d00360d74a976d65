"""The package reads in layers: a module imports only from its own layer or the layers below it.

    base      _io _checks profile seeding progress optim thresholds notebook outputs   (no model, no data)
    core      masks attention model bert bert_config bert_loading cache assets text_datasets lm_data wordpiece viz/ bertviz_offline
              train_config distributed                              (the pieces lessons build)
    training  train mlm mlm_probes pretrain_mlm                              (loops and objectives)
    lessons   finetune/ fewshot leakage bias challenges applications/ course_models/
    top       exercises/ and the command lines (train_lm, course_models.__main__, finetune.__main__, pretrain_mlm.__main__)

``finetune.cli`` is a thin command line kept beside the library code it runs (``python -m
fmteach.finetune``): it imports nothing above its layer. ``pretrain_mlm``'s command line is its own
``__main__`` module, in the top layer.

A new module must be given a layer here, which is the point: its author decides where it belongs.
Imports inside functions count too (a lazy import is still a dependency). The test also fails on
an import cycle among module-level imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fmteach"

BASE, CORE, TRAINING, LESSONS, TOP = range(5)
NAMES = ["base", "core", "training", "lessons", "top"]

LAYERS = {
    "fmteach._io": BASE, "fmteach._checks": BASE, "fmteach.profile": BASE, "fmteach.progress": BASE, "fmteach.optim": BASE,
    "fmteach.thresholds": BASE, "fmteach.notebook": BASE, "fmteach.outputs": BASE, "fmteach.seeding": BASE,
    "fmteach": CORE,  # the root re-exports attention, masks and the notebook setup: it must stay light
    "fmteach.masks": CORE, "fmteach.attention": CORE, "fmteach.model": CORE, "fmteach.bert": CORE, "fmteach.bert_config": CORE,
    "fmteach.bert_loading": CORE, "fmteach.cache": CORE, "fmteach.text_datasets": CORE, "fmteach.assets": CORE, "fmteach.lm_data": CORE, "fmteach.viz": CORE,
    "fmteach.bertviz_offline": CORE, "fmteach.train_config": CORE, "fmteach.distributed": CORE,
    "fmteach.train": TRAINING, "fmteach.mlm": TRAINING, "fmteach.wordpiece": CORE, "fmteach.mlm_probes": TRAINING, "fmteach.pretrain_mlm": TRAINING,
    "fmteach.finetune": LESSONS, "fmteach.fewshot": LESSONS, "fmteach.leakage": LESSONS, "fmteach.bias": LESSONS,
    "fmteach.challenges": LESSONS, "fmteach.applications": LESSONS, "fmteach.course_models": LESSONS,
    "fmteach.exercises": TOP, "fmteach.train_lm": TOP,
    "fmteach.finetune.__main__": TOP, "fmteach.course_models.__main__": TOP, "fmteach.pretrain_mlm.__main__": TOP,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """The layer of ``module``: its own entry, else that of the closest package above it."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in LAYERS:
            return LAYERS[name]
    return None


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported fmteach module, line, at module level)`` for every import in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "fmteach":
                continue
            # "from . import viz" / "from fmteach import exercises": each name may be a module
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                is_module = any((PACKAGE.parent / candidate.replace(".", "/")).with_suffix(s).exists()
                                for s in (".py",)) or (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                found.append((candidate if is_module else target, node.lineno, id(node) in top_level))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "fmteach":
                    found.append((alias.name, node.lineno, id(node) in top_level))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in MODULES if layer_of(module_name(p)) is None]
    assert not missing, f"give these modules a layer in tests/test_layers.py: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_higher_layer(path):
    mine = layer_of(module_name(path))
    upward = [f"line {line}: {target} ({NAMES[layer_of(target)]})" for target, line, _ in imports_of(path)
              if layer_of(target) is not None and layer_of(target) > mine]
    assert not upward, f"{module_name(path)} ({NAMES[mine]}) imports upward: " + "; ".join(upward)


def test_no_import_cycles_at_module_level():
    graph = {module_name(p): {t for t, _, top in imports_of(p) if top and t != module_name(p)} for p in MODULES}
    # a package's __init__ importing its own submodules is how re-exports work, not a cycle
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not (t.startswith(name + ".") or name.startswith(t + "."))}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt in graph and not state.get(nxt):
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The scanner itself: a base module that imports a lesson module is caught, lazily or not."""
    fake = tmp_path / "fmteach"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "profile.py").write_text("def f():\n    from .finetune import encode\n")
    (fake / "finetune.py").write_text("x = 1\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = imports_of(fake / "profile.py")
    assert found == [("fmteach.finetune", 2, False)]
    assert layer_of("fmteach.finetune") > layer_of("fmteach.profile")
