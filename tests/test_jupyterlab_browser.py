"""JupyterLab in a real browser: what a learner sees after opening a lesson and pressing Run All.

JupyterLab runs on 127.0.0.1 (a free port, a random token) over a temporary copy of the notebooks,
and Debian's Chromium, driven by Playwright, opens lessons 01 and 06. In each it clears the stored
outputs (Edit menu), runs all cells (Run menu) and waits for the kernel to go idle. Then it checks
what the learner sees: every code cell ran once, in order; no error output and no "Error displaying
widget"; every plot of the committed notebook drawn again; an ipywidgets slider redraws its picture;
bertviz's head view and model view drew their SVG lines and a layer change redraws them; and the
browser asked for nothing beyond 127.0.0.1 except the Colab badge (aborted, as offline).

The kernel runs this test's Python (the editable install gives ``import fmteach`` and the repo's
data cache); FMTEACH_PROFILE=smoke and HF_HUB_OFFLINE=1 reach it from conftest.py through the
environment. On failure, a screenshot, the page's DOM and JupyterLab's log are written to
``test-artifacts/jupyterlab/`` (git-ignored). Without Chromium the tests are skipped, unless
``FMTEACH_REQUIRE_CHROMIUM`` is set (CI): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from system_chromium import chromium_path, skip_or_fail

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "jupyterlab"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
RUN_ALL_TIMEOUT_S = 240  # a hang detector: a lesson takes ~30 s in the smoke profile on two quiet cores
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Belt and braces: whatever the page's routing misses cannot resolve a host other than ours.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


# ----------------------------------------------------------------------------------------------
# JupyterLab and the browser


@dataclass
class JupyterLab:
    url: str  # http://127.0.0.1:PORT
    token: str = field(repr=False)
    notebooks: Path
    log: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -r requirements.txt)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no screenshots left from an earlier run
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def jupyterlab(chromium, tmp_path_factory):
    """JupyterLab over a copy of notebooks/, with its own config, data and runtime folders so that
    nothing from the user's ~/.jupyter (settings, workspaces, kernels) changes what is tested."""
    root = tmp_path_factory.mktemp("jupyterlab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, notebooks)
    # Autosave off: a timed save racing the test's own Ctrl+S makes JupyterLab ask "File Changed".
    docmanager = root / "settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,  # read by the IdentityProvider; kept off the command line
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_DATA_DIR": str(root / "data"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "IPYTHONDIR": str(root / "ipython"),
    }
    port = free_port()
    command = [
        sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={notebooks}",
        # Nothing that reaches the network: no news feed, no update check, no PyPI extension manager.
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ]
    log = root / "jupyterlab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(command, cwd=notebooks, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, notebooks, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                lab.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {lab.url} within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield lab
    finally:
        try:
            lab.api("POST", "/api/shutdown")  # shuts its kernels down too
            server.wait(timeout=20)
        except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
            server.kill()
            server.wait()


@dataclass
class Network:
    """Every request the page made; all but 127.0.0.1 are aborted and those not allowed recorded."""

    local: list[str] = field(default_factory=list)
    badge: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)

    def route(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1":
            self.local.append(url)
            route.continue_()
            return
        (self.badge if url == COLAB_BADGE else self.forbidden).append(url)
        route.abort()

    def websocket(self, websocket) -> None:
        if urlsplit(websocket.url).hostname == "127.0.0.1":
            self.local.append(websocket.url)
        else:
            self.forbidden.append(websocket.url)


@dataclass
class Learner:
    """One browser context (cookies, storage) with one page: one learner with one lesson open."""

    context: object  # playwright BrowserContext
    page: object  # playwright Page
    network: Network = field(default_factory=Network, repr=False)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, browser) -> Learner:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
        page = context.new_page()
        page.set_default_timeout(30_000)
        learner = cls(context, page)
        context.route("**/*", learner.network.route)
        page.on("websocket", learner.network.websocket)
        page.on("pageerror", lambda error: learner.page_errors.append(str(error)))
        return learner

    def save_evidence(self, label: str, lab: JupyterLab) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=ARTIFACTS / f"{label}.png")
            (ARTIFACTS / f"{label}.html").write_text(self.page.content(), encoding="utf-8")
        finally:
            shutil.copy(lab.log, ARTIFACTS / "jupyterlab.log")
            print(f"\nscreenshot, DOM and JupyterLab log of the failure: {ARTIFACTS}/{label}.*")


# ----------------------------------------------------------------------------------------------
# What a learner does: open, clear the stored outputs, Run All, wait, save


def menu(page, top: str, item: str) -> None:
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


# Per code cell, in notebook order: what the learner sees in it.
CELLS_JS = """
panel => [...panel.querySelectorAll('.jp-CodeCell')].map(cell => {
    const images = [...cell.querySelectorAll('.jp-OutputArea-output img')];
    const inWidget = img => img.closest('.jupyter-widgets') !== null;
    return {
        prompt: cell.querySelector('.jp-InputPrompt').textContent.trim(),  // empty where the input is hidden
        stderr: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(output => output.textContent.slice(0, 2000)),
        text: cell.querySelector('.jp-Cell-outputArea')?.textContent ?? '',
        images: images.filter(img => !inWidget(img)).length,
        broken_images: images.filter(img => !(img.complete && img.naturalWidth > 0)).length,
        widget_controls: cell.querySelectorAll('.jupyter-widgets .widget-slider, .jupyter-widgets .widget-checkbox').length,
        widget_images: images.filter(inWidget).length,
    };
})
"""
# The toolbar's kernel indicator: busy/idle, and a progress circle at 100 once every scheduled cell ran.
INDICATOR_JS = """panel => {
    const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
    return indicator.dataset.status + ' ' + indicator.querySelector('[role=progressbar]').getAttribute('aria-valuenow');
}"""


def code_cells(notebook: dict) -> list[dict]:
    """Per code cell: execution count, pictures, error outputs and whether it shows a widget."""
    def mimes(output):
        return output.get("data", {}).keys()

    return [
        {
            "execution_count": cell.get("execution_count"),
            "images": sum(any(mime.startswith("image/") for mime in mimes(output)) for output in cell["outputs"]),
            "widget": any("application/vnd.jupyter.widget-view+json" in mimes(output) for output in cell["outputs"]),
            "errors": [
                output.get("ename", "") + ": " + output.get("evalue", "") if output["output_type"] == "error" else "".join(output["text"])[:2000]
                for output in cell["outputs"]
                if output["output_type"] == "error" or output.get("name") == "stderr"
            ],
        }
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
    ]


@dataclass
class Run:
    name: str
    panel: object  # playwright Locator of the notebook panel
    committed: list[dict]  # code_cells() of the notebook as committed
    saved: list[dict]  # code_cells() of the notebook as JupyterLab saved it after Run All
    shown: list[dict]  # CELLS_JS: what the page shows


def open_lesson(learner: Learner, lab: JupyterLab, name: str) -> None:
    """Open the lesson in a workspace of its own: no other lesson's tabs are restored beside it."""
    learner.page.goto(f"{lab.url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={lab.token}")


def clear_and_run_all(learner: Learner, name: str) -> None:
    page = learner.page
    panel = page.locator(".jp-NotebookPanel")
    panel.locator(".jp-CodeCell").first.wait_for(timeout=60_000)
    assert panel.count() == 1, f"expected only {name} open, found {panel.count()} notebook panels"
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle$")).wait_for(timeout=60_000)  # kernel started
    menu(page, "Edit", "Clear Outputs of All Cells")
    assert panel.locator(".jp-OutputArea-output").count() == 0, f"{name}: Clear Outputs of All Cells left outputs behind"
    menu(page, "Run", "Run All Cells")
    panel.locator('.jp-Notebook-ExecutionIndicator[data-status="busy"]').wait_for(timeout=30_000)


def wait_until_idle(learner: Learner, name: str) -> None:
    """The toolbar's indicator idle with every scheduled cell run, twice a second apart (not a gap between cells)."""
    panel, deadline, idle_polls = learner.page.locator(".jp-NotebookPanel"), time.monotonic() + RUN_ALL_TIMEOUT_S, 0
    while idle_polls < 2:
        if time.monotonic() > deadline:
            prompts = [cell["prompt"] for cell in panel.evaluate(CELLS_JS)]
            pytest.fail(f"{name}: Run All did not finish within {RUN_ALL_TIMEOUT_S} s; prompts of the code cells: {prompts}")
        learner.page.wait_for_timeout(1000)
        idle_polls = idle_polls + 1 if panel.evaluate(INDICATOR_JS) == "idle 100" else 0


def save_and_read(learner: Learner, lab: JupyterLab, name: str, committed: list[dict]) -> Run:
    """Save as a learner would (Ctrl+S) and read execution counts and outputs from the file itself:
    the page cannot show the prompts of the solution cells, whose input is collapsed."""
    page = learner.page
    page.keyboard.press("Control+s")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty").wait_for(state="detached", timeout=30_000)
    dialog = page.locator(".jp-Dialog")
    assert dialog.count() == 0, f"{name}: JupyterLab asks {dialog.first.text_content()!r} after saving"
    saved = code_cells(json.loads((lab.notebooks / name).read_text(encoding="utf-8")))
    panel = page.locator(".jp-NotebookPanel")
    return Run(name, panel, committed, saved, panel.evaluate(CELLS_JS))


def open_and_run_all(learner: Learner, lab: JupyterLab, name: str) -> Run:
    committed = code_cells(json.loads((lab.notebooks / name).read_text(encoding="utf-8")))
    started = time.monotonic()
    open_lesson(learner, lab, name)
    clear_and_run_all(learner, name)
    running = time.monotonic()
    wait_until_idle(learner, name)
    print(f"\n{name}: opened and cleared in {running - started:.0f} s, Run All took {time.monotonic() - running:.0f} s")
    return save_and_read(learner, lab, name, committed)


@pytest.fixture
def learner(chromium, jupyterlab, request):
    """A learner with a fresh browser context. The lessons run one after the other: two kernels at
    once on two cores run slower than one after the other (torch's threads compete)."""
    learner = Learner.start(chromium)
    failed_before = request.session.testsfailed
    yield learner
    # The call phase's report is counted before fixtures are torn down: a rise means this test failed.
    if request.session.testsfailed > failed_before:
        learner.save_evidence(request.node.name, jupyterlab)
    learner.context.close()
    for session in jupyterlab.api("GET", "/api/sessions"):  # this lesson's kernel
        jupyterlab.api("DELETE", f"/api/sessions/{session['id']}")


def wait_until(condition, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.25)  # (Playwright calls in condition() keep its event loop going)


def assert_ran_cleanly(run: Run) -> None:
    name, committed, saved, shown = run.name, run.committed, run.saved, run.shown
    assert len(saved) == len(shown) == len(committed), f"{name}: {len(committed)} code cells committed, {len(saved)} saved, {len(shown)} shown"
    errors = {i: cell["errors"] for i, cell in enumerate(saved) if cell["errors"]}
    assert not errors, f"{name}: error output (code cell index: text) {errors}"
    shown_errors = {i: cell["stderr"] for i, cell in enumerate(shown) if cell["stderr"]}
    assert not shown_errors, f"{name}: the page shows error output (code cell index: text) {shown_errors}"
    counts = [cell["execution_count"] for cell in saved]
    assert counts == list(range(1, len(saved) + 1)), f"{name}: not every code cell ran once, in order: execution counts {counts}"
    for i, cell in enumerate(shown):
        for bad in ("Error displaying widget", "interactive(children=", "Loading widget..."):
            assert bad not in cell["text"], f"{name}: code cell {i} shows {bad!r}: {cell['text'][:500]}"
    expected = [cell["images"] for cell in committed]
    assert [cell["images"] for cell in saved] == expected, f"{name}: pictures per code cell saved {[c['images'] for c in saved]}, committed {expected}"
    assert [cell["images"] for cell in shown] == expected, f"{name}: pictures per code cell shown {[c['images'] for c in shown]}, committed {expected}"
    assert sum(cell["broken_images"] for cell in shown) == 0, f"{name}: some pictures did not load"
    for i, (cell, stored) in enumerate(zip(shown, committed)):
        if stored["widget"]:
            assert cell["widget_controls"] > 0 and cell["widget_images"] == 1, (
                f"{name}: the widget of code cell {i} shows {cell['widget_controls']} controls and {cell['widget_images']} pictures"
            )
    assert any(cell["widget"] for cell in committed), f"{name}: expected a widget in the lesson"


def assert_stayed_local(learner: Learner) -> None:
    forbidden, local, page_errors = learner.network.forbidden, learner.network.local, learner.page_errors
    assert not forbidden, f"the browser asked for non-local addresses: {forbidden}"
    assert local, "no request reached JupyterLab at all"
    assert not page_errors, f"uncaught JavaScript errors on the page: {page_errors}"


# ----------------------------------------------------------------------------------------------
# The lessons


def test_lesson_01_runs_all_and_its_slider_redraws_the_picture(learner, jupyterlab):
    name = "01_scaled_attention.ipynb"
    run = open_and_run_all(learner, jupyterlab, name)
    assert_ran_cleanly(run)
    panel = run.panel

    # The interact cell: move the "seed" slider one step; the kernel redraws the weights picture.
    interact = panel.locator(".jp-CodeCell").filter(has=learner.page.locator(".widget-interact"))
    assert interact.count() == 1, f"{name}: expected one interact cell, found {interact.count()}"
    picture = interact.locator(".jupyter-widgets img")
    seed = interact.locator(".widget-slider").filter(has=learner.page.locator(".widget-label", has_text=re.compile(r"^seed$")))
    readout = seed.locator(".widget-readout")
    before = picture.get_attribute("src")
    assert readout.text_content().strip() == "0", f"{name}: the seed slider starts at {readout.text_content()!r}"
    handle = seed.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    handle.press("ArrowRight")
    wait_until(lambda: readout.text_content().strip() == "1", 10, f"{name}: the seed slider did not move to 1 on ArrowRight")
    wait_until(lambda: picture.count() == 1 and picture.get_attribute("src") not in (None, before), 30,
               f"{name}: the picture did not change within 30 s of moving the seed slider")
    assert picture.count() == 1, f"{name}: after the slider moved the widget shows {picture.count()} pictures"
    print(f"\n{name}: {sum(c['images'] for c in run.shown)} plots + 1 widget picture, redrawn on a slider move;"
          f" requests: {len(learner.network.local)} local, Colab badge {len(learner.network.badge)} (aborted)")
    assert_stayed_local(learner)


# Per bertviz view on the page, in order: its layer menu, token labels, SVG lines (and their opacities).
BERTVIZ_JS = """panel => [...panel.querySelectorAll('[id^="bertviz-"]')].map(root => ({
    layers: [...root.querySelectorAll('select#layer option')].map(option => option.value),
    texts: [...root.querySelectorAll('svg text')].map(text => text.textContent),
    lines: root.querySelectorAll('svg line').length,
    opacities: root.querySelector('select#layer')  // the head view's only: the model view has 14 k lines
        ? [...root.querySelectorAll('svg line')].map(line => line.getAttribute('stroke-opacity')) : null,
    old_lines: root.querySelectorAll('[data-before-layer-change] line').length,
}))"""


def test_lesson_06_runs_all_and_bertviz_draws_and_redraws(learner, jupyterlab):
    from fmteach.assets import pretrained_bert

    name = "06_bert_inside_out.ipynb"
    config = json.loads((Path(pretrained_bert("minilm")) / "config.json").read_text(encoding="utf-8"))
    n_layers, n_heads = config["num_hidden_layers"], config["num_attention_heads"]
    run = open_and_run_all(learner, jupyterlab, name)
    assert_ran_cleanly(run)
    panel = run.panel

    views = panel.evaluate(BERTVIZ_JS)
    assert len(views) == 2, f"{name}: expected bertviz's head view and model view, found {len(views)} bertviz views"
    head, model = views
    assert head["layers"] == [str(layer) for layer in range(n_layers)], f"head view's layer menu: {head['layers']}"
    tokens = head["texts"][: len(head["texts"]) // 2]
    assert head["texts"] == tokens + tokens and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]", f"head view's tokens: {head['texts']}"
    n = len(tokens)
    # One line per head x query x key: in the head view for the chosen layer, in the model view for every layer.
    assert head["lines"] == n_heads * n * n, f"head view drew {head['lines']} lines, expected {n_heads} heads x {n} x {n} tokens"
    assert model["lines"] == n_layers * n_heads * n * n, f"model view drew {model['lines']} lines, expected {n_layers} x {n_heads} x {n} x {n}"

    # Choose layer 3 in the head view: bertviz removes its lines and draws that layer's.
    head_root = panel.locator('[id^="bertviz-"]').filter(has=learner.page.locator("select#layer"))
    head_root.locator("g#attention").evaluate("group => group.setAttribute('data-before-layer-change', '')")
    head_root.locator("select#layer").select_option("3")
    wait_until(lambda: panel.evaluate(BERTVIZ_JS)[0]["old_lines"] == 0, 10, f"{name}: the head view did not redraw on a layer change")
    redrawn = panel.evaluate(BERTVIZ_JS)[0]
    assert redrawn["lines"] == n_heads * n * n, f"after the layer change the head view drew {redrawn['lines']} lines"
    assert redrawn["opacities"] != head["opacities"], "layer 3's lines have layer 0's opacities: the view did not change"

    print(f"\n{name}: {sum(c['images'] for c in run.shown)} plots + 1 widget picture; bertviz head view {head['lines']} lines"
          f" ({n_heads} heads x {n} x {n} tokens), model view {model['lines']}, layer 3 redrawn with {redrawn['lines']};"
          f" requests: {len(learner.network.local)} local, Colab badge {len(learner.network.badge)} (aborted)")
    assert_stayed_local(learner)
