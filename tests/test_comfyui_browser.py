"""The node pack in ComfyUI's own frontend, in Chromium (Playwright): a ComfyUI server started on
a custom_nodes folder holding a copy of the repository as `git clone` leaves it; each template is
opened the way a user opens it (Templates -> samg-video -> its card) and must reach the canvas
whole: every node of the file, none missing, no validation error. Skipped unless COMFYUI_PATH
points at a ComfyUI checkout with its requirements, and Playwright and Chromium are installed
(`pip install playwright`, Debian's `chromium`). SAMG_SCREENSHOTS=DIR also writes the picture of
the Wan 2.1 template that docs/comfyui.md shows."""

from __future__ import annotations

import json
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
    pack_copy(base / "custom_nodes" / "samg-video")
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
        assert "samg-video" in listed, listed
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_every_template_opens_whole_in_comfyuis_frontend(server):
    from playwright.sync_api import sync_playwright

    _, chromium = requirements()
    templates = sorted((ROOT / "example_workflows").glob("*.json"))
    assert len(templates) == 4
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(server, wait_until="networkidle", timeout=120_000)
        page.wait_for_function("window.app && window.app.graph", timeout=120_000)
        for path in templates:
            canvas = json.loads(path.read_text())
            if not page.get_by_text("samg-video", exact=True).count():
                page.get_by_text("Templates", exact=True).first.click()
            page.get_by_text("samg-video", exact=True).first.click()
            page.get_by_text(path.stem, exact=True).first.click()
            page.wait_for_function(f"(window.app.graph._nodes || window.app.graph.nodes).length == "
                                   f"{len(canvas['nodes'])}", timeout=30_000)
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
            if path.stem == "wan21_t2v_cfg_vs_samg" and os.environ.get("SAMG_SCREENSHOTS"):
                page.evaluate("async () => window.app.extensionManager.setting.set("
                              "'LiteGraph.Canvas.LowQualityRenderingZoomThreshold', 0.05)")
                page.evaluate("() => { const c = window.app.canvas; c.ds.scale = 0.75; c.ds.offset = [-150, -120];"
                              " c.setDirty(true, true); }")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(Path(os.environ["SAMG_SCREENSHOTS"]) / "comfyui_wan21_frontend.png"))
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
    assert "flicker: 1.000  (1 = steady, higher is better)" in shown, shown
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
