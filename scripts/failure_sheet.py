"""A contact sheet of the bundled model's failed single-object clips, one row per clip.

    python scripts/failure_sheet.py [--setting "cfg 2"] [--validation] [--out evaluation/results/figures/failures.png]

Generates the 64 held-out (or validation) single-object pairs of `eval_demo_model.py`
at one guidance setting, scores them, prints each failure (prompt, what the scorer
detected: colour, shape, motion, blobs) and writes the failed clips' 8 frames side by
side, upscaled, as a PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_demo_model import SETTINGS, generate_all, held_out_pairs  # noqa: E402

from samg_video import guidance  # noqa: E402
from samg_video.demo import load_pipeline, score  # noqa: E402


def sheet(clips: np.ndarray, upscale: int, gap: int = 2) -> np.ndarray:
    """Clips (N, F, H, W, 3) in [0, 1] -> uint8 image (N rows of F frames, grey gaps)."""
    n, f, h, w, _ = clips.shape
    out = np.full((n * (h + gap), f * (w + gap), 3), 0.25, dtype=np.float32)
    for i in range(n):
        for t in range(f):
            out[i * (h + gap):i * (h + gap) + h, t * (w + gap):t * (w + gap) + w] = clips[i, t]
    return (out.repeat(upscale, 0).repeat(upscale, 1) * 255).round().astype(np.uint8)


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
    pipe = load_pipeline(args.model_path)
    pairs = held_out_pairs(args.pairs, 1, args.validation)
    frames, _ = generate_all(pipe, guidance.from_dict(SETTINGS[args.setting]), pairs, steps=25, batch=16)
    failed = []
    for (prompt, seed), clip in zip(pairs, frames):
        r = score(clip, prompt)
        if not r["correct"]:
            failed.append(clip)
            found = "; ".join(f"{d['color']} {d['shape']} {d['motion']} x{d['blobs']}" for d in r["detected"])
            print(f"{prompt!r} (seed {seed}): detected {found or 'nothing'}")
    print(f"{len(failed)} of {len(pairs)} failed at {args.setting}")
    if failed:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet(np.stack(failed[:args.rows]), args.upscale)).quantize(128).save(args.out, optimize=True)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
