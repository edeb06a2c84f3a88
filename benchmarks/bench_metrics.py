"""Speed and memory of the temporal metrics.

    python benchmarks/bench_metrics.py [--skip-memory | --memory-only] [--memory-frames 600]

1. Frames per second of each metric on a 49-frame 480x720 clip (a photograph moving
   by a known translation), and of flicker + warp_error + motion together (they share
   one pair of flows per frame pair), with torch's default threads.
2. Peak resident memory of `samg-video eval`-style streaming over a 600-frame 1280x720
   mp4 (written first, frame by frame), measured in a fresh subprocess as VmHWM, and
   the peak of the ffmpeg decoder subprocess beside it (--decoder decord: none).
Targets: flicker + warp_error + motion >= 10 frames/s; LPIPS (AlexNet) >= 4 frames/s;
peak memory < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


from samg_video import metrics


def moving_photo(frames: int, height: int, width: int, shift=(1.3, -0.6)):
    """Yield uint8 frames of a photograph translated by `shift` pixels per frame."""
    from skimage import data

    photo = cv2.resize(data.astronaut(), (width + 64, height + 64), interpolation=cv2.INTER_CUBIC)
    for t in range(frames):
        m = np.float32([[1, 0, shift[0] * t], [0, 1, shift[1] * t]])
        moved = cv2.warpAffine(photo, m, (width + 64, height + 64), borderMode=cv2.BORDER_REFLECT)
        yield moved[32:32 + height, 32:32 + width]


def fps(video: np.ndarray, names: list[str]) -> float:
    metrics.compute(video[:3], metrics=names)  # warm-up (LPIPS weights, OpenCV)
    start = time.perf_counter()
    metrics.compute(video, metrics=names)
    return len(video) / (time.perf_counter() - start)


def write_long_video(path: Path, frames: int) -> None:
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (1280, 720), fps=24, codec="libx264", macro_block_size=1)
    writer.send(None)
    for frame in moving_photo(frames, 720, 1280):
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _hwm(status: str) -> int:
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))


def children_peak(stop, found: dict) -> None:
    """Poll /proc for our child processes (the ffmpeg decoder) and keep each one's VmHWM.

    (getrusage(RUSAGE_CHILDREN) is no good here: a child started by vfork reports the
    parent's resident set as its own maximum.)
    """
    import os

    me = str(os.getpid())
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
            if ppid == me and "VmHWM:" in status:
                found[pid] = max(found.get(pid, 0), _hwm(status))
        stop.wait(0.2)


def memory_child(path: str, decoder: str, names: list[str]) -> None:
    import threading

    stop, found = threading.Event(), {}
    poller = threading.Thread(target=children_peak, args=(stop, found), daemon=True)
    poller.start()
    start = time.perf_counter()
    result = metrics.compute(path, metrics=names, decoder=decoder)
    stop.set()
    poller.join()
    peak = _hwm(Path("/proc/self/status").read_text())
    child = max(found.values(), default=0)  # the ffmpeg decoder, if any
    print(json.dumps({"peak": peak, "decoder_peak": child, "frames": result["frames"],
                      "seconds": time.perf_counter() - start}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory measurement")
    p.add_argument("--memory-frames", type=int, default=600)
    p.add_argument("--memory-metrics", nargs="+", default=["flicker", "warp_error", "motion", "saturation",
                                                             "lpips_temporal"])
    p.add_argument("--decoder", default="ffmpeg", choices=["ffmpeg", "decord"])
    p.add_argument("--memory-child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child[0], args.memory_child[1], args.memory_child[2:])
    if not args.memory_only:
        speed()
    if not args.skip_memory:
        memory(args.memory_frames, args.memory_metrics, args.decoder)


def speed() -> None:
    import torch

    video = np.stack(list(moving_photo(49, 480, 720)))
    print(f"49 frames of 480x720, {torch.get_num_threads()} torch threads, OpenCV {cv2.__version__}")
    print("| metrics | frames/s |")
    print("|---|---:|")
    for names in (["flicker"], ["warp_error"], ["motion"], ["saturation"], ["flicker", "warp_error", "motion"],
                  ["lpips_temporal"]):
        print(f"| {' + '.join(names)} | {fps(video, names):.1f} |", flush=True)


def memory(frames: int, names: list[str], decoder: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp4"
        write_long_video(path, frames)
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(path), decoder, *names],
                             capture_output=True, text=True, check=True)
        stats = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\npeak memory over {stats['frames']} frames of 1280x720 ({', '.join(names)}; {decoder} decoder): "
          f"{stats['peak'] / 2**30:.2f} GiB = {stats['peak'] / 1e9:.2f} GB in {stats['seconds']:.0f} s; "
          f"decoder subprocess peak {stats['decoder_peak'] / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
