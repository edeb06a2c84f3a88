"""Whole-generation wall time of SAMG against plain CFG, side by side.

    python benchmarks/bench_pipeline.py [--repeats 7] [--steps 25] [--batch 1] [--standins DIR] [--device cpu]

On the bundled model, and with --standins on every registry model's stand-in in DIR (the real
repo layout and scheduler with tiny weights, written by `python tests/standins/build.py DIR`). Each repeat
runs the pipeline's own CFG, then the same
generation with SAMG applied (`pipelines.apply`), alternating, so all runs see the same
machine state. Prints medians and ratios. Target: SAMG / CFG <= 1.03 on the bundled model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from diffusers.utils import logging as diffusers_logging

from samg_video.cards import card
from samg_video.demo import load_pipeline
from samg_video.pipelines import apply
from samg_video.pipelines.registry import load_model

METHODS = {
    "samg": {"method": "samg", "w_min": 3.0, "w_max": 9.0},
    "samg+all smoothing": {"method": "samg", "w_min": 3.0, "w_max": 9.0, "spatial_sigma": 1.0,
                           "temporal_sigma": 1.0, "step_ema": 0.5, "bound": 2.0},
}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(pipe, generate, repeats: int) -> dict[str, float]:
    """Median seconds of the pipeline's own CFG and of each SAMG setting, interleaved."""
    def with_method(cfg):
        def run():
            with apply(pipe, cfg):
                generate()
        return run

    runs = {"cfg (pipeline's own)": generate, **{k: with_method(v) for k, v in METHODS.items()}}
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def bundled(args):
    pipe = load_pipeline(device=args.device)
    pipe.set_progress_bar_config(disable=True)
    prompts = ["a red circle moving left"] * args.batch
    return pipe, lambda: pipe(prompts, num_inference_steps=args.steps, guidance_scale=6.0,
                              generator=torch.Generator().manual_seed(0))


def standin(name, folder: Path, args):
    c = card(name)
    adapter = str(folder / "motion-adapter") if name == "animatediff" else None
    pipe = load_model(c, str(folder / name), args.device, "float32", adapter_path=adapter)
    pipe.set_progress_bar_config(disable=True)
    frames, height, width = json.loads((folder / "sizes.json").read_text())[name]
    kwargs = dict(height=height, width=width, **({"num_frames": frames} if frames > 1 else {}))
    kwargs.update({"true_cfg_scale": 5.0, "negative_prompt": c["negative_prompt"]} if "true_cfg_scale" in c
                  else {"guidance_scale": 5.0})
    return pipe, lambda: pipe("a red fox runs on the beach", num_inference_steps=args.steps, output_type="latent",
                              generator=torch.Generator().manual_seed(0), **kwargs)


def main() -> None:
    diffusers_logging.set_verbosity_error()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--standins", type=Path, metavar="DIR",
                   help="also every stand-in in DIR (written by `python tests/standins/build.py DIR`)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    targets = {"bundled model": lambda: bundled(args)}
    if args.standins:
        names = json.loads((args.standins / "sizes.json").read_text())
        targets.update({f"stand-in {name}": (lambda n=name: standin(n, args.standins, args)) for name in names})
    print(f"{args.steps} steps, batch {args.batch}, device {args.device}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print("| pipeline | CFG s | " + " | ".join(f"{k} s (ratio)" for k in METHODS) + " |")
    print("|---|---:|" + "---:|" * len(METHODS))
    for label, make in targets.items():
        pipe, generate = make()
        medians = compare(pipe, generate, args.repeats)
        base = medians.pop("cfg (pipeline's own)")
        cells = " | ".join(f"{t:.3f} ({t / base:.3f})" for t in medians.values())
        print(f"| {label} | {base:.3f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
