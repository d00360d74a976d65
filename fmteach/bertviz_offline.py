"""bertviz's head view and model view, drawn with no network.

bertviz 1.4.1 loads require.js, d3 5 and jQuery from a CDN, so offline its views stay blank. Here
bertviz still builds the HTML and we patch it: d3 5.7 (from PyPI ``mpld3``) and jQuery 3.7 (from
PyPI ``xstatic-jquery``) are inlined, read from the installed packages at run time (no third-party
code lives in this repository); the CDN ``<script>`` and ``require.config`` are removed; and the
``requirejs(['jquery', 'd3'], callback)`` call hands the inlined libraries to bertviz's callback.
The libraries are loaded into a private object, not ``window.$``/``window.d3``, so a page's own
jQuery or d3 (the classic notebook has both) is left alone.

Attention comes as Hugging Face gives it, a tuple of per-layer ``(1, heads, T, T)`` tensors, or as
one stacked tensor ``(layers, 1, heads, T, T)`` / ``(layers, heads, T, T)`` as our models return.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from .cache import MissingAssetError

__all__ = ["head_view", "model_view", "offline_page", "PIP_INSTALL"]

PIP_INSTALL = "pip install mpld3==0.5.12 xstatic-jquery==3.7.1.1"
_LIBS_GLOBAL = "__fmteachBertvizLibs"  # where the inlined jQuery and d3 live on the page


def _read_library(package: str, relative: str, what: str) -> str:
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:  # a missing parent package (``xstatic``) raises instead of None
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / relative if folders else None
    if path is None or not path.is_file():
        raise MissingAssetError(f"offline bertviz needs {what} from the Python package {package!r}, which is not installed; run: {PIP_INSTALL}")
    return path.read_text(encoding="utf-8")


def _script_safe(js: str) -> str:
    """Inline JS must not contain ``</script`` (ends the script early) or ``<!--``; they can only
    come from strings here (token text in bertviz's JSON), where ``<\\/`` and ``<\\!`` mean the same."""
    return re.sub(r"</(?=script)", r"<\\/", js, flags=re.IGNORECASE).replace("<!--", "<\\!--")


@functools.lru_cache(maxsize=None)
def _libraries_script() -> str:
    """One ``<script>`` that defines ``window.__fmteachBertvizLibs = {jQuery, d3}`` once per page.

    Each library runs with a local ``module``/``exports`` (and ``define`` hidden), so it takes its
    CommonJS path and touches no globals, whether or not the page has require.js.
    """
    jquery = _read_library("xstatic.pkg.jquery", "data/jquery.min.js", "jQuery")
    d3 = _read_library("mpld3", "js/d3.v5.min.js", "d3 v5")
    load = "(function (module, exports, define) {{\n{}\n}})(module, module.exports, undefined);\n"
    return (
        '<script type="text/javascript">\n(function () {\n'
        f"if (window.{_LIBS_GLOBAL}) return;  // already on this page\n"
        "var module = {exports: {}};\n" + load.format(_script_safe(jquery)) + "var jQuery = module.exports;\n"
        "module = {exports: {}};\n" + load.format(_script_safe(d3)) +
        f"window.{_LIBS_GLOBAL} = {{jQuery: jQuery, d3: module.exports}};\n}})();\n</script>\n"
    )


_CDN_TAG = re.compile(r'<script src="https?://[^"]*require[^"]*"></script>')
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)
_REQUIREJS_CALL = re.compile(r"requirejs\(\s*\[\s*'jquery'\s*,\s*'d3'\s*\]\s*,")
_OUR_REQUIRE = f"(function (deps, callback) {{ var libs = window.{_LIBS_GLOBAL}; callback(libs.jQuery, libs.d3); }})(['jquery', 'd3'],"
_SCRIPT_OPEN = '<script type="text/javascript">'


def _make_offline(bertviz_html: str) -> str:
    """bertviz's ``html_action='return'`` HTML -> the same view with inlined libraries only."""
    patched, n_tag = _CDN_TAG.subn("", bertviz_html)
    patched, n_config = _REQUIRE_CONFIG.subn("", patched)
    patched, n_call = _REQUIREJS_CALL.subn(_OUR_REQUIRE, patched)
    div, opening, rest = patched.partition(_SCRIPT_OPEN)
    body, closing, tail = rest.rpartition("</script>")
    if (n_tag, n_config, n_call) != (1, 1, 1) or not opening or not closing:
        raise RuntimeError("bertviz's HTML is not shaped as in bertviz 1.4.1, which fmteach.bertviz_offline patches; pip install bertviz==1.4.1")
    return _libraries_script() + div + opening + _script_safe(body) + closing + tail


def _per_layer_attention(attention, tokens: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """Any accepted layout -> a tuple of ``(1, heads, T, T)`` float32 CPU tensors, one per layer."""
    if isinstance(attention, (tuple, list)):
        layers = [torch.as_tensor(a) for a in attention]
        shapes = [tuple(a.shape) for a in layers]
        if not layers or any(len(s) != 4 for s in shapes) or len(set(shapes)) != 1:
            raise ValueError(
                f"attention is a sequence of {len(layers)} tensors with shapes {shapes}: expected one (batch=1, heads, T, T) "
                "tensor per layer, all the same shape (Hugging Face: output_attentions=True, attn_implementation='eager')"
            )
        stacked = torch.stack(layers)  # (layers, batch, heads, T, T)
        what = f"attention (per layer {shapes[0]})"
    else:
        stacked = torch.as_tensor(attention)
        what = f"attention of shape {tuple(stacked.shape)}"
        if stacked.dim() == 4:
            stacked = stacked.unsqueeze(1)  # (layers, heads, T, T) -> (layers, 1, heads, T, T)
        elif stacked.dim() != 5:
            raise ValueError(f"{what}: expected (layers, batch=1, heads, T, T), (layers, heads, T, T) or a tuple of per-layer (batch=1, heads, T, T)")
    n_layers, batch, n_heads, t_query, t_key = stacked.shape
    if batch != 1:
        raise ValueError(f"{what} holds a batch of {batch}: bertviz draws one sequence, so select one first (e.g. attention[:, i:i+1])")
    if t_query != t_key or min(n_layers, n_heads, t_query) == 0:
        raise ValueError(f"{what}: expected non-empty square (T, T) self-attention, got {t_query} x {t_key} over {n_layers} layers, {n_heads} heads")
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"tokens must be a list of strings, got {tokens!r}")
    if len(tokens) != t_query:
        raise ValueError(f"{what} covers T={t_query} positions but {len(tokens)} tokens were given: {list(tokens)}")
    return tuple(stacked.detach().to("cpu", torch.float32).unbind(0))


def _indices(name: str, values, limit: int, what: str) -> list[int] | None:
    if values is None:
        return None
    values = [int(v) for v in values]
    if not values or any(not 0 <= v < limit for v in values):
        raise ValueError(f"{name}={values}: must be a non-empty list of {what} indices in 0..{limit - 1}")
    return values


def _check_common(tokens: Sequence[str], sentence_b_start: int | None, html_action: str) -> None:
    if html_action not in ("view", "return"):
        raise ValueError(f"html_action={html_action!r}: must be 'view' (display in Jupyter) or 'return' (the HTML string)")
    if sentence_b_start is not None and not 0 < sentence_b_start < len(tokens):
        raise ValueError(f"sentence_b_start={sentence_b_start}: must be in 1..{len(tokens) - 1} for {len(tokens)} tokens")


def _emit(page_html: str, html_action: str) -> str | None:
    if html_action == "return":
        return page_html
    from IPython.display import HTML, display

    display(HTML(page_html))
    return None


def head_view(attention, tokens: Sequence[str], sentence_b_start: int | None = None, *, layer: int | None = None,
              heads: Sequence[int] | None = None, include_layers: Sequence[int] | None = None,
              html_action: str = "view") -> str | None:
    """bertviz's head view (every head of one layer as token-to-token lines), drawn offline.

    ``attention``: tuple of per-layer ``(1, heads, T, T)`` or one ``(layers[, 1], heads, T, T)`` tensor;
    ``tokens``: T strings. ``layer``: the layer shown first; ``heads``: the heads switched on first;
    ``include_layers``: the layers offered. ``html_action='return'`` returns the HTML string.
    """
    _check_common(tokens, sentence_b_start, html_action)
    per_layer = _per_layer_attention(attention, tokens)
    n_layers, n_heads = len(per_layer), per_layer[0].shape[1]
    include_layers = _indices("include_layers", include_layers, n_layers, "layer")
    heads = _indices("heads", heads, n_heads, "head")
    offered = include_layers if include_layers is not None else list(range(n_layers))
    if layer is not None and layer not in offered:
        raise ValueError(f"layer={layer}: must be one of the layers shown, {offered}")
    from bertviz import head_view as bertviz_head_view

    built = bertviz_head_view(per_layer, list(tokens), sentence_b_start, layer=layer, heads=heads,
                              include_layers=include_layers, html_action="return")
    return _emit(_make_offline(built.data), html_action)


def model_view(attention, tokens: Sequence[str], sentence_b_start: int | None = None, *, display_mode: str = "dark",
               include_layers: Sequence[int] | None = None, include_heads: Sequence[int] | None = None,
               html_action: str = "view") -> str | None:
    """bertviz's model view (a thumbnail per layer x head; click one to enlarge), drawn offline.

    Shapes as in :func:`head_view`. ``display_mode``: ``"dark"`` or ``"light"``; ``include_layers`` /
    ``include_heads``: the rows / columns drawn. ``html_action='return'`` returns the HTML string.
    """
    _check_common(tokens, sentence_b_start, html_action)
    if display_mode not in ("dark", "light"):
        raise ValueError(f"display_mode={display_mode!r}: must be 'dark' or 'light'")
    per_layer = _per_layer_attention(attention, tokens)
    n_layers, n_heads = len(per_layer), per_layer[0].shape[1]
    include_layers = _indices("include_layers", include_layers, n_layers, "layer")
    include_heads = _indices("include_heads", include_heads, n_heads, "head")
    from bertviz import model_view as bertviz_model_view

    built = bertviz_model_view(per_layer, list(tokens), sentence_b_start, display_mode=display_mode,
                               include_layers=include_layers, include_heads=include_heads, html_action="return")
    return _emit(_make_offline(built.data), html_action)


def offline_page(*html_fragments, title: str = "Attention (bertviz, offline)") -> str:
    """A complete standalone HTML document holding the given views, libraries inlined once.

    Fragments are what ``head_view``/``model_view`` return with ``html_action='return'`` (or any
    HTML of your own, e.g. a heading), shown in order; write the result to a ``.html`` file.
    """
    if not html_fragments:
        raise ValueError("offline_page needs at least one fragment, e.g. head_view(attention, tokens, html_action='return')")
    libraries = _libraries_script()
    body = []
    for fragment in html_fragments:
        fragment = getattr(fragment, "data", fragment)  # an IPython HTML object is accepted too
        if not isinstance(fragment, str):
            raise TypeError(f"offline_page takes HTML strings, got {type(fragment).__name__}")
        # A model view of 12 heads is wider than a notebook's output area: scroll, don't cut it off.
        body.append(f'<div class="fmteach-view" style="overflow-x:auto; max-width:100%">{fragment.replace(libraries, "")}</div>')
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"{libraries}</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
