"""Report pages in Chromium (Playwright): every sortable table of a fresh report and of the committed
reports sorts when its headers are clicked, with no script error. Skipped unless Playwright and
Chromium are installed (`pip install playwright`, Debian's `chromium`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from samg_video import cli

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

SORTED = """(table) => {
    const heads = [...table.tHead.rows[0].cells], rows = () => [...table.tBodies[0].rows];
    const out = [];
    heads.forEach(th => {
        th.click();
        const values = rows().map(r => r.cells[th.cellIndex].dataset.v).filter(v => v !== undefined).map(Number);
        out.push(values.every((v, k) => k === 0 || values[k - 1] <= v));
    });
    return out;
}"""


def reports(tmp_path) -> list[Path]:
    config = yaml.safe_load((ROOT / "configs" / "sweeps" / "smoke.yaml").read_text())
    config["steps"] = 2
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(tmp_path / "smoke.yaml"), "--out", str(tmp_path / "run")]) == 0
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    return [tmp_path / "run" / "report.html", *sorted((ROOT / "evaluation" / "results").rglob("report.html"))]


def test_every_sortable_table_sorts_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install playwright)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for page_path in reports(tmp_path):
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(page_path.as_uri())
            tables = page.query_selector_all("table.sort")
            if page_path.parent.name == "run":
                assert len(tables) >= 3, page_path  # a fresh report: levels, paired differences, every item
            for table in tables:
                ascending = table.evaluate(SORTED)
                assert ascending and all(ascending), (page_path, ascending)
            assert errors == [], (page_path, errors)
            page.close()
        browser.close()
