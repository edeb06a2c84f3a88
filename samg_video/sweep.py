"""Sweeps: prompts x seeds x methods on any model, one JSONL manifest line per item, resumable,
split by accelerate.

    samg-video sweep configs/sweeps/demo_study.yaml --out runs/study
    samg-video sweep configs/sweeps/wan_study.yaml --out runs/wan --model-path /models/Wan2.1-T2V-1.3B-Diffusers
    accelerate launch --num_processes 4 -m samg_video.cli sweep configs/sweeps/wan_study.yaml --out runs/wan

An item is (prompt, seed, method config, setting); the setting is everything else that
changes its result (model, frames, height, width, steps, dtype, CLIP model, batch size,
LPIPS on or off), so every one of them is part of the item's stable id. A run folder
holds one setting: re-running with another into the same folder stops with one sentence
naming the changed keys (`--force` adds the new items beside the old; reports then
cover the folder's current setting only). Each process holds a lock on its shard
(`manifest.rank{i}.lock`, with its pid and host), so two sweeps cannot write one folder
at once; a lock left by a killed process is taken over. Process i of n takes
every item whose position in the sorted list is i mod n, and appends one JSON line per
finished item to `manifest.rank{i}.jsonl` (flushed and fsynced, so an interruption loses
at most the item in flight); its clip goes to `clips/{id}.mp4` and, for SAMG, the scale
field's heatmap to `clips/{id}_field.mp4` (both written atomically). Rerunning the same
command skips every id already in any manifest; a failed item is recorded with its error
and the sweep goes on.

Every item records the model-agnostic metrics (flicker, flicker_compensated, warp_error,
motion, saturation / clipped pixels, lpips_temporal unless `lpips: false`), the CLIP
score with `clip_model`, and the scale-field diagnostics where a field exists
(`metrics.field`), all through `samg_video.evaluation.measure`. Where the model card names a
scorer (the bundled model: its world's exact prompt scorer) or the config's `scorer` does,
its columns join the record (colour / shape / motion / whole prompt, latents out of range)
and the field diagnostics split object and background pixels.

Prompts come from `prompts` (strings, or {prompt, tags}), `prompt_file` (a tagged suite file,
or a shipped suite by name: `temporal`), or `suite` (a suite generated from the bundled
model's world: single:N, double:N, mixed:N, heldout:N).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import cards, guidance, media
from .atomic import remove_stale, write_text
from .catalogue import VBENCH as VBENCH_DIMENSIONS
from .manifest import SweepLock, append_line, check_appendable, compact_shard, done_ids, read_manifest, save_clips
from .evaluation import measure, scorer_of
from .guidance.spec import parse_spec
from .media import check_writable
from .prompts import load_prompts, resolve, select, world_suite
from .settings import DEFAULT_MODEL, RunSettings
from .yamlfile import read_yaml

SETTING = ("model", "frames", "height", "width", "steps", "dtype", "clip_model", "batch", "lpips")  # in every id
RUN = ("model_path", "adapter_path", "controlnet_path", "device", "cpu_offload", "vae_tiling",
       "keep_frames")  # how, not what
ITEMS = ("prompts", "suite", "prompt_file", "categories", "per_category", "limit", "seeds", "methods", "skips",
         "reference", "scorer")
METRICS = ("vbench", "vbench_models")  # VBench's dimensions: in the id when set (their weights' identity too)
REPORT = ("margins",)  # how the report judges the items: non-inferiority margins per paired column
KEYS = SETTING + RUN + ITEMS + METRICS + REPORT


@dataclass(frozen=True)
class Item:
    prompt: str
    seed: int
    method: dict
    setting: dict
    tags: tuple[str, ...] = field(default=(), compare=False)
    image: str | None = None  # an image-to-video item's first frame (a path)
    image_digest: str | None = None  # its content's identity, part of the id

    @property
    def id(self) -> str:
        parts = [self.prompt, self.seed, self.method, self.setting] + ([self.image_digest] if self.image else [])
        key = json.dumps(parts, sort_keys=True)
        return hashlib.sha1(key.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, 16 hex digits, read in 1 MiB chunks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def item_image(item):
    """The item's input image from one read of its file, whose bytes must be the ones its id names
    (`image_digest`): an image replaced after the sweep was planned fails the item, in one sentence."""
    data = Path(item.image).read_bytes()
    found = hashlib.sha256(data).hexdigest()[:16]
    if found != item.image_digest:
        raise ValueError(f"{item.image} changed since this sweep was planned (content {item.image_digest} -> "
                         f"{found}); run the sweep again to plan the new image as new items.")
    return media.load_image(item.image, data)


LIMITS = {"batch": 256, "per_category": 100_000, "limit": 1_000_000}  # the model's own: settings.LIMITS
TEXT = ("clip_model", "suite", "prompt_file", "reference", "scorer")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config: dict, where: str) -> None:
    """The sweep schema: each key's type and range, one sentence naming the key on the first violation."""
    RunSettings.from_sweep_config(config, where)
    for key, high in LIMITS.items():
        value = config.get(key)
        if value is not None and (not _is_int(value) or not 1 <= value <= high):
            raise ValueError(f"{where}: {key} must be a whole number from 1 to {high}, got {value!r}.")
    for key in TEXT:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise ValueError(f"{where}: {key} must be text, got {config[key]!r}.")
    for key in ("lpips", "keep_frames"):
        if config.get(key) is not None and not isinstance(config[key], bool):
            raise ValueError(f"{where}: {key} must be true or false, got {config[key]!r}.")
    check_margins(config.get("margins"), where)
    dims = config.get("vbench")
    if dims is not None and not isinstance(dims, bool) and not (
            isinstance(dims, list) and dims and all(d in VBENCH_DIMENSIONS for d in dims)):
        raise ValueError(f"{where}: vbench must be true (every dimension) or a list of "
                         f"{', '.join(VBENCH_DIMENSIONS)}; got {dims!r}.")
    if config.get("vbench_models") is not None and not isinstance(config["vbench_models"], str):
        raise ValueError(f"{where}: vbench_models must be a folder (VBench's cache layout), "
                         f"got {config['vbench_models']!r}.")
    seeds = config.get("seeds", [])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(x) and 0 <= x < 2**63 for x in seeds):
        raise ValueError(f"{where}: seeds must be a list of whole numbers from 0 to 2^63 - 1, got {seeds!r}.")
    prompts = config.get("prompts", [])
    if not isinstance(prompts, list) or not all(
            isinstance(x, str) or (isinstance(x, dict) and isinstance(x.get("prompt"), str)
                                   and isinstance(x.get("image", ""), str)) for x in prompts):
        raise ValueError(f"{where}: prompts must be a list of prompts (text, or {{prompt: ..., tags: [...], "
                         f"image: path}}), got {prompts!r}.")
    categories = config.get("categories")
    if categories is not None and (not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)):
        raise ValueError(f"{where}: categories must be a list of category names, got {categories!r}.")
    methods = config.get("methods", [])
    if not isinstance(methods, list) or not methods or not all(isinstance(m, (str, dict)) for m in methods):
        raise ValueError(f"{where}: methods must be a list of method specs (e.g. cfg:2) or configs, got {methods!r}.")
    skips = config.get("skips", ["off"])
    if not isinstance(skips, list) or not skips or not all(p is False or isinstance(p, (str, dict)) for p in skips):
        raise ValueError(f"{where}: skips must be a list of skip policies (off, every:3, adaptive:0.01, "
                         f"interval:0.2-0.8), got {skips!r}.")
    from .guidance.skip import parse_policy

    for policy in skips:
        try:
            parse_policy(policy)
        except ValueError as err:
            raise ValueError(f"{where}: skips: {err}") from None


def check_margins(margins, where: str) -> None:
    """`margins`: {paired column: the largest loss that still counts as no loss, > 0, in the column's
    unit (points for percentages)}, written before the run; the report says per row whether the
    paired difference's 95 % interval stays within it."""
    if margins is None:
        return
    from .catalogue import BY_KEY

    if not isinstance(margins, dict) or not margins:
        raise ValueError(f"{where}: margins must map metric columns to the largest acceptable loss, e.g. "
                         f"{{prompt_correct: 2, warp_error: 0.001}}; got {margins!r}.")
    for key, value in margins.items():
        column = BY_KEY.get(key)
        if column is None or column.better is None:
            raise ValueError(f"{where}: margins: {key!r} is not a metric with a better direction; use one of "
                             f"{', '.join(k for k, c in BY_KEY.items() if c.better)}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
            raise ValueError(f"{where}: margins: {key} must be a positive number, got {value!r}.")


def load_sweep(path: str | Path, overrides: dict | None = None) -> dict:
    """A sweep config (YAML, checked against the schema) with command-line `overrides` (None values ignored)."""
    config = read_yaml(path, "Sweep config", hint="see configs/sweeps/")
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown sweep key {unknown[0]!r}; the keys are: {', '.join(KEYS)}.")
    missing = [k for k in ("methods", "seeds") if k not in config]
    if missing or not any(k in config for k in ("prompts", "suite", "prompt_file")):
        raise ValueError(f"{path} needs 'methods', 'seeds' and 'prompts' (or 'suite' / 'prompt_file'); missing: "
                         f"{', '.join(missing) or 'prompts'}.")
    check_config(config, str(path))
    card = cards.card(config.get("model", DEFAULT_MODEL))
    cards.check_applicable(card, config)
    check_images(config, card, Path(path).parent)
    return config


def check_images(config: dict, card: dict, base: Path) -> None:
    """Image-to-video prompts: every prompt has an `image` when the model takes one (and none
    otherwise); each path, relative to the config's folder, is made absolute and must be a
    readable image, all before any work."""
    from .arguments import check_inputs

    entries = [p for p in config.get("prompts", []) if isinstance(p, dict)]
    with_image = [p for p in entries if "image" in p]
    every = "prompts" in config and len(with_image) == len(config["prompts"])
    given = {"image": every if card.get("input") == "image" else bool(with_image)}
    check_inputs(card, given, {"image": ("a prompt's `image`", "give every prompt its first frame, prompts: "
                                         "[{prompt: ..., image: path}, ...]")})
    for entry in with_image:
        image = Path(entry["image"]).expanduser()
        entry["image"] = str(image if image.is_absolute() else (base / image).resolve())
        media.load_image(entry["image"])


def vbench_dimensions(config: dict) -> list[str]:
    """The VBench dimensions a sweep measures: `vbench: true` for all, a list for some, else none."""
    dims = config.get("vbench")
    return list(VBENCH_DIMENSIONS) if dims is True else list(dims or [])


def vbench_setting(config: dict) -> dict:
    """The dimensions and the identity of their weights (a fingerprint of each file VBench's layout under
    `vbench_models` holds; its path where the file is not on this machine, e.g. when only reporting)."""
    from .metrics.vbench import MODEL_OF, VBENCH_FILES, vbench_cache

    dims = vbench_dimensions(config)
    root = Path(config["vbench_models"]).expanduser() if config.get("vbench_models") else vbench_cache()
    files = {MODEL_OF[d]: root / VBENCH_FILES[MODEL_OF[d]] for d in dims}
    return {"dimensions": dims,
            "weights": {k: weights_fingerprint(f) if f.is_file() else str(f) for k, f in sorted(files.items())}}


def weights_fingerprint(folder: str | Path) -> str:
    """A cheap identity of a model folder's weights: sha256 over every file's relative path and size,
    the whole of each small file (configs, indexes) and the first and last MiB of each large one
    (tensor data: two checkpoints of one architecture differ there). 16 hex digits."""
    digest, chunk = hashlib.sha256(), 1 << 20
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(folder) if file != folder else file.name}:{size};".encode())
        with open(file, "rb") as fh:
            digest.update(fh.read(chunk))
            if size > 2 * chunk:
                fh.seek(-chunk, os.SEEK_END)
                digest.update(fh.read(chunk))
            elif size > chunk:
                digest.update(fh.read())
    return digest.hexdigest()[:16]


def setting_of(config: dict) -> dict:
    """The result-changing settings, with the model card's defaults filled in."""
    card = cards.card(config.get("model", DEFAULT_MODEL))
    frames = config.get("frames") or card.get("frames", 1)
    if card.get("frame_step"):
        frames = cards.round_frames(card, frames)[0]
    height, width = card["resolution"]
    setting = {"model": card["name"], "frames": int(frames), "height": int(config.get("height") or height),
               "width": int(config.get("width") or width), "steps": int(config.get("steps") or card["steps"]),
               "dtype": config.get("dtype") or "default", "clip_model": config.get("clip_model"),
               "batch": int(config.get("batch", 1)), "lpips": bool(config.get("lpips", True))}
    if vbench_dimensions(config):
        setting["vbench"] = vbench_setting(config)
    if config.get("model_path"):  # weights other than the card's own: their identity is part of every id
        setting["weights"] = weights_fingerprint(config["model_path"]) if Path(config["model_path"]).is_dir() \
            else str(config["model_path"])
    return setting


def sweep_prompts(config: dict) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(prompt, tags, image or None) from `prompts` (strings, or {prompt, tags, image}), a bundled-model
    `suite`, or a tagged `prompt_file` (optionally only `categories`, at most `per_category` of each);
    only the first `limit` distinct prompts when `limit` is set."""
    if "prompts" in config:
        prompts = [(p, (), None) if isinstance(p, str) else (p["prompt"], tuple(p.get("tags", ())), p.get("image"))
                   for p in config["prompts"]]
    elif "suite" in config:
        prompts = [(p, (), None) for p in world_suite(config["suite"])]
    else:
        chosen = select(load_prompts(resolve(config["prompt_file"])), config.get("categories"),
                        config.get("per_category"))
        prompts = [(p["prompt"], tuple(p["tags"]), None) for p in chosen]
    return list(dict.fromkeys(prompts))[:config.get("limit") or None]


def method_configs(config: dict) -> list[dict]:
    """Each entry: a 'cfg:7.5' style spec or a dict, completed from the model card; full configs, each
    crossed with every policy of `skips` (default off; a policy rides in the config as `skip`, and
    'off' adds no key, so a sweep without `skips` has the configs, and the item ids, it always had)."""
    from .guidance.skip import parse_policy, with_skip

    card = cards.card(config.get("model", DEFAULT_MODEL))
    policies = list(dict.fromkeys(json.dumps(None if p is None else p.to_dict(), sort_keys=True)
                                  for p in (parse_policy(p) for p in config.get("skips", ["off"]))))
    return [with_skip((parse_spec(e, card) if isinstance(e, str) else guidance.from_dict(dict(e))).to_dict(),
                      parse_policy(json.loads(p)))
            for e in config["methods"] for p in policies]


def items_of(config: dict) -> list[Item]:
    """All distinct items, in a fixed order (method, prompt, seed); a prompt listed twice runs once."""
    setting = setting_of(config)
    prompts = sweep_prompts(config)
    digests = {image: file_digest(image) for _, _, image in prompts if image}
    items = [Item(p, int(s), m, setting, tags, image, digests.get(image)) for m in method_configs(config)
             for p, tags, image in prompts for s in config["seeds"]]
    return list({it.id: it for it in reversed(items)}.values())[::-1]


def check_same_setting(run: Path, config: dict, force: bool) -> None:
    """Stop when the run folder holds a sweep with other result-changing settings (unless `force`)."""
    previous = run / "sweep.json"
    if force or not previous.is_file():
        return
    try:
        old = setting_of(json.loads(previous.read_text()))
    except Exception:  # noqa: BLE001  (an unreadable record of the old sweep cannot be compared)
        raise ValueError(f"{previous} cannot be read; use another --out, or --force to overwrite it.") from None
    new = setting_of(config)
    changed = [k for k in SETTING if old.get(k) != new.get(k)]
    if changed:
        listed = ", ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in changed)
        raise ValueError(f"{run} holds a sweep with other settings ({listed}); use a new --out, or --force to "
                         "add these items beside the old ones.")


def heatmap_of(generation, method: dict, scale: int) -> np.ndarray | None:
    return generation.heatmap(method["w_min"], method["w_max"], scale) if generation.fields else None


def evaluate_items(target, items: list[Item], config: dict,
                   on_step=None) -> list[tuple[dict, np.ndarray, np.ndarray | None, np.ndarray]]:
    """Generate the clips of items that share one method config (one batch) and measure each:
    (record, clip as uint8 for saving, heatmap or None, the clip's exact uint8 frames); clips are
    stored at the card's `view_scale`.
    Each record carries `seconds`: the batch's wall time (generation and measurement) per item.
    `on_step(info)` follows the denoising steps (progress)."""
    from .generate import generate_clips

    methods = {json.dumps(it.method, sort_keys=True) for it in items}
    if len(methods) != 1:
        raise ValueError("A sweep batch must share one method config.")
    from .guidance.skip import split

    start = time.perf_counter()
    config_of_method, policy = split(items[0].method)
    method = guidance.from_dict(config_of_method)
    inputs = {"image": item_image(items[0])} if items[0].image else None
    generations = generate_clips(target, [it.prompt for it in items], [it.seed for it in items], method, on_step,
                                 inputs, skip=policy)
    judge = scorer_of(target.card, config.get("scorer"))
    scale = target.view_scale
    out = [(measure(g, it.prompt, config.get("lpips", True), config.get("clip_model"), judge,
                    vbench_models_of(config, getattr(target.pipe, "device", "cpu"))),
            media.upscale(media.to_uint8(g.clip), scale), heatmap_of(g, it.method, scale), media.to_uint8(g.clip))
           for g, it in zip(generations, items)]
    seconds = round((time.perf_counter() - start) / len(items), 3)
    return [({**row, "seconds": seconds}, clip, heat, frames) for row, clip, heat, frames in out]


_VBENCH_MODELS: dict = {}


def vbench_models_of(config: dict, device) -> dict | None:
    """The sweep's VBench models, loaded once per process (None without `vbench`)."""
    dims = vbench_dimensions(config)
    if not dims:
        return None
    from .metrics import vbench

    key = (tuple(dims), config.get("vbench_models"), str(device))
    if key not in _VBENCH_MODELS:
        paths = vbench.model_paths(dims, cache=Path(config["vbench_models"]).expanduser()
                                   if config.get("vbench_models") else None)
        _VBENCH_MODELS.clear()
        _VBENCH_MODELS[key] = {"models": vbench.load_models(paths, str(device)), "device": str(device)}
    return _VBENCH_MODELS[key]


def batches(items: list[Item], size: int) -> list[list[Item]]:
    """Consecutive items with the same method config (and input image), at most `size` per batch."""
    out: list[list[Item]] = []
    for it in items:
        if out and len(out[-1]) < size and out[-1][0].method == it.method and out[-1][0].image == it.image:
            out[-1].append(it)
        else:
            out.append([it])
    return out


def load_target_of(config: dict):
    from .generate import load_target

    target = load_target(RunSettings.from_sweep_config(config))
    target.pipe.set_progress_bar_config(disable=True)  # the sweep has its own bar
    return target


def plan(config: dict, run_dir: str | Path, retry_failed: bool = False) -> dict:
    """What a run would do, without doing it: items planned, done (clip intact, or failed unless
    retried), left, and an estimate of the time left from the seconds recorded per item in the
    folder (None when none is recorded)."""
    run = Path(run_dir)
    ids = {it.id for it in items_of(config)}
    done = done_ids(run, retry_failed, ids) if run.is_dir() else set()
    times = [r["seconds"] for r in read_manifest(run) if isinstance(r.get("seconds"), (int, float))] \
        if run.is_dir() else []
    per_item = float(np.mean(times)) if times else None
    left = len(ids) - len(done)
    return {"planned": len(ids), "done": len(done), "left": left, "seconds_per_item": per_item,
            "estimate_seconds": None if per_item is None else per_item * left, "timed_items": len(times)}


def run_sweep(config: dict, run_dir: str | Path, process_index: int = 0, num_processes: int = 1,
              progress: bool = True, retry_failed: bool = False, force: bool = False) -> dict:
    """Run this process's share of the sweep; returns counts (done now, skipped, failed, and
    failed items left in the folder from this share)."""
    run = Path(run_dir)
    check_writable(run / "sweep.json")
    items = items_of(config)  # a bad config fails here, before anything is written
    if vbench_dimensions(config):  # missing VBench weights: one sentence before anything is generated
        from .metrics.vbench import model_paths

        model_paths(vbench_dimensions(config), cache=Path(config["vbench_models"]).expanduser()
                    if config.get("vbench_models") else None)
    run.mkdir(parents=True, exist_ok=True)
    with SweepLock(run, process_index):
        check_same_setting(run, config, force)  # every process checks; the first records the sweep
        shard = run / f"manifest.rank{process_index}.jsonl"
        check_appendable(shard)
        if process_index == 0:
            write_text(run / "sweep.json", json.dumps(config, indent=2, default=str))
        compact_shard(shard)
        remove_stale(run / "clips")
        return _run_share(config, run, shard, items, process_index, num_processes, progress, retry_failed)


def _run_share(config, run, shard, items, process_index, num_processes, progress, retry_failed) -> dict:
    mine = [it for i, it in enumerate(items) if i % num_processes == process_index]
    skip = done_ids(run, retry_failed, {it.id for it in mine})
    todo = [it for it in mine if it.id not in skip]
    target = load_target_of(config) if todo else None
    counts = {"items": len(mine), "skipped": len(mine) - len(todo), "done": 0, "failed": 0}
    size = int(config.get("batch", 1))
    bar = tqdm(total=len(todo), desc=f"sweep [{process_index + 1}/{num_processes}]", unit="item",
               disable=not progress or not todo,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} items [{elapsed}<{remaining}]")
    for batch in batches(mine, size):  # fixed by the plan, so a resumed batch is the batch of the first run
        if all(it.id in skip for it in batch):
            continue
        new = sum(it.id not in skip for it in batch)
        before = bar.n

        def advance(info, new=new):  # this batch's new items, spread over its denoising steps
            bar.update(new / max(info.num_steps, 1) * 0.95)

        try:
            outcomes = [(it, res, None) for it, res in zip(batch, evaluate_items(target, batch, config, advance))]
        except Exception as err:  # noqa: BLE001  (a failed batch is retried item by item)
            outcomes = [(batch[0], None, err)] if len(batch) == 1 else [_alone(target, it, config) for it in batch]
        bar.n = before  # whole items from here on
        for item, result, err in outcomes:
            if item.id in skip:  # generated again only to keep the batch whole
                continue
            base = {"id": item.id, "prompt": item.prompt, "seed": item.seed, "method": item.method,
                    "setting": item.setting, "tags": list(item.tags)}
            if item.image:
                base["image"] = item.image
            if err is not None:  # one failed item must not stop the sweep
                append_line(shard, {**base, "error": f"{type(err).__name__}: {err}"})
                counts["failed"] += 1
            else:
                row, clip, heat, frames = result
                save_clips(run, item.id, clip, heat, target.fps, frames if config.get("keep_frames") else None)
                append_line(shard, {**base, **row})
                counts["done"] += 1
            bar.update(1)
    bar.close()
    ids = {it.id for it in mine}
    counts["failed_total"] = sum(1 for r in read_manifest(run) if r["id"] in ids and "error" in r)
    return counts


def _alone(target, item: Item, config: dict):
    """(item, result, None) or (item, None, error) for one item run on its own."""
    try:
        return item, evaluate_items(target, [item], config)[0], None
    except Exception as err:  # noqa: BLE001
        return item, None, err
