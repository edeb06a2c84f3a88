"""Committed documents are complete: every picture, clip and page that a committed report or doc
links to is in the tree."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from samg_video.report.page import SORT_SCRIPT

ROOT = Path(__file__).resolve().parents[1]
HTML_REF = re.compile(r"""\b(?:src|href|poster)\s*=\s*["']([^"']+)["']""")
MD_REF = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def tracked() -> set[str]:
    """Files in the repository (git's index; every file under the root when it is not a checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return set(out.decode().split("\0")) - {""}
    except (OSError, subprocess.CalledProcessError):
        return {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts}


def references(path: Path) -> list[str]:
    """Local targets a document links to (no URLs with a scheme, no anchors, no data URIs)."""
    text = path.read_text(errors="replace")
    found = HTML_REF.findall(text) + (MD_REF.findall(text) if path.suffix == ".md" else [])
    local = []
    for ref in found:
        parsed = urlparse(ref)
        if parsed.scheme or parsed.netloc or ref.startswith("#") or not parsed.path:
            continue
        local.append(unquote(parsed.path))
    return local


def documents(files: set[str]) -> list[str]:
    return sorted(f for f in files if f.endswith((".md", ".html")) and not f.startswith(("tests/", ".")))


def missing_references(files: set[str], root: Path = ROOT) -> list[str]:
    """'document -> target' for each link whose target (a file, or a folder holding files) is not in `files`."""
    root = root.resolve()
    missing = []
    for doc in documents(files):
        for ref in references(root / doc):
            target = ((root / doc).parent / ref).resolve()
            rel = target.relative_to(root).as_posix() if target.is_relative_to(root) else None
            if rel is None or not (rel in files or any(f.startswith(rel + "/") for f in files)):
                missing.append(f"{doc} -> {ref}")
    return missing


def test_every_committed_document_links_only_to_files_in_the_tree():
    files = tracked()
    assert documents(files), "no documents found"
    missing = missing_references(files)
    assert not missing, f"{len(missing)} broken links, e.g. " + "; ".join(missing[:5])


def test_a_missing_clip_is_caught(tmp_path):
    """The check itself: a gallery clip or a linked page that is not in the tree is reported;
    URLs, anchors, data URIs and present files are not."""
    (tmp_path / "r.html").write_text('<video src="gallery/absent.mp4" poster="p.png"></video><a href="#top">'
                                     '<img src="data:image/png;base64,AA"><a href="https://example.org/x.mp4">')
    (tmp_path / "p.png").write_bytes(b"png")
    (tmp_path / "doc.md").write_text("![plot](p.png) and [the report](r.html) and [gone](sub/gone.md)")
    files = {"r.html", "p.png", "doc.md"}
    assert missing_references(files, tmp_path) == ["doc.md -> sub/gone.md", "r.html -> gallery/absent.mp4"]


class Tables(HTMLParser):
    """Each <table> of a page as (its class, its header cells, the cell count of each body row)."""

    def __init__(self):
        super().__init__()
        self.tables, self.part = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"class": dict(attrs).get("class"), "head": 0, "rows": []})
        elif tag in ("thead", "tbody"):
            self.part = tag
        elif tag == "tr" and self.part == "tbody":
            self.tables[-1]["rows"].append(0)
        elif tag in ("th", "td") and self.tables:
            if self.part == "thead":
                self.tables[-1]["head"] += 1
            elif self.part == "tbody":
                self.tables[-1]["rows"][-1] += 1


def committed_reports() -> list[Path]:
    return [ROOT / f for f in sorted(tracked()) if f.startswith("evaluation/") and f.endswith("report.html")]


@pytest.mark.parametrize("path", committed_reports(), ids=lambda p: p.parent.relative_to(ROOT).as_posix())
def test_every_committed_report_has_tables_that_sort(path):
    """The DOM check run where no browser is (test_report_browser clicks them in Chromium): a committed
    report carries the current report's sorting script (the one that sorts each table by its own
    header's cellIndex), and every table is sortable, with a header row and a cell under each header
    in every row."""
    text = path.read_text()
    assert SORT_SCRIPT in text, f"{path}: no sorting script or an older one; regenerate it with `samg-video report`"
    parser = Tables()
    parser.feed(text)
    assert parser.tables, path
    for k, table in enumerate(parser.tables):
        assert table["class"] == "sort" and table["head"] > 0 and table["rows"], (path, k, table["class"])
        assert set(table["rows"]) == {table["head"]}, (path, k, table["head"], sorted(set(table["rows"])))
