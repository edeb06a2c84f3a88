"""Whole-generation wall time of SAMG against plain CFG, side by side, on the bundled model.

    python scripts/bench_pipeline.py [--repeats 5] [--steps 25] [--batch 1]

Each repeat runs the pipeline's own CFG, then the same generation with SAMG applied
(`pipelines.apply`), alternating, so both see the same machine state. Prints medians
and the ratio. Target: SAMG / CFG <= 1.03.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samg_video.demo import load_pipeline  # noqa: E402
from samg_video.pipelines import apply  # noqa: E402

METHODS = {
    "samg": {"method": "samg", "w_min": 3.0, "w_max": 9.0},
    "samg+all smoothing": {"method": "samg", "w_min": 3.0, "w_max": 9.0, "spatial_sigma": 1.0,
                           "temporal_sigma": 1.0, "step_ema": 0.5, "bound": 2.0},
}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    pipe = load_pipeline()
    prompts = ["a red circle moving left"] * args.batch

    def generate():
        pipe(prompts, num_inference_steps=args.steps, guidance_scale=6.0, progress=False,
             generator=torch.Generator().manual_seed(0))

    def with_method(cfg):
        def run():
            with apply(pipe, cfg):
                generate()
        return run

    runs = {"cfg (pipeline's own)": generate, **{k: with_method(v) for k, v in METHODS.items()}}
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn))
    base = statistics.median(times["cfg (pipeline's own)"])
    print(f"bundled model, batch {args.batch}, {args.steps} steps, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print("| run | median s | ratio to CFG |")
    print("|---|---:|---:|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.3f} | {statistics.median(v) / base:.3f} |")


if __name__ == "__main__":
    main()
