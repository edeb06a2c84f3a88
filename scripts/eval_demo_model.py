"""Prompt accuracy and artifact levels of the bundled model under several guidance settings.

    python scripts/eval_demo_model.py [--pairs 64] [--validation] [--json FILE]

For each setting (a method spec such as 'samg:1-3,temporal_sigma=1', or its label 'samg 1-3 temporal_sigma=1')
it generates the held-out (or validation) prompt/seed pairs and reports colour / shape / motion / count /
whole-prompt accuracy from the exact scorer, the share of pixels the sampler left
outside [-1, 1] by more than 0.05 (over-saturation), the mean absolute frame-to-frame
change, and the scorer control "shape vs wrong shape".
"""

from __future__ import annotations

import argparse
import json
import time

from tqdm.auto import tqdm

from samg_video import media
from samg_video.demo.evaluate import ShapeScorer, held_out_pairs, summarise_by_objects
from samg_video.evaluation import evaluate_pairs
from samg_video.generate import load_target
from samg_video.guidance.spec import label, parse_spec

SETTINGS = ["cfg:1.5", "cfg:2", "cfg:3", "cfg:5", "cfg:7.5", "cfg:12", "samg:1-3", "samg:1.5-4.5",
            "samg:1.5-4.5,temporal_sigma=1", "samg:3-9", "samg:3-9,temporal_sigma=1"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--steps", type=int, help="sampling steps (default: the model card's)")
    p.add_argument("--frames", type=int, help="frames per clip (default: the model card's)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--model-path")
    p.add_argument("--settings", nargs="*", metavar="SETTING",
                   help="method specs such as 'samg:1-3,temporal_sigma=1' or labels such as 'cfg 2' "
                        f"(default: {' '.join(SETTINGS)})")
    p.add_argument("--suites", nargs="*", choices=["single", "double"], default=["single", "double"])
    p.add_argument("--validation", action="store_true",
                   help="use the validation prompts / seeds (choose settings here, report on the held-out pairs)")
    p.add_argument("--json", help="default: evaluation/results/demo_model_<version>_eval.json (_validation.json "
                                  "with --validation), named by the model card's version")
    args = p.parse_args()
    target = load_target(model="demo", model_path=args.model_path, steps=args.steps, frames=args.frames)
    target.pipe.set_progress_bar_config(disable=True)
    try:
        methods = [parse_spec(spec, target.card) for spec in args.settings or SETTINGS]
    except ValueError as error:
        p.error(str(error))
    specs = {label(m.to_dict()): m for m in methods}
    kind = ("validation" if args.validation else "eval") + (f"_{args.frames}f" if args.frames else "")
    args.json = args.json or f"evaluation/results/demo_model_{target.card['version']}_{kind}.json"
    media.check_writable(args.json)
    pairs = [pair for suite in args.suites
             for pair in held_out_pairs(args.pairs, 1 if suite == "single" else 2, args.validation)]
    results = {}
    for name, spec in specs.items():
        start = time.perf_counter()
        with tqdm(total=len(pairs), desc=name) as bar:
            rows = evaluate_pairs(target, spec, pairs, ShapeScorer(controls=True), args.batch, bar)
        results[name] = summarise_by_objects(rows) | {"seconds": round(time.perf_counter() - start, 1)}
    print("| setting | objects | colour | shape | motion | count | whole prompt | out of range | frame change "
          "| shape vs wrong shape |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for suite in args.suites:
            s = r[suite]
            print(f"| {name} | {suite} | {s['prompt_color']:.1%} | {s['prompt_shape']:.1%} | {s['prompt_motion']:.1%} "
                  f"| {s['prompt_count']:.1%} | {s['prompt_correct']:.1%} | {s['out_of_range']:.2%} "
                  f"| {s['frame_change']:.4f} | {s['shape_vs_wrong']:.1%} |")
    media.write_text(args.json, json.dumps({"pairs": args.pairs, "steps": target.kwargs["num_inference_steps"],
                                         "frames": target.kwargs["num_frames"], "validation": args.validation,
                                         "model": args.model_path or "bundled",
                                         "version": target.card.get("version"), "results": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
