"""Where the bundled model draws a single object twice: the count failures of a sweep's clips.

    python scripts/copies_in_sweep.py RUN_DIR [--method cfg] [--json out.json]

Reads a bundled-model sweep folder (`samg-video sweep ... --out RUN_DIR`; the clips it
saved, `RUN_DIR/clips/{id}.mp4`) and, for the single-object items of one guidance method
(every scale of it), looks at each clip whose object count was wrong:

- what the extra is: the prompted colour in two or more blobs (a copy), or another colour;
- for copies, the second blob's area over the first's and the distance of their centres
  (pixels), over the frames where both are present: a full-size copy far away is a second
  object, a small blob next to the first is a torn edge;
- the failure rate by colour, shape, motion and noise seed, and per prompt/seed pair at
  how many of the method's scales it happens: a pair that draws a copy at every scale
  is set by its starting noise, not by the guidance.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from samg_video import io
from samg_video.demo.score import blobs, color_masks, detect, to_frames
from samg_video.demo.world import parse_prompt
from samg_video.sweep import clip_path, read_manifest


def copy_geometry(clip: np.ndarray, color: str) -> list[tuple[float, float]]:
    """(second / first blob area, centre distance in pixels) for each frame with two blobs of `color`."""
    out = []
    for mask in color_masks(to_frames(clip))[color]:
        parts = blobs(mask)
        if len(parts) >= 2:
            a, b = parts[0], parts[1]
            out.append((float(b.sum() / a.sum()), float(np.linalg.norm(np.argwhere(a).mean(0) - np.argwhere(b).mean(0)))))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--method", default="cfg", help="the guidance method whose items are read (all its scales)")
    p.add_argument("--json", help="write the numbers here too")
    args = p.parse_args()
    run = Path(args.run_dir)
    rows = [r for r in read_manifest(run) if r.get("objects") == 1 and r["method"]["method"] == args.method
            and "error" not in r]
    if not rows:
        p.error(f"{run} holds no single-object items of {args.method!r}; run a bundled-model sweep with it first.")
    totals, fails, kinds, geometry = Counter(), Counter(), Counter(), []
    per_pair = defaultdict(list)
    for r in rows:
        (color, shape, motion), = parse_prompt(r["prompt"])
        keys = [("colour", color), ("shape", shape), ("motion", motion), ("seed", str(r["seed"]))]
        totals.update(keys)
        failed = r["prompt_count"] < 1
        per_pair[(r["prompt"], r["seed"])].append(failed)
        if not failed:
            continue
        fails.update(keys)
        clip = iio.imread(clip_path(run, r["id"]))
        found = detect(clip)
        kinds["another colour" if len(found) > 1 else "a copy (same colour)"] += 1
        geometry += copy_geometry(clip, color)
    scales = len(next(iter(per_pair.values())))
    pairs = {k: sum(v) for k, v in per_pair.items() if sum(v)}
    ratio, dist = np.array([g[0] for g in geometry]), np.array([g[1] for g in geometry])
    summary = {
        "items": len(rows), "count_failures": sum(kinds.values()), "kinds": dict(kinds),
        "copy_area_ratio_median": float(np.median(ratio)) if len(ratio) else None,
        "copy_distance_px_median": float(np.median(dist)) if len(dist) else None,
        "rate": {f"{k}={v}": f"{fails[(k, v)]}/{n}" for (k, v), n in sorted(totals.items())},
        "pairs": len(per_pair), "pairs_with_a_copy": len(pairs),
        "pairs_with_a_copy_at_every_scale": sum(v == len(per_pair[k]) for k, v in pairs.items()),
        "scales_per_pair": scales,
    }
    print(f"{summary['items']} single-object {args.method} items, {summary['count_failures']} count failures: "
          + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    if len(ratio):
        print(f"copies: second blob {summary['copy_area_ratio_median']:.2f} of the first's area (median), "
              f"centres {summary['copy_distance_px_median']:.1f} px apart")
    for key, rate in summary["rate"].items():
        print(f"  {key:16s} {rate}")
    print(f"{len(pairs)} of {len(per_pair)} prompt/seed pairs draw a copy at some of the {scales} settings, "
          f"{summary['pairs_with_a_copy_at_every_scale']} at every one")
    if args.json:
        io.write_text(args.json, json.dumps(summary, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
