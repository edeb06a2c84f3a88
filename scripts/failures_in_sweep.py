"""What goes wrong in the bundled model's clips: objects drawn twice, and motion lost.

    python scripts/failures_in_sweep.py RUN_DIR [--method cfg | --method cfg:2] [--json out.json]

Reads a bundled-model sweep folder (`samg-video sweep ... --out RUN_DIR`; the clips it
saved, `RUN_DIR/clips/{id}.mp4`) and looks at the items of one guidance method (every
scale of it).

Copies, single-object items whose object count was wrong:

- what the extra is: the prompted colour in two or more blobs (a copy), or another colour;
- for copies, the second blob's area over the first's and the distance of their centres
  (pixels), over the frames where both are present: a full-size copy far away is a second
  object, a small blob next to the first is a torn edge;
- the failure rate by colour, shape, motion and noise seed, and per prompt/seed pair at
  how many of the method's scales it happens: a pair that draws a copy at every scale
  is set by its starting noise, not by the guidance.

Motion, every item whose motion was wrong for some object: does a prompted object leave
the frame (in some frame its mask touches the border while its area falls below
`LEAVING` of its median over the first half of the clip)? The same share over the items
with every motion right is the comparison.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from samg_video import media
from samg_video.demo.score import blobs, color_masks, detect, to_frames
from samg_video.demo.world import parse_prompt
from samg_video.sweep import clip_path, read_manifest

LEAVING = 0.6


def leaves_frame(masks: np.ndarray) -> bool:
    """masks (F, H, W) of one object: True when it touches the border with shrunken area in some frame."""
    area = masks.reshape(len(masks), -1).sum(1).astype(np.float64)
    early = np.median(area[: max(1, len(area) // 2)])
    border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
    return bool((border & (area < LEAVING * early)).any())


def motion_failures(run: Path, rows: list[dict]) -> dict:
    """How many items lost some object's motion, in how many of those (and of the others) an object leaves,
    and how many have the whole prompt right."""
    counts = Counter()
    for r in rows:
        masks = color_masks(to_frames(iio.imread(clip_path(run, r["id"]))))
        gone = any(leaves_frame(masks[color]) for color, _, _ in parse_prompt(r["prompt"]))
        kind = "wrong" if r["prompt_motion"] < 1 else "right"
        counts[kind] += 1
        counts[f"{kind}_leaving"] += gone
        counts["whole_prompt_right"] += bool(r["prompt_correct"])
    return dict(counts)


def copy_geometry(clip: np.ndarray, color: str) -> list[tuple[float, float]]:
    """(second / first blob area, centre distance in pixels) for each frame with two blobs of `color`."""
    out = []
    for mask in color_masks(to_frames(clip))[color]:
        parts = blobs(mask)
        if len(parts) >= 2:
            a, b = parts[0], parts[1]
            out.append((float(b.sum() / a.sum()), float(np.linalg.norm(np.argwhere(a).mean(0) - np.argwhere(b).mean(0)))))
    return out


def wanted(method: dict, choice: str) -> bool:
    """A method name ("cfg": every scale of it) or one spec ("cfg:2")."""
    if ":" not in choice:
        return method["method"] == choice
    from samg_video.guidance.spec import parse_spec
    from samg_video.sweep import model_card

    return method == parse_spec(choice, model_card({"model": "demo"})).to_dict()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--method", default="cfg",
                   help="the items read: a method name (every scale of it) or one spec such as cfg:2")
    p.add_argument("--json", help="write the numbers here too")
    args = p.parse_args()
    run = Path(args.run_dir)
    every = [r for r in read_manifest(run) if wanted(r["method"], args.method) and "error" not in r]
    rows = [r for r in every if r.get("objects") == 1]
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
        "frames": rows[0].get("frames"),
        "motion": {n: motion_failures(run, [r for r in every if r.get("objects") == n]) for n in (1, 2)},
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
    for n, m in summary["motion"].items():
        if m:
            print(f"{n}-object items: motion wrong in {m.get('wrong', 0)} of {m.get('wrong', 0) + m.get('right', 0)}, "
                  f"an object leaving the frame in {m.get('wrong_leaving', 0)} of them "
                  f"(in {m.get('right_leaving', 0)} of the {m.get('right', 0)} with motion right); "
                  f"whole prompt right in {m['whole_prompt_right']}")
    if args.json:
        media.write_text(args.json, json.dumps(summary, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
