"""The one atomic-write helper: whole files or none, its own temporary names, stale ones cleaned."""

import os
import subprocess
import sys

import pytest

from samg_video import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic.write_text(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("encoder failed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_temporary_names_keep_the_suffix_and_name_their_writer(tmp_path):
    tmp = atomic.temp_path(tmp_path / "clip.v2.mp4")
    match = atomic.TEMP_NAME.match(tmp.name)
    assert tmp.suffix == ".mp4" and match and match["name"] == "clip.v2.mp4" and int(match["pid"]) == os.getpid()
    assert atomic.temp_path(tmp_path / "x", ".gif").suffix == ".gif"
    assert atomic.temp_path(tmp_path / "a") != atomic.temp_path(tmp_path / "a")


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".clip.mp4.{dead}.0123abcd.tmp.mp4"
    live = tmp_path / f".clip.mp4.{os.getppid()}.0123abcd.tmp.mp4"
    other = tmp_path / ".hidden.tmp.mp4"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    assert atomic.remove_stale(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()
    assert atomic.remove_stale(tmp_path / "missing") == 0
