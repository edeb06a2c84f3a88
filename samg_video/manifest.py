"""A run folder's records: the manifest shards (`manifest.rank{i}.jsonl`, one JSON line per
finished item, appended durably), the lock each writing process holds on its shard, and the
clips beside them (`clips/{id}.mp4`, `clips/{id}_field.mp4`, and `clips/{id}.npz`, the exact frames, where
the sweep keeps them).

    rows = read_manifest("runs/study")          # every recorded item, the last record of an id winning
    with SweepLock(run, rank=0):                 # one writer per shard; released however the holder exits
        append_line(run / "manifest.rank0.jsonl", row)

A line that is not a record (a torn write, an id that is not 16 hex digits, no method) is
never read back, so no id reaches a file name or a page unchecked.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import socket
import time
from pathlib import Path

import numpy as np

from . import media
from .atomic import write_bytes, write_text

ID = re.compile(r"[0-9a-f]{16}")  # Item.id: 16 hex digits of a sha1


def read_manifest(run_dir: str | Path) -> list[dict]:
    """All recorded items (the last record of an id wins), sorted by id."""
    rows = {}
    for shard in sorted(Path(run_dir).glob("manifest.rank*.jsonl")):
        for line in shard.read_text().splitlines():
            row = _record(line)
            if row is not None:
                rows[row["id"]] = row
    return sorted(rows.values(), key=lambda r: r["id"])

def _record(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    ok = isinstance(row, dict) and isinstance(row.get("id"), str) and ID.fullmatch(row["id"]) is not None \
        and isinstance(row.get("method"), dict)
    return row if ok else None  # an id that is no item id (a quote, a path) never reaches a file name or a page

def append_line(path: Path, row: dict) -> None:
    """Append one JSON line durably, in one write; a torn last line (an interrupted writer) is
    closed off first, so the new record starts on a line of its own."""
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    line = ("\n" if torn else "") + json.dumps(row, allow_nan=False) + "\n"
    with open(path, "a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())

def compact_shard(path: Path) -> int:
    """Rewrite a manifest shard without its unreadable lines (torn writes, non-records), atomically;
    returns how many were dropped."""
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    good = [line for line in lines if _record(line) is not None]
    if len(good) != len(lines):
        write_text(path, "".join(line + "\n" for line in good))
    return len(lines) - len(good)

def check_appendable(path: Path) -> None:
    """Before any work: the manifest shard can take new lines (an immutable, read-only or
    non-regular file would lose every result of the run)."""
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise ValueError(f"Cannot record results in {path}: {e.strerror or e}; make it writable "
                         "or run into another folder.") from None

def done_ids(run_dir: Path, retry_failed: bool = False, ids: set[str] | None = None) -> set[str]:
    """Ids in any manifest shard whose results are all there (failed ones too, unless retry_failed);
    torn lines are ignored. Of `ids` (default: all), a finished item counts only while its clip is
    on disk and holds the frames its record says (`clip_intact`), so a deleted or broken clip is redone."""
    done = set()
    for r in read_manifest(run_dir):
        if ids is not None and r["id"] not in ids:
            continue
        if "error" in r:
            if not retry_failed:
                done.add(r["id"])
        elif clip_intact(clip_path(run_dir, r["id"]), r.get("frames")):
            done.add(r["id"])
    return done

def clip_intact(path: Path, frames: int | None) -> bool:
    """Whether a recorded clip is on disk and its stream holds `frames` frames (read without decoding)."""
    import imageio_ffmpeg

    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        return frames is None or imageio_ffmpeg.count_frames_and_secs(str(path))[0] == frames
    except Exception:  # noqa: BLE001  (ffmpeg cannot read it: broken)
        return False

def clip_path(run_dir: Path, item_id: str, kind: str = "") -> Path:
    """clips/{id}.mp4, or clips/{id}_{kind}.mp4 (kind 'field': the scale-field heatmap)."""
    if not ID.fullmatch(item_id):
        raise ValueError(f"{item_id!r} is not a sweep item id (16 hex digits).")
    return Path(run_dir) / "clips" / (f"{item_id}_{kind}.mp4" if kind else f"{item_id}.mp4")

def frames_path(run_dir: Path, item_id: str) -> Path:
    """Where a sweep with `keep_frames` keeps an item's exact frames (uint8 (F, H, W, 3), .npz)."""
    return Path(run_dir) / "clips" / f"{item_id}.npz"


def load_frames(run_dir: Path, item_id: str) -> np.ndarray | None:
    """An item's kept frames, or None (not kept, or unreadable)."""
    try:
        with np.load(frames_path(run_dir, item_id), allow_pickle=False) as data:
            return data["frames"]
    except (OSError, ValueError, KeyError):
        return None


def save_clips(run_dir: Path, item_id: str, clip: np.ndarray, heat: np.ndarray | None, fps: int,
               frames: np.ndarray | None = None) -> None:
    """An item's clip (and field heatmap) as video; `frames`: its exact uint8 frames as well (for
    pixel comparisons the video's compression would blur), written before the clip."""
    (run_dir / "clips").mkdir(parents=True, exist_ok=True)
    if frames is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, frames=frames)
        write_bytes(frames_path(run_dir, item_id), buffer.getvalue())
    if heat is not None:  # the heatmap first: a present clip means a complete pair
        media.write_video(heat, clip_path(run_dir, item_id, "field"), fps=fps)
    media.write_video(clip, clip_path(run_dir, item_id), fps=fps)

class SweepLock:
    """An exclusive lock on one process's shard of a run folder: `fcntl.flock` on
    `manifest.rank{i}.lock`, which the kernel releases when the holder exits however it exits,
    so a lock is never stale. The file names the holder (pid, host, start) for the message a
    second sweep gets; a lock file without a holder is simply taken."""

    def __init__(self, run: Path, rank: int):
        self.path = run / f"manifest.rank{rank}.lock"
        self.fd: int | None = None

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            return f"process {holder['pid']} on {holder['host']} since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def __enter__(self) -> "SweepLock":
        while True:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ValueError(f"{self.path.parent} is being written by {self._holder()}; wait for it or use "
                                 "another --out.") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file its last holder unlinked while we opened it
                break
            os.close(fd)
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.write(fd, me.encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)  # before the release: a waiter then sees a new file
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
