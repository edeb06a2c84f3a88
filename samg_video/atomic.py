"""Atomic file writes: a file appears whole at its final name, or not at all.

Every write of the package goes through `atomic_path`: the data is written to a
temporary name beside the target, then renamed over it (`os.replace`, atomic within one
file system). The helper owns its temporary names,

    .{name}.{pid}.{token}.tmp{suffix}        e.g. .clip.mp4.4121.9f3a61c2.tmp.mp4

(the real suffix last, so encoders that read the format from the name still see it), and
the cleanup of the temporaries that a killed writer left behind (`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp(?P<suffix>\.[^.]*)?$")


def temp_path(path: str | Path, suffix: str | None = None) -> Path:
    """A temporary name beside `path`, unique to this process and call (concurrent writers never
    share one), ending in `suffix` (default: the path's own)."""
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{suffix}")


def commit(tmp: Path, path: Path) -> None:
    """Move a finished temporary onto its final name: the one rename of every atomic write."""
    os.replace(tmp, path)


def discard(tmp: Path) -> None:
    """Remove a temporary file or folder, if it is there."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path (ending in `suffix`, default the path's own) to write; on a clean
    exit it replaces `path`, on any error it is removed.

        with atomic_path("out/clip.mp4") as tmp:
            encode(frames, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        discard(tmp)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write a binary file atomically; returns its path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (UTF-8) atomically; returns its path."""
    return write_bytes(path, text.encode("utf-8"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(folder: str | Path) -> int:
    """Delete the temporaries in `folder` whose writing process is gone (killed mid-write);
    returns how many were removed. Temporaries of live writers are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        match = TEMP_NAME.match(entry.name)
        if match and int(match["pid"]) != os.getpid() and not _alive(int(match["pid"])):
            discard(entry)
            removed += 1
    return removed
