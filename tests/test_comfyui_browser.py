"""The node pack in ComfyUI's own frontend, in Chromium (Playwright): a ComfyUI server started on
a custom_nodes folder holding a copy of the repository as `git clone` leaves it, under another
folder name (ComfyUI-SAMG); each template is opened the way a user opens it (Templates ->
samg-video -> its card, found by its title) and must reach the canvas whole: every node of the
file, none missing, no validation error. The bundled model's template runs from the Run button;
a bad SAMG value stops every template with its sentence on screen. Skipped unless COMFYUI_PATH
points at a ComfyUI checkout with its requirements, and Playwright and Chromium are installed
(`pip install playwright`, Debian's `chromium`). SAMG_SCREENSHOTS=DIR also writes the pictures
that docs/comfyui.md shows (the Wan 2.1 template, the bundled model's template after a run)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_comfyui import pack_copy

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "ComfyUI-SAMG"  # the clone's folder name; the Templates dialog still names the category samg-video
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def requirements() -> tuple[str, str]:
    comfy = os.environ.get("COMFYUI_PATH")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not comfy:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout to run the browser tier")
    if not chromium:
        pytest.skip("the browser tier needs Chromium (Debian: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the browser tier needs Playwright (pip install playwright)")
    return comfy, chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """http://127.0.0.1:PORT of a ComfyUI server whose custom_nodes folder holds the clone."""
    comfy, _ = requirements()
    base = tmp_path_factory.mktemp("comfyui")
    pack_copy(base / "custom_nodes" / FOLDER)
    (base / "paths.yaml").write_text(f"pack:\n  base_path: {base}\n  custom_nodes: custom_nodes\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(base / "server.log", "w")
    process = subprocess.Popen([sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                                "--extra-model-paths-config", str(base / "paths.yaml"), "--disable-auto-launch",
                                "--output-directory", str(base / "output")], cwd=comfy, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(url + "/workflow_templates", timeout=2) as response:
                    listed = json.load(response)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"ComfyUI exited: {(base / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("ComfyUI did not answer within 120 s")
        assert FOLDER in listed, listed
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


READ_WORK = """() => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find(n => n.type == 'SAMGVideo');
    return ((node.widgets || []).find(w => w.name == 'work') || {}).value; }"""


def open_page(p, server):
    _, chromium = requirements()
    browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    page.goto(server, wait_until="networkidle", timeout=120_000)
    page.wait_for_function("window.app && window.app.graph", timeout=120_000)
    return browser, page


def open_template(page, title: str, nodes: int) -> None:
    """Templates -> samg-video -> the card titled `title`, until the canvas holds `nodes` nodes."""
    if not page.get_by_text("samg-video", exact=True).count():
        page.get_by_text("Templates", exact=True).first.click()
    page.get_by_text("samg-video", exact=True).first.click()
    page.get_by_text(title, exact=True).first.click()
    page.wait_for_function(f"(window.app.graph._nodes || window.app.graph.nodes).length == {nodes}", timeout=30_000)


def test_every_template_opens_whole_in_comfyuis_frontend(server):
    """Each card shows the template's title (its file name: no "-" or "_" turned into spaces), the
    category reads samg-video although the clone's folder is ComfyUI-SAMG, and each template opens
    whole."""
    from playwright.sync_api import sync_playwright

    from comfyui_samg import workflow_ui

    templates = sorted((ROOT / "example_workflows").glob("*.json"))
    assert sorted(p.stem for p in templates) == sorted(workflow_ui.TITLES.values())
    with sync_playwright() as p:
        browser, page = open_page(p, server)
        page.get_by_text("Templates", exact=True).first.click()
        page.get_by_text("samg-video", exact=True).first.click()
        page.wait_for_timeout(1000)
        cards = page.inner_text("body")
        assert all(title in cards for title in workflow_ui.TITLES.values()), cards[-2000:]
        assert page.get_by_text("samg-video", exact=True).count()
        for path in templates:
            canvas = json.loads(path.read_text())
            open_template(page, path.stem, len(canvas["nodes"]))
            shown = page.evaluate("""() => {
                const nodes = window.app.graph._nodes || window.app.graph.nodes;
                return {titles: nodes.map(n => n.title).sort(),
                        missing: nodes.filter(n => !(n.type in LiteGraph.registered_node_types)).map(n => n.type),
                        text: document.body.innerText};
            }""")
            assert shown["missing"] == [], (path.name, shown["missing"])
            assert shown["titles"] == sorted(n["title"] for n in canvas["nodes"]), path.name
            for refusal in ("Zod error", "valid version", "missing", "Missing"):
                assert refusal not in shown["text"], (path.name, refusal)
            if path.stem.startswith("Wan 2.1") and os.environ.get("SAMG_SCREENSHOTS"):
                page.evaluate("async () => window.app.extensionManager.setting.set("
                              "'LiteGraph.Canvas.LowQualityRenderingZoomThreshold', 0.05)")
                page.evaluate("() => { const c = window.app.canvas; c.ds.scale = 0.75; c.ds.offset = [-150, -120];"
                              " c.setDirty(true, true); }")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(Path(os.environ["SAMG_SCREENSHOTS"]) / "comfyui_wan21_frontend.png"))
        browser.close()


def test_the_bundled_model_template_runs_from_the_run_button(server):
    """The bundled model's template, opened from Templates and run with the Run button, with no model
    file on the server: the Compare clips node shows both clips' metrics, each under its label, and
    the SAMG node its work; the wall time from the click is printed (a CPU run)."""
    from playwright.sync_api import sync_playwright

    from comfyui_samg import workflow_ui

    title = workflow_ui.TITLES["bundled_model_cfg_vs_samg"]
    canvas = json.loads((ROOT / "example_workflows" / f"{title}.json").read_text())
    (steps,) = {n["widgets_values"][2] for n in canvas["nodes"] if n["type"] == "KSampler"}  # seed, control, steps
    with sync_playwright() as p:
        browser, page = open_page(p, server)
        open_template(page, title, len(canvas["nodes"]))
        start = time.monotonic()
        page.get_by_role("button", name="Run").first.click()
        shown = page.wait_for_function("""() => {
            const node = (window.app.graph._nodes || window.app.graph.nodes).find(n => n.type == 'SAMGCompareClips');
            const widget = node && (node.widgets || []).find(w => w.name == 'metrics');
            return widget && widget.value; }""", timeout=120_000).json_value()
        seconds = time.monotonic() - start
        work = page.evaluate(READ_WORK)
        if os.environ.get("SAMG_SCREENSHOTS"):
            page.wait_for_timeout(2000)  # the saved video and the field preview load
            page.evaluate("() => { const c = window.app.canvas; c.ds.scale = 0.53; c.ds.offset = [-40, -30];"
                          " c.setDirty(true, true); }")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(Path(os.environ["SAMG_SCREENSHOTS"]) / "comfyui_bundled_template.png"))
        # the same graph again with a skip policy typed into the SAMG node: its count after the run
        page.evaluate("""() => {
            const node = (window.app.graph._nodes || window.app.graph.nodes).find(n => n.type == 'SAMGVideo');
            node.widgets.find(w => w.name == 'skip').value = 'every:2'; }""")
        page.get_by_role("button", name="Run").first.click()
        skipped = page.wait_for_function(f"""() => {{ const text = ({READ_WORK})();
            return text && text != {json.dumps(work)} && !text.includes('none yet') && text.includes(' of {steps} ')
                   && text; }}""", timeout=120_000).json_value()
        browser.close()
    print(f"bundled template: {seconds:.1f} s from Run to the metrics on the canvas")
    lines = shown.splitlines()
    assert lines[0] == "frames: CFG 2 = 8 | SAMG 1-3 = 8"
    assert any(line.startswith("flicker: CFG 2 = ") for line in lines)
    assert work == f"unconditional passes: {steps} of {steps} computed (1.00x CFG's work)", work
    computed = math.ceil(steps / 2)  # every:2: the pass at steps 0, 2, 4, ... (docs/comfyui.md, `skip`)
    assert skipped == (f"unconditional passes: {computed} of {steps} computed "
                       f"({(steps + computed) / (2 * steps):.2f}x CFG's work)"), skipped


def test_a_bad_samg_value_stops_every_template_with_its_sentence_on_screen(server):
    """In each template, w_min = 9 and w_max = 3 on its SAMG nodes, then Run: the queue is refused
    whole (nothing runs, the CFG branch included) and the sentence that names the widgets is in the
    text a person sees."""
    from playwright.sync_api import sync_playwright

    templates = sorted((ROOT / "example_workflows").glob("*.json"))
    with sync_playwright() as p:
        browser, page = open_page(p, server)
        for path in templates:
            open_template(page, path.stem, len(json.loads(path.read_text())["nodes"]))
            with urllib.request.urlopen(server + "/history", timeout=30) as response:
                ran_before = len(json.load(response))
            page.evaluate("""() => {
                const nodes = window.app.graph._nodes || window.app.graph.nodes;
                for (const n of nodes.filter(n => n.type == 'SAMGVideo')) {
                    n.widgets.find(w => w.name == 'w_min').value = 9;
                    n.widgets.find(w => w.name == 'w_max').value = 3; } }""")
            page.get_by_role("button", name="Run").first.click()
            page.get_by_text("Prompt outputs failed validation").first.wait_for(timeout=30_000)
            text = page.inner_text("body")
            assert "w_min = 9 exceeds w_max = 3" in text, (path.name, text[-1500:])
            page.keyboard.press("Escape")
            page.wait_for_timeout(1500)
            with urllib.request.urlopen(server + "/history", timeout=30) as response:
                assert len(json.load(response)) == ran_before, path.name  # nothing ran
        browser.close()


def test_the_metrics_node_shows_its_numbers_on_the_canvas(server):
    """A run queued from the frontend (EmptyImage -> Temporal metrics): the node shows each metric
    with its direction on itself (the pack's frontend extension), e.g. flicker 1 for still frames."""
    from playwright.sync_api import sync_playwright

    from comfyui_samg import workflow_ui

    _, chromium = requirements()
    with urllib.request.urlopen(server + "/object_info", timeout=30) as response:
        infos = json.load(response)
    api = {"frames": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 4, "color": 0},
                      "_meta": {"title": "Empty Image"}},
           "metrics": {"class_type": "SAMGTemporalMetrics", "inputs": {"images": ["frames", 0], "lpips": False},
                       "_meta": {"title": "Temporal metrics (samg-video)"}}}
    canvas = workflow_ui.to_ui(api, infos)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(server, wait_until="networkidle", timeout=120_000)
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, 'metrics'); "
                      "await window.app.queuePrompt(0, 1); }", canvas)
        shown = page.wait_for_function("""() => {
            const node = (window.app.graph._nodes || window.app.graph.nodes).find(n => n.type == 'SAMGTemporalMetrics');
            const widget = node && (node.widgets || []).find(w => w.name == 'metrics');
            return widget && widget.value; }""", timeout=120_000).json_value()
        browser.close()
    assert "frames: 4\n" in shown and "flicker: 1.000  (0-1, 1 = perfectly steady; higher is better)" in shown, shown
    assert "warp_error:" in shown and "(lower is better)" in shown and "motion:" in shown, shown


def test_a_guidance_node_shows_its_runs_work_on_the_canvas(server):
    """The server's "samg-video.work" message (what a guidance node sends after each evaluation,
    `comfyui_samg.nodes.show_work`; its sending is checked in test_comfyui.py) reaches the node it
    names through the frontend's own API and is shown on it, read back as a person sees it; a message
    for another node leaves this one alone."""
    from playwright.sync_api import sync_playwright

    _, chromium = requirements()
    text = "unconditional passes: 10 of 25 computed (0.70x CFG's work)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(server, wait_until="networkidle", timeout=120_000)
        page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120_000)
        shown = page.evaluate("""(text) => {
            const make = () => {
                const n = window.LiteGraph.createNode('SAMGVideo'); window.app.graph.add(n); return n; };
            const node = make(), other = make();
            window.app.api.dispatchCustomEvent('samg-video.work', {node: String(node.id), text});
            const read = (n) => ((n.widgets || []).find(w => w.name == 'work') || {}).value;
            return [read(node), read(other) ?? null, node.size[1] > 0]; }""", text)
        browser.close()
    assert shown == [text, None, True], shown
