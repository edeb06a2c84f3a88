"""samg-video: spatially adaptive guidance (SAMG) for video diffusion, and the temporal metrics to judge it.

    samg-video generate --prompt "a red circle moving left" --out clip.mp4
    samg-video eval clip.mp4 other.mp4 --json results.json
    samg-video models
    samg-video methods
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cards, catalogue, media
from .settings import DEFAULT_MODEL, LIMITS, SKIP_HELP, RunSettings

PARAMETER_FLAGS = ("scale", "w_min", "w_max", "spatial_sigma", "temporal_sigma", "step_ema", "normalize",
                   "bound")  # guidance parameters with a flag of their own (--w-min ...); the rest go through --set


def parameter_flag_help(name: str) -> tuple[dict, str]:
    """(argparse options, help) of a method parameter's flag, from its declaration (`guidance.base.param`):
    SAMG's where it has it, else the first method that declares it."""
    from .guidance import REGISTRY_PARAMETERS

    owner, p = REGISTRY_PARAMETERS[name]
    options = {"choices": list(p.choices)} if p.choices else {"type": float}
    return options, f"{owner}: {p.describe()}"


def add_parameter_flags(p, described: bool = True) -> None:
    """--scale, --w-min, ...: one flag per `PARAMETER_FLAGS` name, typed and described by its declaration.
    Without `described` (any command line but --help) nothing heavy is imported: each value is read as
    --set reads it (`yamlfile.value`) and the method's own declaration checks it when it is made."""
    from .yamlfile import value

    for name in PARAMETER_FLAGS:
        if described:
            options, text = parameter_flag_help(name)
            p.add_argument("--" + name.replace("_", "-"), dest=name, help=text.replace("%", "%%"), **options)
        else:
            p.add_argument("--" + name.replace("_", "-"), dest=name, type=value, metavar=name.upper())


def guidance_from_args(args, card: dict):
    """The method named by --method / --config / flags, over the model card's defaults."""
    from . import guidance
    from .guidance.spec import key_values, method_defaults

    if args.config:
        config = guidance.load_config(args.config).to_dict()
        if args.method and args.method != config["method"]:
            raise ValueError(f"--method {args.method} and --config {args.config} (a {config['method']} preset) "
                             "disagree; give one of them.")
    else:
        config = method_defaults(card, args.method)
    for param in PARAMETER_FLAGS:
        if getattr(args, param) is not None:
            config[param] = getattr(args, param)
    config.update(key_values(args.set or [], "--set", "--set temporal_sigma=1"))
    return guidance.from_dict(config)




def work_line(result) -> str:
    """'25 steps, all with the unconditional pass' / '25 steps, 8 without it: 0.84x CFG's work'."""
    steps = len(result.plans)
    skipped = sum(p != "compute" for p in result.plans)
    if not skipped:
        return f"{steps} steps, all with the unconditional pass"
    return f"{steps} steps, {skipped} without the unconditional pass: {result.denoiser_passes / 2:.2f}x CFG's work"


def add_generate(sub, described: bool = True) -> None:
    p = sub.add_parser("generate", help="generate a video with SAMG or a baseline",
                       description="Generate a clip. With no --model it uses the bundled model on the CPU.")
    p.add_argument("--prompt", required=True, help="what the clip shows, e.g. \"a red circle moving left\"")
    p.add_argument("--out", required=True, help="clip.mp4 / .webm / .avi / .gif, or a folder for PNG frames")
    add_model_options(p)
    add_input_options(p)
    add_output_options(p)
    p.add_argument("--method", help="guidance method (see `samg-video methods`); default: the model's recommendation")
    p.add_argument("--config", help="YAML guidance preset, e.g. configs/guidance/samg_temporal.yaml")
    add_parameter_flags(p, described)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other method parameter")
    p.add_argument("--skip", metavar="POLICY", help=(
        SKIP_HELP))
    p.add_argument("--format", choices=["mp4", "webm", "avi", "gif", "png"],
                   help="file format (default: from the --out suffix; png for a folder)")
    p.add_argument("--save-scale-field", nargs="?", const="", metavar="PATH",
                   help="also write the clip beside a heatmap of its scale field (default: OUT with _field)")
    p.set_defaults(func=cmd_generate)


MODEL_OPTIONS = RunSettings.keys()  # the one set (generate, compare, sweep)


def add_model_options(p, sweep: bool = False) -> None:
    """Options shared by every command that generates: which model, where, how, how much. In a sweep
    each defaults to the sweep config's value (a flag given overrides it), then to the same default."""
    given = "the sweep config's, else " if sweep else ""
    p.add_argument("--model", default=None if sweep else DEFAULT_MODEL,
                   help=f"a registry name (`samg-video models`); default: {given}{DEFAULT_MODEL}, the bundled model")
    p.add_argument("--model-path", help="folder holding the model's diffusers pipeline (default: the Hub cache)")
    p.add_argument("--adapter-path", help="AnimateDiff: folder holding the motion adapter (default: the Hub cache)")
    p.add_argument("--controlnet-path",
                   help="a ControlNet card: folder holding the ControlNet (default: the Hub cache)")
    p.add_argument("--device", default=None if sweep else "auto",
                   help=f"auto (the card's device, else CUDA when available, else the CPU), cpu, cuda, cuda:N; "
                        f"default: {given}auto")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"],
                   help=f"default: {given}the model card's on a GPU, float32 on the CPU")
    p.add_argument("--cpu-offload", action="store_true", default=None, help="diffusers model CPU offload (needs a GPU)")
    p.add_argument("--vae-tiling", action="store_true", default=None, help="decode the VAE in tiles (less memory)")
    p.add_argument("--frames", type=int, help=f"frames per clip; default: {given}the card's (rounded to the model's "
                                               "frame rule)")
    p.add_argument("--height", type=int, help=f"pixels; default: {given}the card's")
    p.add_argument("--width", type=int, help=f"pixels; default: {given}the card's")
    p.add_argument("--steps", type=int, help=f"denoising steps; default: {given}the card's")


def add_input_options(p) -> None:
    """What a generation is conditioned on besides the prompt."""
    p.add_argument("--image", metavar="PATH",
                   help="first frame for an image-to-video model (cards with `input: image`, see `samg-video models`)")
    p.add_argument("--video", metavar="PATH",
                   help="source clip (video file or folder of frames) for a video-to-video model (`input: video`)")
    p.add_argument("--strength", type=float,
                   help="video-to-video: share of the schedule re-run on the source, 0 to 1 (default: the card's)")
    p.add_argument("--negative-prompt", help="what the clip should not show (default: the model card's, if any)")


def conditioning(args, card: dict) -> dict:
    """Extra pipeline inputs from the command line, checked against what the model takes (before it loads)."""
    from .arguments import check_inputs

    check_inputs(card, {"image": bool(args.image), "video": bool(args.video)},
                 {"image": ("--image", "pass --image PATH (the clip's first frame)"),
                  "video": ("--video", "pass --video PATH (the source clip)")})
    if args.strength is not None and (card.get("input") != "video" or not 0 < args.strength <= 1):
        raise ValueError(f"--strength applies to video-to-video models and must be in (0, 1], got {args.strength:g}.")
    steps = getattr(args, "steps", None) or card.get("steps", 1)
    if args.strength is not None and int(steps * args.strength) < 1:  # diffusers denoises int(steps * strength)
        raise ValueError(f"--strength {args.strength:g} leaves {int(steps * args.strength)} of {steps} steps to "
                         f"denoise; use at least {1 / steps:g} (or more --steps).")
    inputs = {"image": media.load_image(args.image)} if args.image else {}
    if args.video:
        inputs["video"] = source_frames(media.load_clip(args.video), card, getattr(args, "frames", None))
    if args.strength is not None:
        inputs["strength"] = args.strength
    if args.negative_prompt is not None:
        inputs["negative_prompt"] = args.negative_prompt
    return inputs


def source_frames(clip: list, card: dict, frames: int | None) -> list:
    """The source clip of a video-to-video run, cut to `--frames` (rounded to the card's frame rule)
    when given: the first frames, with a note; more frames than the clip holds is refused."""
    if not frames:
        return clip
    wanted, _ = cards.round_frames(card, frames)
    if wanted > len(clip):
        raise ValueError(f"--frames {frames} asks for {wanted} frames of a source clip of {len(clip)}; give at most "
                         f"--frames {len(clip)}, or leave --frames out to use the whole clip.")
    if wanted < len(clip):
        print(f"note: using the first {wanted} of the source clip's {len(clip)} frames (--frames {frames}).")
    return clip[:wanted]


def add_output_options(p) -> None:
    """Options of commands that write one clip: seed, frame rate, viewing size."""
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    p.add_argument("--fps", type=int, help="frames per second of the file (default: the model's native rate, its card)")
    p.add_argument("--upscale", type=int, help="nearest-neighbour enlargement of the written clip for viewing "
                                                "(default: the model card's view_scale, 4 for the bundled model's "
                                                "32 px frames; `eval --size 32x32` undoes it)")


def field_path(out: Path, requested: str) -> Path:
    if requested:
        return Path(requested)
    return out.with_name(out.stem + "_field" + out.suffix) if out.suffix else Path(str(out) + "_field")


def target_from_args(args):
    """The model loaded from the shared model options; its progress bar shows only in a terminal."""
    from .arguments import prompt_notes
    from .generate import load_target

    if not sys.stderr.isatty():  # the libraries' loading bars only where someone watches
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    target = load_target(RunSettings.from_args(args))
    target.pipe.set_progress_bar_config(disable=not sys.stderr.isatty(), leave=False, desc="denoising")
    for note in target.notes + prompt_notes(target.pipe, args.prompt, target.kwargs):
        print(f"note: {note}")
    return target


NUMBER_LIMITS = {**LIMITS, "fps": 240, "upscale": 64}  # the model's, and the written file's


def check_numbers(args) -> None:
    """Counts and sizes on the command line, before any work: from 1 to what a model and a machine take
    (steps within the schedulers' 1000), and a seed that a torch generator takes."""
    for name, high in NUMBER_LIMITS.items():
        value = getattr(args, name, None)
        if value is not None and not 1 <= value <= high:
            raise ValueError(f"--{name} must be from 1 to {high}, got {value}.")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2**63:
        raise ValueError(f"--seed must be from 0 to 2^63 - 1, got {seed}.")


def check_outputs(*paths, inputs=()) -> None:
    """Before any work: every output can be written, no two outputs are the same file, and no
    output is one of the command's `inputs`."""
    media.check_not_inputs(paths, inputs)
    for p in paths:
        if p:
            media.check_writable(p)


def check_weights(card: dict, model_path: str | None) -> None:
    """Before the model's libraries load: the weights are on this machine (a folder holding the
    card's pipeline, or the Hugging Face cache); the bundled model always is."""
    if card.get("bundled"):
        return
    from .pipelines.registry import weights_source

    weights_source(card, model_path)


def prepare_run(args, typed=None):
    """Checks that need no model, before any heavy import: numbers, the card, the prompt (the
    model's scorer, where it has one, knows the words it can draw), and `typed(card)` (what the
    command makes of the methods and skip policies typed, from their declarations: no torch yet).
    Returns (card, scorer, what `typed` made)."""
    check_numbers(args)
    settings = RunSettings.from_args(args)
    card = settings.card
    settings.check_applicable()  # fixed values, and a missing GPU before missing weights
    check_weights(card, args.model_path)
    if card.get("bundled"):  # its words and object slots, from the world's grammar and the U-Net's config
        from .demo import check_objects, object_slots, parse_prompt

        parse_prompt(args.prompt)
        check_objects(args.prompt, object_slots(args.model_path))
    made = typed(card) if typed is not None else None
    from .evaluation import scorer_of  # the scorers' modules load torch: after the checks that need none

    judge = scorer_of(card)
    if judge is not None:
        judge.check_prompt(args.prompt)
    return card, judge, made


def cmd_generate(args) -> int:
    start = time.perf_counter()
    media.check_output(args.out, args.format)  # what was typed, before the checks that load libraries
    field_out = field_path(Path(args.out), args.save_scale_field) if args.save_scale_field is not None else None
    if field_out is not None:
        media.check_output(field_out)
    from .guidance.skip import parse_policy

    card, judge, (method, policy) = prepare_run(args, lambda card: (guidance_from_args(args, card),
                                                                   parse_policy(args.skip)))
    check_outputs(args.out, field_out, inputs=[args.config, args.image, args.video])
    inputs = conditioning(args, card)
    if field_out is not None and not method.has_field:
        raise ValueError(f"--save-scale-field needs a method with a scale field (samg, samg+stg), not {method.name!r}.")
    import numpy as np

    from . import viz
    from .generate import generate_clip

    target = target_from_args(args)
    result = generate_clip(target, args.prompt, method, args.seed, inputs, skip=policy)
    scale = args.upscale or target.view_scale
    fps = args.fps or target.fps
    out = media.write_video(result.clip, args.out, fps=fps, fmt=args.format, scale=scale)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    for name, value in method.to_dict().items():
        print(f"  {name}: {', '.join(map(str, value)) if isinstance(value, (list, tuple)) else value}")
    print(f"  denoiser calls: {result.denoiser_calls:g} ({work_line(result)})")
    if scale > 1:
        h, w = result.clip.shape[1:3]
        print(f"  frames {w}x{h} shown {scale}x larger; `samg-video eval {out} --size {w}x{h}` measures them at "
              f"the model's resolution")
    if field_out is not None:
        heat = result.heatmap(method.w_min, method.w_max, scale)
        pair = viz.side_by_side([viz.label(media.upscale(media.to_uint8(result.clip), scale), "video"),
                                 viz.label(heat, "guidance scale")])
        print(f"wrote {media.write_video(np.ascontiguousarray(pair), field_out, fps=fps)}")
    if judge is not None:
        row = judge.row(media.to_uint8(result.clip), args.prompt, result)
        parts = ", ".join(f"{k} {row['prompt_' + k]:.0%}" for k in ("color", "shape", "motion", "count"))
        print(f"prompt check: {parts}, whole prompt {'yes' if row['prompt_correct'] else 'no'}")
    return 0


def model_row(c: dict) -> dict:
    """One row of `samg-video models`: what the card says and whether its weights are here."""
    from .pipelines.registry import cached_repo

    rec = c["recommended"]
    if "repo" in c:
        found = cached_repo(cards.repos(c))
        weights = f"cached ({found})" if found else "not found"
    else:
        weights = "bundled"
    given = "prompt" + (f" + {c['input']}" if "input" in c else "")
    return {"name": c["name"], "pipeline": c["pipeline"], "input": given,
            "frames x H x W": "{} x {} x {}".format(
                c["frames"], *c["resolution"]), "fps": str(c.get("fps", "-") if c["frames"] > 1 else "-"),
            "steps": str(c["steps"]), "CFG": f"{c['guidance_scale']:g}",
            "SAMG": f"[{rec.get('w_min'):g}, {rec.get('w_max'):g}]", "dtype": c.get("dtype", "float32"),
            "weights": weights}


def cmd_models(args) -> int:
    rows = [model_row(c) for c in sorted(cards.cards().values(), key=lambda c: c["name"] != "demo")]
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in rows[0]}
    print("  ".join(k.ljust(w) for k, w in widths.items()).rstrip())
    for r in rows:
        print("  ".join(r[k].ljust(w) for k, w in widths.items()).rstrip())
    notes = [(n, c["note"]) for n, c in cards.cards().items() if "note" in c]
    for name, note in notes:
        print(f"\n{name}: {note}")
    print("\nframes x H x W: frames, height, width of a default clip; CFG: the pipeline's own scale (the default "
          "of any method with a scale); SAMG: recommended [w_min, w_max]; dtype: on a GPU (the CPU runs float32).")
    return 0


def cmd_methods(args) -> int:
    from . import guidance

    from .guidance.base import parameters

    for name in guidance.available():
        method = guidance.create(name)
        print(f"{name} ({method.denoiser_calls()} denoiser calls per step): {method.summary}")
        for p in parameters(type(method)):
            print(f"    {p.describe()}")
    print("\nA third call (stg, slg, pag, samg+stg) runs the conditional input with blocks perturbed; "
          "samg_video.apply makes it on the steps that need it.")
    return 0


def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="methods side by side on one prompt and seed, with heatmaps and metrics",
                       description="Generate one clip per method from the same prompt and noise, write them side by "
                                   "side (SAMG's scale field beside its clip) and print a metrics table.")
    p.add_argument("--prompt", required=True, help="what the clips show")
    p.add_argument("--methods", nargs="+", required=True,
                   help="e.g. cfg:7.5 samg:5-12 apg:7.5 samg:3-9,temporal_sigma=1 configs/guidance/rescale.yaml")
    p.add_argument("--out", required=True, help="side-by-side video (.mp4 / .webm / .avi / .gif / folder)")
    p.add_argument("--json", help="also write the metrics table as JSON")
    p.add_argument("--clip-model", help="CLIP weights (folder or cached repo id): adds clip_score")
    p.add_argument("--lpips", action="store_true", help="also LPIPS temporal consistency (slower)")
    p.add_argument("--skip", nargs="+", metavar="POLICY", default=["off"], help=(
        "skip policies, each crossed with every method (default: off): " + SKIP_HELP))
    add_model_options(p)
    add_input_options(p)
    add_output_options(p)
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    import json

    from .guidance.skip import parse_policy, with_skip
    from .guidance.spec import label, parse_spec

    media.check_output(args.out)
    card, judge, (methods, policies) = prepare_run(args, lambda card: ([parse_spec(s, card) for s in args.methods],
                                                                      [parse_policy(p) for p in args.skip]))
    check_outputs(args.out, args.json, inputs=[*(m for m in args.methods if m.endswith((".yaml", ".yml"))), args.image,
                                               args.video])
    inputs = conditioning(args, card)
    import numpy as np

    from . import viz
    from .evaluation import measure
    from .generate import generate_clip

    runs = [(m, p) for m in methods for p in policies]
    if args.clip_model:
        from .metrics.clip_score import load_clip

        load_clip(args.clip_model)  # missing weights: one error before any generation
    target = target_from_args(args)
    scale = args.upscale or target.view_scale
    panels, table = [], []
    for method, policy in runs:
        result = generate_clip(target, args.prompt, method, args.seed, inputs, skip=policy)
        config = with_skip(method.to_dict(), policy)
        row = {"method": label(config), "config": config,
               **measure(result, args.prompt, args.lpips, args.clip_model, judge)}
        table.append(row)
        heat = result.heatmap(method.w_min, method.w_max, scale) if result.fields else None
        panels.append((media.upscale(media.to_uint8(result.clip), scale), row["method"], heat))
    width = panels[0][0].shape[2] - 6
    lines = max(len(viz.label_lines(text, width, 0.4)) for _, text, _ in panels)  # one label height for all
    columns = [viz.label(clip, text, lines=lines) if heat is None else viz.stacked(viz.label(clip, text, lines=lines),
                                                                                   heat) for clip, text, heat in panels]
    fps = args.fps or target.fps
    print(f"wrote {media.write_video(np.ascontiguousarray(viz.side_by_side(columns)), args.out, fps=fps)}")
    keys = [k for k in catalogue.BRIEF if any(row.get(k) is not None for row in table)]
    judged = judge is not None
    width = max(28, *(len(row["method"]) + 2 for row in table))
    header = "".join(catalogue.column(k).cli.rjust(13) for k in keys)
    print(f"{'method':<{width}}" + header + ("   prompt ok" if judged else ""))
    for row in table:
        print(f"{row['method']:<{width}}" + "".join("n/a".rjust(13) if row.get(k) is None
                                               else f"{row[k]:13.{catalogue.column(k).digits}f}" for k in keys)
              + (f"   {row['prompt_correct']}" if judged else ""))
    print(f"calls: denoiser evaluations per clip; motion: pixels per frame at {table[0].get('resolution')} (the "
          "model's frames); field_warped: the field's frame-to-frame change along the clip's optical flow")
    if args.json:
        media.write_text(args.json, json.dumps(table, indent=2, default=float))
    return 0


def add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="prompts x seeds x methods on any model, resumable, accelerate-ready",
                       description="Run a sweep; under `accelerate launch` the items are split across processes. "
                                   "Options given here override the YAML's.")
    p.add_argument("config", help="sweep YAML, e.g. configs/sweeps/wan_study.yaml")
    p.add_argument("--out", required=True, help="run folder (manifest shards, clips); rerun to resume")
    add_model_options(p, sweep=True)
    p.add_argument("--batch", type=int, help="items of one method generated together (each keeps its own seed)")
    p.add_argument("--clip-model", help="CLIP weights for clip_score (folder or cached repo id)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="only the first N prompts, each with every seed and method (a paired report); a later run "
                        "without it resumes and adds the rest")
    p.add_argument("--retry-failed", action="store_true", help="redo items recorded as failed")
    p.add_argument("--force", action="store_true",
                   help="run into a folder that holds a sweep with other settings (its items are kept)")
    p.add_argument("--dry-run", action="store_true",
                   help="print how many items are planned, done and left (and a time estimate from the seconds "
                        "recorded per item), then stop: loads no model, writes nothing")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from .yamlfile import read_yaml

    read_yaml(args.config, "Sweep config", hint="see configs/sweeps/")  # a missing or broken file, before torch
    from .manifest import read_manifest
    from .sweep import load_sweep, plan, run_sweep

    overrides = {k: getattr(args, k) for k in MODEL_OPTIONS + ("batch", "clip_model", "limit")}
    config = load_sweep(args.config, overrides)
    if args.dry_run:
        print(plan_text(plan(config, args.out, args.retry_failed)))
        return 0
    import torch
    from accelerate import PartialState

    check_outputs(Path(args.out) / "sweep.json", inputs=[args.config, config.get("prompt_file")])
    settings = RunSettings.from_sweep_config(config)
    settings.resolved_device()
    check_weights(settings.card, settings.model_path)
    state = PartialState(cpu=not torch.cuda.is_available())  # CPU-only: gloo across processes
    counts = run_sweep(config, args.out, state.process_index, state.num_processes,
                       progress=state.is_local_main_process, retry_failed=args.retry_failed, force=args.force)
    print(f"process {state.process_index}: {counts['done']} done, {counts['skipped']} already there, "
          f"{counts['failed']} failed of {counts['items']}")
    state.wait_for_everyone()
    if state.is_main_process:
        rows = read_manifest(args.out)
        print(f"{args.out}: {len(rows)} items recorded, {sum('error' in r for r in rows)} failed")
    if counts["failed_total"] and not counts["failed"]:
        print(f"process {state.process_index}: {counts['failed_total']} items recorded as failed earlier "
              "(--retry-failed redoes them)")
    return 1 if counts["failed_total"] else 0


def plan_text(p: dict) -> str:
    """'12 planned, 3 done, 9 left; about 4 min left at 27.1 s per item (3 items timed in this folder)'."""
    text = f"{p['planned']} planned, {p['done']} done, {p['left']} left"
    if p["left"] and p["seconds_per_item"] is not None:
        minutes = p["estimate_seconds"] / 60
        span = f"{minutes:.0f} min" if minutes >= 1 else f"{p['estimate_seconds']:.0f} s"
        text += (f"; about {span} left at {p['seconds_per_item']:.1f} s per item "
                 f"({p['timed_items']} items timed in this folder)")
    elif p["left"]:
        text += "; no item is timed in this folder yet, so no estimate"
    return text


def add_report(sub) -> None:
    p = sub.add_parser("report", help="markdown and HTML report of a sweep run folder",
                       description="Tables per method, paired differences against a reference with t intervals, "
                                   "trade-off plots, a gallery and a table of every item: report.md, report.html "
                                   "(clips in gallery/ beside it, or all embedded with --single-file) and "
                                   "summary.json.")
    p.add_argument("run_dir", help="the sweep's run folder (its --out)")
    p.add_argument("--out", help="folder for report.md / report.html (default: the run folder)")
    p.add_argument("--reference", metavar="SPEC",
                   help="pair every method against this one of the sweep's methods, e.g. cfg:3 "
                        "(default: the sweep's reference)")
    p.add_argument("--single-file", action="store_true",
                   help="embed plots and clips in report.html (data URIs) instead of files beside it")
    p.add_argument("--gallery", type=int, default=8, metavar="N",
                   help="prompts in the gallery, every method's clip of each (default 8; 0: no gallery)")
    p.add_argument("--max-embed-mb", type=float, default=20.0, metavar="MB",
                   help="with --single-file: clips embedded up to this many megabytes, the rest skipped and "
                        "counted on the page (default 20)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .manifest import read_manifest

    if not read_manifest(args.run_dir):  # before the report's libraries load
        raise ValueError(f"{args.run_dir} holds no sweep results (manifest.rank*.jsonl); run `samg-video sweep` "
                         "first.")
    from .report import write_report

    if not 0 <= args.gallery <= 1000:
        raise ValueError(f"--gallery must be from 0 to 1000 prompts, got {args.gallery}.")
    if not 0 < args.max_embed_mb <= 4096:
        raise ValueError(f"--max-embed-mb must be above 0 and at most 4096, got {args.max_embed_mb:g}.")
    check_outputs(str(Path(args.out or args.run_dir) / "report.html"))
    md, page = write_report(args.run_dir, args.out, args.reference, args.single_file, args.gallery,
                            int(args.max_embed_mb * 2**20),
                            say=lambda text: print(f"report: {text}", file=sys.stderr, flush=True))
    print(f"wrote {md} and {page}")
    return 0


MAX_SIDE = 8192  # px: a frame size to analyse at (8K); larger is a typo, not a video


def frame_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H), positive integers."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or not 1 <= int(w) <= MAX_SIDE or not 1 <= int(h) <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT from 1 to {MAX_SIDE} px a side such as 32x32, "
                                         f"got {text!r}")
    return int(w), int(h)


# metrics.vbench.DIMENSIONS and MODEL_OF's keys, written here so that the parser imports no torch
# (tests/test_vbench.py checks they agree)


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="temporal-quality metrics of videos",
                       description="Flicker, warping error, LPIPS consistency, motion and saturation of each video.")
    p.add_argument("paths", nargs="+", help="videos (.mp4 .webm .avi .gif) or folders of frames")
    p.add_argument("--metrics", nargs="+", choices=catalogue.NAMES, metavar="NAME",
                   help="subset of: " + " ".join(catalogue.NAMES) + " (default: " + " ".join(catalogue.DEFAULT) + ")")
    p.add_argument("--clip-model", help="CLIP weights (folder or cached repo id, e.g. openai/clip-vit-base-patch32): "
                                        "adds clip_score, the mean CLIPScore of the frames against --prompt")
    p.add_argument("--prompt", help="the prompt the videos were generated from (for clip_score)")
    p.add_argument("--reference", help="reference video: adds TecoGAN's tLP")
    p.add_argument("--flow", default="dis", choices=["dis", "farneback", "raft"],
                   help="optical flow for warp error and motion: OpenCV DIS (default), Farneback, or RAFT")
    p.add_argument("--raft-weights", help="torchvision RAFT-large weights file (for --flow raft)")
    p.add_argument("--flow-downscale", type=int, default=1,
                   help="estimate flow on frames shrunk by this integer factor (faster; default 1)")
    p.add_argument("--size", type=frame_size, help="analyse the frames at WxH (e.g. 32x32: a bundled-model clip "
                                                    "written upscaled, measured at the model's resolution); motion "
                                                    "is in pixels per frame of the analysed frames")
    p.add_argument("--decoder", default="ffmpeg", choices=["ffmpeg", "decord"],
                   help="video decoder: ffmpeg pipe (bounded memory, default) or decord")
    p.add_argument("--max-frames", type=int, help="measure the first N frames of each video only (a long clip: "
                                                  "the row notes it); a bar counts the frames of the video in work")
    p.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"],
                   help="LPIPS backbone for lpips_temporal (default: alex)")
    v = p.add_argument_group("VBench's temporal dimensions", "subject_consistency, background_consistency and "
                             "dynamic_degree, computed as VBench computes them (docs/metrics.md), from local weights")
    v.add_argument("--vbench", action="store_true", help="add all three dimensions (or name some in --metrics)")
    v.add_argument("--vbench-models", metavar="DIR", help="VBench's cache folder holding dino_model/, clip_model/, "
                                                          "raft_model/ (default: $VBENCH_CACHE_DIR or ~/.cache/vbench)")
    v.add_argument("--dino", metavar="PATH", help="DINO ViT-B/16: dino_vitbase16_pretrain.pth or a transformers folder")
    v.add_argument("--clip-vision", metavar="PATH", help="CLIP ViT-B/32: OpenAI's ViT-B-32.pt or a transformers folder")
    v.add_argument("--raft", metavar="PATH", help="RAFT: raft-things.pth or torchvision's raft_large file")
    v.add_argument("--device", help="where the VBench models run (default: cuda when there is one, else cpu)")
    v.add_argument("--vbench-json", metavar="FILE", help="write VBench's result layout: "
                                                         "{dimension: [aggregate, [{video_path, video_results}]]}")
    p.add_argument("--json", help="write per-video results and a summary as JSON")
    p.add_argument("--csv", help="write per-video results as CSV")
    p.set_defaults(func=cmd_eval)


def evaluate_paths(paths, options: dict, progress: bool = True) -> list[dict]:
    """One result row per path; a failure is recorded in the row (`error`) and the others go on."""
    from tqdm.auto import tqdm

    from . import metrics

    rows = []
    for path in tqdm(paths, desc="evaluating", disable=not progress):
        frames = tqdm(desc=Path(str(path)).name[:30], unit="frame", leave=False, disable=not progress)
        try:
            rows.append({"path": str(path), **metrics.compute(path, **options, on_frames=frames.update)})
        except Exception as err:  # noqa: BLE001  (one bad file must not stop the batch)
            rows.append({"path": str(path), "error": f"{type(err).__name__}: {err}"})
        finally:
            frames.close()
    return rows


def eval_summary(rows: list[dict]) -> dict:
    """Mean of every numeric column over the videos that have it (of a yes / no column such as
    dynamic_degree: the fraction of videos where it holds), and the failure count."""
    import numpy as np

    keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))})  # bools: the fraction True
    means = {k: float(np.mean([r[k] for r in rows if isinstance(r.get(k), (int, float))])) for k in keys}
    return {"videos": len(rows), "failed": sum("error" in r for r in rows), "mean": means}


def print_table(rows: list[dict]) -> None:
    hidden = {"clipped_low", "oversaturated"}  # in the JSON and CSV
    present = [c for c in catalogue.MEASURED if c not in hidden and any(c in r for r in rows)]
    width = {c: max(len(c), 9) + 2 for c in present}
    print("path".ljust(32) + "".join(c.rjust(width[c]) for c in present) + "   size (motion: px/frame at this size)")
    for r in rows:
        name = Path(r["path"]).name[:31].ljust(32)
        if "error" in r:
            print(name + "  FAILED: " + r["error"])
            continue
        cells = ["null".rjust(width[c]) if r.get(c) is None else str(r[c]).rjust(width[c]) if isinstance(r[c], bool)
                 else f"{r[c]:{width[c]}.4f}" for c in present]
        print(name + "".join(cells) + f"   {r.get('resolution')}"
              + (f"   ({r['temporal_note']})" if "temporal_note" in r else ""))


def enlargement_notes(rows: list[dict]) -> list[str]:
    """A note per measured video whose frames look nearest-neighbour enlarged, with the --size that undoes it."""
    notes = []
    for r in rows:
        if "error" in r:
            continue
        try:
            frame = next(media.iter_frames(r["path"], chunk=1))[0]
        except Exception:  # noqa: BLE001  (a hint only: a file that cannot be re-read gets none)
            continue
        k = media.enlargement(media.to_uint8(frame) if frame.dtype != "uint8" else frame)
        if k > 1:
            w, h = frame.shape[1] // k, frame.shape[0] // k
            notes.append(f"note: {Path(r['path']).name}: frames look like a {k}x nearest-neighbour enlargement of "
                         f"{w}x{h}; `--size {w}x{h}` measures them at that size")
    return notes


def cmd_eval(args) -> int:
    import csv
    import io
    import json

    check_outputs(args.json, args.csv, args.vbench_json, inputs=[*args.paths, args.reference])
    if args.max_frames is not None and not 2 <= args.max_frames <= 10_000_000:
        raise ValueError(f"--max-frames must be at least 2 (a temporal metric needs two frames) and at most 1e7, got "
                         f"{args.max_frames}.")
    if not 1 <= args.flow_downscale <= 64:
        raise ValueError(f"--flow-downscale must be at least 1 and at most 64, got {args.flow_downscale}.")
    if args.size and max(args.size) // args.flow_downscale < 12:
        raise ValueError(f"--size {args.size[0]}x{args.size[1]} shrunk {args.flow_downscale}x by --flow-downscale "
                         "leaves optical flow under 12 px a side; lower --flow-downscale.")
    if args.flow == "raft" and not args.raft_weights:
        raise ValueError("--flow raft needs --raft-weights FILE (torchvision's Raft_Large_Weights file); "
                         "samg-video never downloads.")
    missing = [p for p in [*args.paths, args.reference] if p and not Path(p).exists()]
    if missing:
        more = f" (nor {len(missing) - 1} more of the inputs)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"{missing[0]} does not exist{more}; nothing was measured.")
    if args.flow == "raft":  # read once as data, before any video: a bad file is one sentence, not one per video
        from .flow import read_state_dict

        read_state_dict(args.raft_weights, "torchvision's RAFT-large weights file")
    dims = [m for m in args.metrics or [] if m in catalogue.NEEDS_MODEL]
    if args.vbench:
        dims = list(dict.fromkeys([*dims, *catalogue.VBENCH]))
    if args.vbench_json and not any(d in catalogue.VBENCH for d in dims):
        raise ValueError("--vbench-json writes VBench's dimensions; add --vbench (or name them in --metrics).")
    base = args.metrics or catalogue.chosen(clip_model=bool(args.clip_model))
    names = list(dict.fromkeys([*base, *dims]))
    options = dict(metrics=names, reference=args.reference, flow_backend=args.flow,
                   raft_weights=args.raft_weights, flow_downscale=args.flow_downscale, lpips_net=args.lpips_net,
                   decoder=args.decoder, clip_model=args.clip_model, prompt=args.prompt, size=args.size,
                   max_frames=args.max_frames)
    if dims:  # weights found and loaded once, before any video: a missing file is one error, not one per video
        from .metrics import vbench

        paths = vbench.model_paths(dims, {"dino": args.dino, "clip": args.clip_vision, "raft": args.raft},
                                   args.vbench_models)
        from .settings import resolve_device

        device, _ = resolve_device(args.device or "auto")
        options |= {"vbench_models": vbench.load_models(paths, device), "device": device}
    if args.clip_model:  # checked once, before any video: missing weights are one error, not one per video
        from .metrics.clip_score import load_clip

        if not args.prompt:
            raise ValueError("--clip-model scores the videos against a prompt; pass --prompt \"...\".")
        load_clip(args.clip_model)
    rows = evaluate_paths(args.paths, options)
    print_table(rows)
    if args.size is None:
        for note in enlargement_notes(rows):
            print(note)
    summary = eval_summary(rows)
    if args.json:
        media.write_text(args.json, json.dumps({"videos": rows, "summary": summary}, indent=2))
    if args.vbench_json:
        from .metrics.vbench import vbench_results

        media.write_text(args.vbench_json, json.dumps(vbench_results(rows, [d for d in dims if d in catalogue.VBENCH]),
                                                      indent=2))
    if args.csv:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
        media.write_text(args.csv, buffer.getvalue())
    print(f"{summary['videos']} video{'' if summary['videos'] == 1 else 's'}, {summary['failed']} failed")
    return 1 if summary["failed"] else 0


def version() -> str:
    """The installed distribution's version (importlib.metadata; no heavy import)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("samg-video")
    except PackageNotFoundError:
        return "(not installed)"


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the error and where the help is, exit code 2; a flag is
    taken as written only (no prefixes: --frame is not --frames)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(described: bool = True) -> argparse.ArgumentParser:
    """The command line. `described`: the method parameters' flags carry their declarations' help
    (which imports the guidance package, and torch); main asks for it only with --help."""
    parser = Parser(prog="samg-video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (anywhere on the line)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices  # an unknown flag is reported by its command's parser (`parse`)
    add_generate(sub, described)
    add_eval(sub)
    add_compare(sub)
    add_sweep(sub)
    add_report(sub)
    m = sub.add_parser("methods", help="list guidance methods and their default parameters",
                       description="Every guidance method: what it does, its denoiser calls per step and its "
                                   "parameters with their defaults (a spec such as samg:3-9,temporal_sigma=1 "
                                   "overrides them).")
    m.set_defaults(func=cmd_methods)
    r = sub.add_parser("models", help="list the model registry (samg_video/models/registry/*.yaml)",
                       description="Every model card: pipeline, repository, frames, size, steps, the guidance it "
                                   "recommends, and the download command for its weights.")
    r.set_defaults(func=cmd_models)
    return parser


def quiet_libraries() -> None:
    """Keep library chatter (deprecation notices, load reports) off the user's screen; errors still show."""
    import logging
    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by transformers when it is imported
    if "transformers" in sys.modules:  # already imported (a caller in the same process): turn its bar off
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*torch_dtype.*")
    for name in ("diffusers", "transformers", "accelerate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments; what no parser knows is refused by the command's own parser, so the error points
    to `samg-video COMMAND --help`."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 all good, 1 some items (videos, sweep items) failed and were recorded,
    2 the command could not run (bad usage, missing files or weights, any other error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    described = any(a in ("-h", "--help") for a in argv)  # an error answers before torch loads
    args = parse(build_parser(described), [a for a in argv if a != "--debug"])
    args.debug = debug
    quiet_libraries()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("samg-video: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (one line for the user; --debug shows the traceback)
        if args.debug:  # the traceback, and the same exit code as without --debug
            import traceback

            traceback.print_exc()
            return 2
        known = isinstance(err, (ValueError, FileNotFoundError))
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = "" if known else f" ({type(err).__name__}; rerun with --debug for the traceback)"
        print(f"samg-video: error: {text}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
