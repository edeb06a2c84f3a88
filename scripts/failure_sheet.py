"""A contact sheet of the bundled model's failed single-object clips, one row per clip.

    python scripts/failure_sheet.py [--setting "cfg 2"] [--validation] [--out evaluation/results/figures/failures.png]

Generates the held-out (or validation) single-object pairs of `eval_demo_model.py` at
one guidance setting, scores them, prints each failure (prompt, what the scorer
detected: colour, shape, motion, blobs) and writes the failed clips' frames side by
side, upscaled, as a PNG.
"""

from __future__ import annotations

import argparse

import numpy as np

from samg_video import media, viz
from samg_video.demo import score
from samg_video.demo.evaluate import SETTINGS, evaluate, held_out_pairs
from samg_video.generate import load_target
from samg_video.guidance.spec import parse_spec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", default="cfg 2", choices=list(SETTINGS))
    p.add_argument("--validation", action="store_true")
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--model-path")
    p.add_argument("--rows", type=int, default=12, help="at most this many failed clips in the picture")
    p.add_argument("--upscale", type=int, default=2)
    p.add_argument("--out", default="evaluation/results/figures/failures.png")
    args = p.parse_args()
    media.check_writable(args.out)
    target = load_target("demo", args.model_path)
    pairs = held_out_pairs(args.pairs, 1, args.validation)
    rows = evaluate(target, parse_spec(SETTINGS[args.setting], target.card), pairs)
    failed = [r for r in rows if not r["prompt_correct"]]
    for r in failed:
        found = "; ".join(f"{d['color']} {d['shape']} {d['motion']} x{d['blobs']}"
                          for d in score(r["clip"], r["prompt"])["detected"])
        print(f"{r['prompt']!r} (seed {r['seed']}): detected {found or 'nothing'}")
    print(f"{len(failed)} of {len(pairs)} failed at {args.setting}")
    if failed:
        sheet = viz.contact_sheet(np.stack([r["clip"] for r in failed[:args.rows]]), args.upscale)
        media.write_image(args.out, sheet)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
