"""Offline bertviz: the views really draw in a browser with the network cut off.

The browser tests load the page in headless Chromium (no network: a dead proxy and a resolver that
finds nothing), dump the DOM after the JavaScript ran, and count the SVG lines each view drew. Without
Chromium they are skipped, unless ``FMTEACH_REQUIRE_CHROMIUM`` is set (CI sets it after running
``.ci/install_chromium.sh``): then they fail.
"""

import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser

import pytest
import torch

from fmteach import bertviz_offline
from fmteach.assets import pretrained_bert
from fmteach.bertviz_offline import PIP_INSTALL, head_view, model_view, offline_page
from fmteach.cache import MissingAssetError

N_LAYERS, N_HEADS, T = 2, 3, 5
# Token text that would end an inline <script> if it were not escaped.
TRICKY_TOKENS = ["[CLS]", "</script>", "<!--", "café", "[SEP]"]


@pytest.fixture(scope="module")
def stacked_attention():
    """Our models' layout: one (layers, heads, T, T) tensor, rows summing to 1."""
    generator = torch.Generator().manual_seed(0)
    return torch.softmax(torch.randn(N_LAYERS, N_HEADS, T, T, generator=generator), dim=-1)


@pytest.fixture(scope="module")
def minilm_attention():
    """Hugging Face's layout from the packaged MiniLM: a tuple of 6 (1, 12, T, T) tensors."""
    from transformers import AutoModel, AutoTokenizer

    path = pretrained_bert("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    encoded = tokenizer("The cat sat on the mat.", return_tensors="pt")
    with torch.no_grad():
        attentions = model(**encoded, output_attentions=True).attentions
    return attentions, tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])


# ----------------------------------------------------------------------------------------------
# Headless Chromium


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium's path; asked for first, so a skip comes before MiniLM is loaded."""
    path = shutil.which("chromium")
    if path:
        return path
    if os.environ.get("FMTEACH_REQUIRE_CHROMIUM"):
        pytest.fail("FMTEACH_REQUIRE_CHROMIUM is set but chromium is not installed; run .ci/install_chromium.sh")
    pytest.skip("chromium is not installed (.ci/install_chromium.sh installs it)")


def render(browser: str, page: str, tmp_path) -> tuple[str, str]:
    """The DOM after the page's JavaScript ran, and Chromium's log (console messages included)."""
    page_file = tmp_path / "page.html"
    page_file.write_text(page, encoding="utf-8")
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", page_file.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "</html>" in done.stdout, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout, done.stderr


class ViewCounter(HTMLParser):
    """Per bertviz view (its root ``<div id="bertviz-...">``): tag counts and ``<text>`` contents."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []  # (tag, id of the view it lies in)
        self.tags: dict[str, Counter] = {}
        self.texts: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        view = self.stack[-1][1] if self.stack else None
        if view is not None:
            self.tags[view][tag] += 1
        element_id = dict(attrs).get("id") or ""
        if tag == "div" and element_id.startswith("bertviz-"):
            view = element_id
            self.tags[view], self.texts[view] = Counter(), []
        if tag not in self.VOID:
            self.stack.append((tag, view))

    def handle_startendtag(self, tag, attrs):
        if self.stack and self.stack[-1][1] is not None:
            self.tags[self.stack[-1][1]][tag] += 1

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "text" and self.stack[-1][1] is not None and data.strip():
            self.texts[self.stack[-1][1]].append(data.strip())


def views_in(dom: str) -> tuple[list[Counter], list[list[str]]]:
    counter = ViewCounter()
    counter.feed(dom)
    counter.close()
    return list(counter.tags.values()), list(counter.texts.values())


def assert_offline(page: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE), "a <script src=...> would need the network"
    assert not re.search(r"""\bsrc\s*=\s*["']?https?://""", page, re.IGNORECASE)
    assert "cdnjs" not in page and "require.config" not in page and "requirejs(" not in page


def test_head_and_model_view_draw_offline_on_one_page(browser, minilm_attention, stacked_attention, tmp_path):
    attentions, tokens = minilm_attention
    n_layers, n_heads, n = len(attentions), attentions[0].shape[1], len(tokens)
    fragments = [
        "<h2>MiniLM</h2>",
        head_view(attentions, tokens, html_action="return"),
        model_view(attentions, tokens, html_action="return"),
        "<h2>Stacked tensors</h2>",
        head_view(stacked_attention, TRICKY_TOKENS, sentence_b_start=3, layer=1, heads=[0, 2], html_action="return"),
        model_view(stacked_attention.unsqueeze(1), TRICKY_TOKENS, display_mode="light",
                   include_layers=[1], include_heads=[0, 2], html_action="return"),
    ]
    page = offline_page(*fragments, title="head & model view")
    assert_offline(page)
    libraries = bertviz_offline._libraries_script()
    assert page.count(libraries) == 1 and page.index(libraries) < page.index("<body>")  # inlined once, in <head>
    assert len(set(re.findall(r'id="(bertviz-[0-9a-f]+)"', page))) == 4  # every view has its own root
    # every fragment sits in its own horizontally scrolling box (a 12-head model view is ~1,300 px wide)
    assert page.count('<div class="fmteach-view" style="overflow-x:auto; max-width:100%">') == len(fragments)

    dom, log = render(browser, page, tmp_path)
    assert "Uncaught" not in log, log[-3000:]
    tags, texts = views_in(dom)
    assert len(tags) == 4
    # head view: one line per head x query x key of the shown layer; model view: per layer x head too
    assert [view["svg"] for view in tags] == [1, 1, 1, 1]
    assert [view["line"] for view in tags] == [n_heads * n * n, n_layers * n_heads * n * n, N_HEADS * T * T, 1 * 2 * T * T]
    assert texts[0].count("cat") == 2 and texts[0].count("[SEP]") == 2  # tokens on both sides
    assert tags[0]["rect"] >= n_heads  # the head-colour checkboxes
    assert texts[2].count("</script>") == 2 and texts[2].count("<!--") == 2 and "café" in texts[2]
    assert "Sentence A -> Sentence B" in dom  # the sentence-pair filter of the third view


def test_views_inlined_per_fragment_still_draw(browser, stacked_attention, tmp_path):
    """Two fragments pasted side by side, each carrying its libraries (as in two notebook cells)."""
    first = head_view(stacked_attention, TRICKY_TOKENS, html_action="return")
    second = model_view(list(stacked_attention.unsqueeze(1)), TRICKY_TOKENS, html_action="return")
    page = '<!DOCTYPE html><meta charset="utf-8">' + first + second
    assert page.count(bertviz_offline._libraries_script()) == 2
    assert_offline(page)
    dom, log = render(browser, page, tmp_path)
    assert "Uncaught" not in log, log[-3000:]
    tags, _ = views_in(dom)
    assert [view["line"] for view in tags] == [N_HEADS * T * T, N_LAYERS * N_HEADS * T * T]


def test_plain_bertviz_draws_nothing_without_network(browser, stacked_attention, tmp_path):
    """The control: bertviz's own CDN page stays blank here, so the browser really is offline."""
    from bertviz import head_view as bertviz_head_view

    tokens = list("abcde")
    page = '<!DOCTYPE html><meta charset="utf-8">' + bertviz_head_view(tuple(stacked_attention.unsqueeze(1)), tokens, html_action="return").data
    assert "cdnjs" in page
    tags, _ = views_in(render(browser, page, tmp_path)[0])
    assert len(tags) == 1 and tags[0]["svg"] == 0 and tags[0]["line"] == 0


# ----------------------------------------------------------------------------------------------
# No browser needed


def test_view_mode_displays_html_in_jupyter(stacked_attention, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    tokens = list("abcde")
    assert head_view(stacked_attention, tokens) is None and model_view(stacked_attention, tokens) is None
    assert [type(obj).__name__ for obj in shown] == ["HTML", "HTML"]
    for obj in shown:
        assert_offline(obj.data)
        assert "__fmteachBertvizLibs" in obj.data


def test_accepted_layouts_give_the_same_view(stacked_attention):
    tokens = list("abcde")
    per_layer = tuple(stacked_attention.unsqueeze(1))  # Hugging Face: per layer (1, heads, T, T)
    pages = [head_view(a, tokens, html_action="return") for a in (per_layer, stacked_attention, stacked_attention.unsqueeze(1))]
    without_ids = {re.sub(r"bertviz-[0-9a-f]+", "ID", p) for p in pages}
    assert len(without_ids) == 1


@pytest.mark.parametrize(
    ("attention", "tokens", "kwargs", "message"),
    [
        (torch.rand(3, 5, 5), list("abcde"), {}, r"shape \(3, 5, 5\): expected \(layers, batch=1, heads, T, T\)"),
        (torch.rand(2, 4, 3, 5, 5), list("abcde"), {}, r"shape \(2, 4, 3, 5, 5\) holds a batch of 4"),
        ((torch.rand(1, 3, 5, 5), torch.rand(1, 3, 4, 4)), list("abcde"), {}, r"shapes \[\(1, 3, 5, 5\), \(1, 3, 4, 4\)\]"),
        ((torch.rand(3, 5, 5),), list("abcde"), {}, r"expected one \(batch=1, heads, T, T\) tensor per layer"),
        ((), list("abcde"), {}, r"sequence of 0 tensors"),
        (torch.rand(2, 3, 5, 4), list("abcde"), {}, r"square .* got 5 x 4"),
        (torch.rand(2, 3, 5, 5), list("abcd"), {}, r"shape \(2, 3, 5, 5\) covers T=5 positions but 4 tokens"),
        (torch.rand(2, 3, 5, 5), "abcde", {}, r"tokens must be a list of strings"),
        (torch.rand(2, 3, 5, 5), list("abcde"), {"html_action": "show"}, r"html_action='show'"),
        (torch.rand(2, 3, 5, 5), list("abcde"), {"sentence_b_start": 5}, r"sentence_b_start=5: must be in 1..4"),
        (torch.rand(2, 3, 5, 5), list("abcde"), {"layer": 2}, r"layer=2: must be one of the layers shown, \[0, 1\]"),
        (torch.rand(2, 3, 5, 5), list("abcde"), {"heads": [3]}, r"heads=\[3\]: .* head indices in 0..2"),
        (torch.rand(2, 3, 5, 5), list("abcde"), {"include_layers": []}, r"include_layers=\[\]"),
    ],
)
def test_head_view_errors_name_the_shapes(attention, tokens, kwargs, message):
    with pytest.raises(ValueError, match=message):
        head_view(attention, tokens, **{"html_action": "return", **kwargs})


def test_model_view_and_page_errors(stacked_attention):
    tokens = list("abcde")
    with pytest.raises(ValueError, match="display_mode='grey': must be 'dark' or 'light'"):
        model_view(stacked_attention, tokens, display_mode="grey", html_action="return")
    with pytest.raises(ValueError, match=r"include_heads=\[0, 7\]: .* head indices in 0..2"):
        model_view(stacked_attention, tokens, include_heads=[0, 7], html_action="return")
    with pytest.raises(ValueError, match="at least one fragment"):
        offline_page()
    with pytest.raises(TypeError, match="HTML strings, got Tensor"):
        offline_page(stacked_attention)


@pytest.fixture
def fresh_library_cache():
    bertviz_offline._libraries_script.cache_clear()
    yield
    bertviz_offline._libraries_script.cache_clear()


@pytest.mark.parametrize("missing", ["mpld3", "xstatic.pkg.jquery"])
def test_missing_library_says_what_to_install(missing, stacked_attention, monkeypatch, fresh_library_cache):
    real_find_spec = bertviz_offline.importlib.util.find_spec

    def find_spec(name, *args):
        if name == "mpld3" == missing:
            return None
        if name == "xstatic.pkg.jquery" == missing:
            raise ModuleNotFoundError("No module named 'xstatic'")  # what a missing parent package does
        return real_find_spec(name, *args)

    monkeypatch.setattr(bertviz_offline.importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingAssetError, match=re.escape(PIP_INSTALL)) as error:
        head_view(stacked_attention, list("abcde"), html_action="return")
    assert repr(missing) in str(error.value)
    assert PIP_INSTALL == "pip install mpld3==0.5.12 xstatic-jquery==3.7.1.1"
