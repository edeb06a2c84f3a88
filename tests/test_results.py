"""Committed documents are complete: every picture, clip and page that a committed report or doc
links to is in the tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

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
