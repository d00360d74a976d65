"""The project's public home is written once, in pyproject.toml: every notebook's Colab badge and
setup cell must use it, and the badge must be the only thing a lesson fetches from another host
when it is opened."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

BADGE = re.compile(r"\[!\[Open In Colab\]\((?P<image>[^)\s]+)\)\]\((?P<link>[^)\s]+)\)")
SETUP_INSTALL = re.compile(r'%pip install (?:-q )?"fmteach\[course\] @ git\+(?P<url>[^"]+)"')
# What a browser fetches by itself when a page is shown (a plain link is fetched only when clicked):
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?(?P<url>[^)\s>]+)")
FETCHING_HTML = re.compile(
    r"<(?:img|script|iframe|link|source|video|audio|embed|object)\b[^>]*?\b(?:src|href|data)\s*=\s*[\"']?"
    r"(?P<url>(?:https?:)?//[^\s\"'>]+)", re.IGNORECASE)
CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?P<url>(?:https?:)?//[^\s\"')]+)", re.IGNORECASE)
REQUIRE_PATH = re.compile(r"require\.config\([^)]*?[\"'](?P<url>(?:https?:)?//[^\"']+)", re.IGNORECASE | re.DOTALL)


def project_home() -> str:
    """``[project.urls]`` Repository (= Homepage) from pyproject.toml, without a trailing slash."""
    urls = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    if urls.get("Homepage") != urls.get("Repository"):
        raise AssertionError(f"pyproject's Homepage {urls.get('Homepage')!r} and Repository "
                             f"{urls.get('Repository')!r} differ: the project has one home")
    return urls["Repository"].rstrip("/")


def link_problems(notebook: dict, file_name: str, home: str) -> list[str]:
    """What is wrong with one notebook's Colab badge and setup cell, given the project's home URL."""
    problems = []
    cells = notebook.get("cells", [])
    title = "".join(cells[0]["source"]) if cells and cells[0]["cell_type"] == "markdown" else ""
    badges = list(BADGE.finditer(title))
    if len(badges) != 1:
        problems.append(f"the title cell has {len(badges)} Colab badges, expected 1")
    for badge in badges:
        if badge["image"] != COLAB_BADGE_IMAGE:
            problems.append(f"badge image {badge['image']} is not {COLAB_BADGE_IMAGE}")
        owner_repo = home.removeprefix("https://github.com/")
        expected = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{file_name}"
        if badge["link"] != expected:
            problems.append(f"badge links to {badge['link']}, expected {expected}")
    code = [c for c in cells if c["cell_type"] == "code"]
    setup = "".join(code[0]["source"]) if code else ""
    installs = [m["url"] for m in SETUP_INSTALL.finditer(setup)]
    if installs != [home]:
        problems.append(f"the setup cell (first code cell) installs fmteach from {installs or 'nowhere'}, "
                        f"expected one `%pip install \"fmteach[course] @ git+{home}\"`")
    return problems


def fetched_urls(notebook: dict) -> list[str]:
    """Every non-local URL a browser loads by itself when the notebook is opened: markdown images,
    and in stored HTML/Markdown/SVG outputs img/script/iframe/link sources, CSS urls, require paths."""
    found = []
    for cell in notebook.get("cells", []):
        texts = ["".join(cell["source"])] if cell["cell_type"] == "markdown" else []
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if mime in ("text/html", "text/markdown", "image/svg+xml", "application/javascript"):
                    texts.append("".join(value) if isinstance(value, list) else str(value))
        for text in texts:
            for pattern in (MARKDOWN_IMAGE, FETCHING_HTML, CSS_URL, REQUIRE_PATH):
                found += [m["url"] for m in pattern.finditer(text) if re.match(r"(https?:)?//", m["url"])]
    return found


def test_pyproject_names_the_home_once():
    home = project_home()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", home), home
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert text.count("[project.urls]") == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_setup_cell_use_the_project_home(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert link_problems(notebook, path.name, project_home()) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_badge_is_the_only_remote_fetch(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert fetched_urls(notebook) == [COLAB_BADGE_IMAGE]


def test_the_checks_catch_wrong_links():
    home = "https://github.com/fmteach/fmteach"
    good = {"cells": [
        {"cell_type": "markdown", "source": [
            f"# T\n\n[![Open In Colab]({COLAB_BADGE_IMAGE})](https://colab.research.google.com/github/fmteach/"
            f"fmteach/blob/main/notebooks/01_x.ipynb)\n"]},
        {"cell_type": "code", "source": ['%pip install -q "fmteach[course] @ git+https://github.com/fmteach/fmteach"\n'],
         "outputs": []},
    ]}
    assert link_problems(good, "01_x.ipynb", home) == []
    assert fetched_urls(good) == [COLAB_BADGE_IMAGE]
    assert "expected https://colab.research.google.com/github/fmteach/fmteach/blob/main/notebooks/02_y.ipynb" in \
        link_problems(good, "02_y.ipynb", home)[0]  # a badge copied from another lesson
    moved = link_problems(good, "01_x.ipynb", "https://github.com/someone/fork")
    assert len(moved) == 2 and "installs fmteach from ['https://github.com/fmteach/fmteach']" in moved[1]
    remote = json.loads(json.dumps(good))
    remote["cells"][0]["source"].append("![plot](https://example.org/a.png)\n")
    remote["cells"][1]["outputs"] = [{"output_type": "display_data", "data": {"text/html": [
        '<script src="https://cdn.example.org/d3.js"></script><a href="https://example.org">ok</a>',
        "<style>@import 'https://fonts.example.org/f.css';</style>"]}}]
    assert fetched_urls(remote) == [COLAB_BADGE_IMAGE, "https://example.org/a.png", "https://cdn.example.org/d3.js",
                                    "https://fonts.example.org/f.css"]
    assert "0 Colab badges" in link_problems({"cells": [{"cell_type": "markdown", "source": ["# T"]}]}, "a.ipynb", home)[0]
