"""VBench's temporal dimensions: samg-video's one streaming pass against VBench's own code, side by side.

    python benchmarks/bench_vbench.py [--models tiny|real] [--frames 49] [--size 720x480] [--device cpu]
    python benchmarks/bench_vbench.py --memory [--frames 600] [--size 1280x720]

Speed: one clip (a translating texture, mp4 at 8 fps, so dynamic degree takes every frame) is
measured by `metrics.compute(..., metrics=subject_consistency, background_consistency,
dynamic_degree)` (frames decoded once, features batched) and by VBench 0.1.5's functions
(`subject_consistency`, `background_consistency`, `DynamicDegree.infer`, which decode the clip
once per dimension), with the same models: random weights, either tiny (2-block ViTs of width
64; the cost around the models) or at the real architectures (DINO ViT-B/16, CLIP ViT-B/32,
RAFT-large). Prints frames per second of each and the largest difference between their values.

Memory (`--memory`): the peak resident memory of each side for the two consistency dimensions on
a long clip, each in a fresh process, with the tiny models (the models' own memory is the same
on both sides; what differs is whether the clip is held whole).
Needs VBench's package (`pip install --no-deps vbench==0.1.5 openai-clip==1.0.1 easydict==1.14
"setuptools<81"`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DIMS = ("subject_consistency", "background_consistency", "dynamic_degree")


def reference_models(kind: str):
    """(dino, clip, raft) in the original architectures VBench loads, random weights."""
    sys.path.insert(0, str(ROOT / "tests" / "reference"))
    from dino_vision_transformer import VisionTransformer, vit_base
    sys.path.pop(0)
    import clip.model
    from easydict import EasyDict
    from vbench.third_party.RAFT.core.raft import RAFT

    torch.manual_seed(0)
    if kind == "tiny":
        dino = VisionTransformer(patch_size=16, embed_dim=64, depth=2, num_heads=1, qkv_bias=True,
                                 norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=0)
        clip_model = clip.model.CLIP(32, 224, 2, 64, 32, 77, 49408, 64, 1, 1)
    else:
        dino = vit_base(patch_size=16, num_classes=0)
        clip_model = clip.model.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)  # ViT-B/32
    raft = RAFT(EasyDict(small=False, mixed_precision=False, alternate_corr=False))
    return dino.eval(), clip_model.eval(), raft.eval()


def ours_from(dino, clip_model, raft, device):
    from samg_video.metrics import vbench

    return {"dino": vbench.dino_from_state_dict(dino.state_dict()).to(device),
            "clip": vbench.clip_vision_from_state_dict(clip_model.state_dict()).to(device),
            "raft": vbench.raft_from_state_dict(raft.state_dict()).to(device)}


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 8) -> Path:
    from samg_video import media

    g = np.random.default_rng(0)
    small = g.integers(0, 256, (height // 16, (width + 4 * frames) // 16, 3), dtype=np.uint8)
    base = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(small).permute(2, 0, 1)[None].float(),
                                                      size=(height, width + 4 * frames), mode="bilinear")[0]
                      .permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8))

    def frames_iter():
        for i in range(frames):
            yield base[:, 4 * i:4 * i + width]
    return media.write_video(np.stack(list(frames_iter())), path, fps=fps)


def run_vbench(path: str, dino, clip_model, raft, device, dims=DIMS) -> tuple[dict, dict]:
    """VBench's values and seconds per dimension (each of its functions decodes the clip itself)."""
    from easydict import EasyDict
    from vbench.background_consistency import background_consistency
    from vbench.dynamic_degree import DynamicDegree
    from vbench.subject_consistency import subject_consistency

    out, seconds = {}, {}
    for dim in dims:
        t0 = time.perf_counter()
        if dim == "subject_consistency":
            out[dim] = subject_consistency(dino.to(device), [path], device, False)[1][0]["video_results"]
        elif dim == "background_consistency":
            out[dim] = background_consistency(clip_model.to(device), None, [path], device, False)[1][0]["video_results"]
        else:
            dd = DynamicDegree.__new__(DynamicDegree)
            dd.args, dd.device, dd.model = EasyDict(), device, raft.to(device)
            out[dim] = dd.infer(path)
        seconds[dim] = time.perf_counter() - t0
    return out, seconds


def run_ours(path: str, models: dict, device, dims=DIMS) -> tuple[dict, float]:
    from samg_video import metrics

    t0 = time.perf_counter()
    row = metrics.compute(path, metrics=list(dims), vbench_models=models, device=device)
    return {d: row[d] for d in dims}, time.perf_counter() - t0


def speed(args) -> None:
    w, h = args.size
    with tempfile.TemporaryDirectory() as tmp:
        path = str(make_clip(Path(tmp) / "clip.mp4", args.frames, w, h))
        dino, clip_model, raft = reference_models(args.models)
        models = ours_from(dino, clip_model, raft, args.device)
        consistency = DIMS[:2]
        with torch.no_grad():
            ref, t_ref = run_vbench(path, dino, clip_model, raft, args.device)
            _, t_cons = run_ours(path, models, args.device, consistency)
            mine, t_all = run_ours(path, models, args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
          f"{args.frames} frames of {w}x{h}, {args.models} models (random weights)\n")
    print("| dimensions | VBench 0.1.5 s | samg-video s | VBench frames/s | samg-video frames/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("subject + background consistency", sum(t_ref[d] for d in consistency), t_cons),
            ("all three (with dynamic degree)", sum(t_ref.values()), t_all)]
    for label, a, b in rows:
        print(f"| {label} | {a:.1f} | {b:.1f} | {args.frames / a:.2f} | {args.frames / b:.2f} | {a / b:.2f}x |")
    print("\nVBench per dimension: " + ", ".join(f"{d} {t:.1f} s" for d, t in t_ref.items()))
    print("values (VBench vs samg-video): " + ", ".join(f"{d} {ref[d]} vs {mine[d]}" for d in DIMS))


def peak_child(side: str, path: str) -> None:
    dino, clip_model, raft = reference_models("tiny")
    dims = ("subject_consistency", "background_consistency")
    with torch.no_grad():
        if side == "vbench":
            run_vbench(path, dino, clip_model, raft, "cpu", dims)
        else:
            run_ours(path, ours_from(dino, clip_model, raft, "cpu"), "cpu", dims)
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def memory(args) -> None:
    w, h = args.size
    with tempfile.TemporaryDirectory() as tmp:
        path = str(make_clip(Path(tmp) / "long.mp4", args.frames, w, h, fps=24))
        peaks = {}
        for side in ("vbench", "ours"):
            res = subprocess.run([sys.executable, __file__, "--peak-child", side, path], capture_output=True, text=True)
            peaks[side] = json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"] if res.returncode == 0 else None
            if res.returncode:
                print(side, "failed:", res.stderr.strip().splitlines()[-1:])
    clip_mib = args.frames * w * h * 3 / 2**20
    print(f"{args.frames} frames of {w}x{h} (uint8 {clip_mib:.0f} MiB; float32 {4 * clip_mib:.0f} MiB), "
          "subject + background consistency, tiny models, CPU\n")
    print("| | peak resident memory (MiB) |")
    print("|---|---:|")
    for side, label in (("vbench", "VBench 0.1.5"), ("ours", "samg-video")):
        print(f"| {label} | {peaks[side]:.0f} |" if peaks[side] else f"| {label} | failed |")


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main() -> None:
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny", choices=["tiny", "real"])
    p.add_argument("--frames", type=int)
    p.add_argument("--size", type=size)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--memory", action="store_true", help="peak memory on a long clip instead of speed")
    p.add_argument("--peak-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.peak_child:
        return peak_child(*args.peak_child)
    if args.memory:
        args.frames, args.size = args.frames or 600, args.size or (1280, 720)
        return memory(args)
    args.frames, args.size = args.frames or 49, args.size or (720, 480)
    speed(args)


if __name__ == "__main__":
    main()
