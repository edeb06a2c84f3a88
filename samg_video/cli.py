"""The `samg-video` command. Thin: parses arguments and calls the library.

    samg-video generate --prompt "a red circle moving left" --out clip.mp4
    samg-video methods
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SHORTCUTS = {  # flag -> guidance parameter
    "scale": "scale", "w_min": "w_min", "w_max": "w_max", "spatial_sigma": "spatial_sigma",
    "temporal_sigma": "temporal_sigma", "step_ema": "step_ema", "normalize": "normalize", "bound": "bound",
}


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def guidance_from_args(args, default: dict):
    """The method named by --method / --config / flags, over the model's recommended default."""
    from . import guidance

    if args.config:
        config = guidance.load_config(args.config).to_dict()
    elif args.method is None or args.method == default.get("method"):
        config = dict(default)
    else:
        config = {"method": args.method}
    for flag, param in SHORTCUTS.items():
        if getattr(args, flag) is not None:
            config[param] = getattr(args, flag)
    for item in args.set or []:
        if "=" not in item:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}.")
        key, text = item.split("=", 1)
        config[key.strip()] = _value(text)
    return guidance.from_dict(config)


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate a video with SAMG or a baseline",
                       description="Generate a clip. With no --model it uses the bundled model on the CPU.")
    p.add_argument("--prompt", required=True)
    p.add_argument("--out", required=True, help="clip.mp4, clip.gif, or a folder for PNG frames")
    p.add_argument("--model", default="demo", help="'demo' (bundled, default)")
    p.add_argument("--model-path", help="folder holding the model's weights")
    p.add_argument("--method", help="guidance method (see `samg-video methods`); default: the model's recommendation")
    p.add_argument("--config", help="YAML guidance preset, e.g. configs/guidance/samg_temporal.yaml")
    p.add_argument("--scale", type=float, help="CFG-type scale")
    p.add_argument("--w-min", dest="w_min", type=float)
    p.add_argument("--w-max", dest="w_max", type=float)
    p.add_argument("--spatial-sigma", dest="spatial_sigma", type=float)
    p.add_argument("--temporal-sigma", dest="temporal_sigma", type=float)
    p.add_argument("--step-ema", dest="step_ema", type=float)
    p.add_argument("--normalize", choices=["clip", "frame"])
    p.add_argument("--bound", type=float)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other method parameter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--format", choices=["mp4", "gif", "png"], help="default: from the --out suffix")
    p.add_argument("--fps", type=int, default=6)
    p.add_argument("--upscale", type=int, default=8, help="nearest-neighbour upscaling for viewing")
    p.add_argument("--save-scale-field", nargs="?", const="", metavar="PATH",
                   help="also write the clip beside a heatmap of its scale field (default: OUT with _field)")
    p.set_defaults(func=cmd_generate)


def field_path(out: Path, requested: str) -> Path:
    if requested:
        return Path(requested)
    return out.with_name(out.stem + "_field" + out.suffix) if out.suffix else Path(str(out) + "_field")


def cmd_generate(args) -> int:
    import numpy as np
    import torch

    from . import io, viz
    from .demo import load_card, load_pipeline, parse_prompt, score
    from .pipelines import apply

    if args.model != "demo":
        raise ValueError(f"Unknown model {args.model!r}; available here: demo (the bundled model).")
    start = time.perf_counter()
    parse_prompt(args.prompt)
    card = load_card(args.model_path)
    method = guidance_from_args(args, card["recommended"])
    if args.save_scale_field is not None and method.name != "samg":
        raise ValueError(f"--save-scale-field needs a method with a scale field (samg), not {method.name!r}.")
    pipe = load_pipeline(args.model_path)
    fields = []
    with apply(pipe, method, callback=lambda info: fields.append(info.scale_field)):
        result = pipe(args.prompt, num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=2.0,
                      generator=torch.Generator().manual_seed(args.seed))
    clip = result.frames[0]
    out = io.write_video(clip, args.out, fps=args.fps, fmt=args.format, scale=args.upscale)
    print(f"wrote {out} ({method.name}: {method.to_dict()}) in {time.perf_counter() - start:.1f} s")
    if args.save_scale_field is not None:
        mean_field = torch.stack(fields).mean(0)[0, 0].numpy()  # (F, H, W)
        heat = viz.heatmap(mean_field, method.w_min, method.w_max)
        pair = viz.side_by_side([viz.label(io.upscale(io.to_uint8(clip), args.upscale), "video"),
                                 viz.label(io.upscale(heat, args.upscale), f"scale {method.w_min:g} (dark) - {method.w_max:g}")])
        print(f"wrote {io.write_video(pair, field_path(Path(args.out), args.save_scale_field), fps=args.fps)}")
    report = score(np.asarray(clip), args.prompt)
    print("prompt check: " + ", ".join(f"{k} {report[k]:.0%}" for k in ("color", "shape", "motion"))
          + f", objects found: {len(report['detected'])}")
    return 0


def cmd_methods(args) -> int:
    from . import guidance

    for name in guidance.available():
        print(f"{name}: {guidance.create(name).to_dict()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samg-video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_generate(sub)
    m = sub.add_parser("methods", help="list guidance methods and their default parameters")
    m.set_defaults(func=cmd_methods)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"samg-video: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
