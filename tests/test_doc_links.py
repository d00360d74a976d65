"""Links that work. In the README, CONTRIBUTING, SETUP and every notebook's markdown cells:

* every relative link (and image) names a file of the repository that exists, and a ``#anchor``
  into a Markdown file names one of its headings (as GitHub spells heading anchors);
* within one document, an external (http/https) link target is written once. Images are not link
  targets, so the Colab badge's picture may repeat; each lesson's badge links to its own Colab page.

Links inside code (fenced blocks and `inline code`) are text, not links, and are not checked.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / name for name in ("README.md", "CONTRIBUTING.md", "SETUP.md")]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_URL = r"<?(?P<url>(?:[^()\s<>]|\([^()\s]*\))+)>?(?:\s+\"[^\"]*\")?\s*"
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*" + _URL + r"\)")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*" + _URL + r"\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(?P<url>\S+?)>?(?:\s|$)", re.MULTILINE)
AUTOLINK = re.compile(r"<(?P<url>https?://[^>\s]+)>")
HTML_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*[\"'](?P<url>[^\"']+)", re.IGNORECASE)
HTML_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"'](?P<url>[^\"']+)", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)


def without_code(text: str) -> str:
    return INLINE_CODE.sub(" ", FENCE.sub(" ", text))


def links(markdown: str) -> list[tuple[str, str]]:
    """(kind, url) of every link in a piece of Markdown, kind 'image' or 'link', in reading order
    within each kind. An image inside a link ([![badge](svg)](page)) gives both."""
    text = without_code(markdown)
    found = [("image", m["url"]) for pattern in (IMAGE, HTML_IMAGE) for m in pattern.finditer(text)]
    text = IMAGE.sub("image", text)
    found += [("link", m["url"]) for pattern in (LINK, REFERENCE, AUTOLINK, HTML_LINK) for m in pattern.finditer(text)]
    return found


def github_anchors(markdown: str) -> set[str]:
    """The #anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces to hyphens, a repeated heading numbered -1, -2, …"""
    seen: Counter[str] = Counter()
    anchors = set()
    for m in HEADING.finditer(FENCE.sub(" ", markdown)):
        title = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", m["title"]).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


def documents() -> list[tuple[Path, str, str]]:
    """(file, where, markdown): one entry per page, one per markdown cell of each notebook."""
    found = [(page, "", page.read_text(encoding="utf-8")) for page in PAGES if page.is_file()]
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        found += [(path, f"cell {i}", "".join(cell["source"])) for i, cell in enumerate(cells)
                  if cell["cell_type"] == "markdown"]
    return found


def is_external(url: str) -> bool:
    return re.match(r"[a-z][a-z0-9+.-]*:", url, re.IGNORECASE) is not None or url.startswith("//")


def broken_local_links(document: Path, markdown: str, root: Path = REPO) -> list[str]:
    """What is wrong with the relative links of one piece of Markdown that lives in ``document``,
    a file of the repository at ``root``."""
    problems = []
    for _, url in links(markdown):
        if is_external(url):
            continue
        target, _, anchor = unquote(url).partition("#")
        target = target.partition("?")[0]
        path = (document.parent / target).resolve() if target else document
        if not path.is_relative_to(root):
            problems.append(f"{url}: outside the repository")
        elif not path.exists():
            problems.append(f"{url}: no file {path.relative_to(root)}")
        elif anchor and path.suffix == ".md" and anchor not in github_anchors(path.read_text(encoding="utf-8")):
            problems.append(f"{url}: {path.relative_to(root)} has no heading #{anchor}")
    return problems


def repeated_external_links(markdowns: list[tuple[str, str]]) -> list[str]:
    """External link targets written more than once in one document, given its (where, markdown) parts."""
    places: dict[str, list[str]] = {}
    for where, markdown in markdowns:
        for kind, url in links(markdown):
            if kind == "link" and re.match(r"https?://", url):
                places.setdefault(url.rstrip("/"), []).append(where or "the page")
    return [f"{url} written {len(at)} times ({', '.join(at)})" for url, at in places.items() if len(at) > 1]


def test_the_pages_exist():
    missing = [page.name for page in PAGES if not page.is_file()]
    assert missing == [], f"missing: {missing}"


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    problems = [f"{where or path.name}: {problem}" for doc, where, markdown in documents() if doc == path
                for problem in broken_local_links(doc, markdown)]
    assert problems == []


@pytest.mark.parametrize("path", PAGES + NOTEBOOKS, ids=lambda p: p.name)
def test_each_external_link_is_written_once_per_document(path):
    assert repeated_external_links([(where, markdown) for doc, where, markdown in documents() if doc == path]) == []


def test_the_readme_links_every_lesson_and_the_pages_beside_it():
    readme_links = {url for _, url in links((REPO / "README.md").read_text(encoding="utf-8"))}
    expected = {f"notebooks/{p.name}" for p in NOTEBOOKS} | {"CONTRIBUTING.md", "SETUP.md", "benchmarks/RESULTS.md"}
    assert expected - readme_links == set()


def test_the_checks_catch_broken_and_repeated_links(tmp_path):
    sample = (
        "# Set up\n\n## Colab, and JupyterLab\n\n"
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.example/01)\n"
        "See [the data card](data/README.md#splits), [setup](#colab-and-jupyterlab), [gone](no/such.md),\n"
        "[bad anchor](#nowhere), [up](../../outside.md), <https://example.org/a>, [again](https://example.org/a/)\n"
        "and `[in code](missing.md)`.\n\n```\n[in a block](missing.md)\n```\n\n[ref]: https://example.org/b\n")
    assert links(sample) == [
        ("image", "https://colab.research.google.com/assets/colab-badge.svg"), ("link", "https://colab.example/01"),
        ("link", "data/README.md#splits"), ("link", "#colab-and-jupyterlab"), ("link", "no/such.md"),
        ("link", "#nowhere"), ("link", "../../outside.md"), ("link", "https://example.org/a/"),
        ("link", "https://example.org/b"), ("link", "https://example.org/a")]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.md").write_text("# Data card\n\n## Splits\n", encoding="utf-8")
    (tmp_path / "page.md").write_text(sample, encoding="utf-8")
    assert broken_local_links(tmp_path / "page.md", sample, root=tmp_path) == [
        "no/such.md: no file no/such.md", "#nowhere: page.md has no heading #nowhere",
        "../../outside.md: outside the repository"]
    assert repeated_external_links([("cell 1", sample), ("cell 2", "[twice](https://colab.example/01)")]) == [
        "https://colab.example/01 written 2 times (cell 1, cell 2)",
        "https://example.org/a written 2 times (cell 1, cell 1)"]
    assert github_anchors("# A `code` title\n## Lessons\n## Lessons\n```\n# not a heading\n```\n") == {
        "a-code-title", "lessons", "lessons-1"}


def test_the_readme_names_each_lesson_as_the_course_map_does():
    from fmteach.viz.diagrams import COURSE_LESSONS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d\d) \| \[([^\]]+)\]\(notebooks/(\d\d)_", readme, re.MULTILINE)
    assert [(number, title) for number, title, _ in rows] == [(number, title) for number, title, *_ in COURSE_LESSONS]
    assert all(number == file_number for number, _, file_number in rows)
