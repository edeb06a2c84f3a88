"""Sweeps: prompts x seeds x methods, one JSONL manifest line per item, resumable, split by accelerate.

    samg-video sweep configs/sweeps/demo_study.yaml --out runs/study
    accelerate launch --num_processes 4 -m samg_video.cli sweep configs/sweeps/demo_study.yaml --out runs/study

Each item (prompt, seed, method config) has a stable id. Process i of n takes every
item whose position in the sorted list is i mod n, and appends one JSON line per
finished item to `manifest.rank{i}.jsonl` (flushed and fsynced, so an interruption
loses at most the item in flight); the clip goes to `clips/{id}.npy` (written
atomically). Rerunning the same command skips every id already in any manifest; a
failed item is recorded with its error and the sweep goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Item:
    prompt: str
    seed: int
    method: dict

    @property
    def id(self) -> str:
        key = json.dumps([self.prompt, self.seed, self.method], sort_keys=True)
        return hashlib.sha1(key.encode()).hexdigest()[:16]


def load_sweep(path: str | Path) -> dict:
    """A sweep config (YAML): model, prompts or a prompt suite, seeds, steps, methods."""
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    missing = [k for k in ("methods", "seeds") if k not in config]
    if missing or ("prompts" not in config and "suite" not in config):
        raise ValueError(f"{path} needs 'methods', 'seeds' and 'prompts' (or 'suite'); missing: "
                         f"{', '.join(missing) or 'prompts'}.")
    return config


def sweep_prompts(config: dict) -> list[str]:
    if "prompts" in config:
        return list(config["prompts"])
    from .demo.suites import suite

    return suite(config["suite"])


def method_configs(config: dict) -> list[dict]:
    """Each entry: a 'cfg:7.5' style spec or a dict; returned as full configs (method.to_dict())."""
    from . import guidance
    from .cli import parse_method_spec

    out = []
    for entry in config["methods"]:
        method = parse_method_spec(entry) if isinstance(entry, str) else guidance.from_dict(dict(entry))
        out.append(method.to_dict())
    return out


def items_of(config: dict) -> list[Item]:
    """All items, in a fixed order (method, prompt, seed)."""
    return [Item(p, int(s), m) for m in method_configs(config) for p in sweep_prompts(config) for s in config["seeds"]]


def done_ids(run_dir: Path, retry_failed: bool = False) -> set[str]:
    """Ids in any manifest shard (failed ones too, unless retry_failed); torn lines are ignored."""
    return {r["id"] for r in read_manifest(run_dir) if not (retry_failed and "error" in r)}


def read_manifest(run_dir: str | Path) -> list[dict]:
    """All recorded items (the last record of an id wins), sorted by id."""
    rows = {}
    for shard in sorted(Path(run_dir).glob("manifest.rank*.jsonl")):
        for line in shard.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["id"]] = row
    return sorted(rows.values(), key=lambda r: r["id"])


def append_line(path: Path, row: dict) -> None:
    """Append one JSON line durably; a torn last line (interrupted write) is closed off first."""
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
    with open(path, "a") as fh:
        fh.write(("\n" if torn else "") + json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def save_clip(run_dir: Path, item_id: str, clip: np.ndarray) -> None:
    folder = run_dir / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{item_id}.tmp.npy"
    np.save(tmp, clip)
    os.replace(tmp, folder / f"{item_id}.npy")


def item_noise(pipe, seed: int, shape: tuple[int, ...]):
    """The initial noise of one item, (1, C, F, H, W) from its own seed (and the pipeline's noise prior):
    results do not depend on batching."""
    import torch

    return pipe.initial_noise((1, *shape), torch.Generator().manual_seed(seed))


def evaluate_items(pipe, items: list[Item], steps: int) -> list[tuple[dict, np.ndarray]]:
    """Generate the clips of items that share one method config (one batch) and measure each."""
    import torch

    from . import guidance, io, metrics
    from .demo import score, world
    from .pipelines import apply

    methods = {json.dumps(it.method, sort_keys=True) for it in items}
    if len(methods) != 1:
        raise ValueError("A sweep batch must share one method config.")
    shape = (3, world.NUM_FRAMES, world.SIZE, world.SIZE)
    latents = torch.cat([item_noise(pipe, it.seed, shape) for it in items])
    with apply(pipe, guidance.from_dict(items[0].method)):
        out = pipe([it.prompt for it in items], latents=latents, num_inference_steps=steps, guidance_scale=2.0,
                   progress=False)
    results = []
    for item, frames, raw in zip(items, out.frames, out.raw):
        clip = io.to_uint8(frames)
        report = score(clip, item.prompt)
        row = {**{f"prompt_{k}": report[k] for k in ("color", "shape", "motion", "correct")},
               "objects": item.prompt.count(" and ") + 1,
               "out_of_range": float((raw.abs() > 1.05).float().mean()),
               **metrics.compute(clip, metrics=["flicker", "warp_error", "motion", "saturation"])}
        results.append((row, clip))
    return results


def batches(items: list[Item], size: int) -> list[list[Item]]:
    """Consecutive items with the same method config, at most `size` per batch."""
    out: list[list[Item]] = []
    for it in items:
        if out and len(out[-1]) < size and out[-1][0].method == it.method:
            out[-1].append(it)
        else:
            out.append([it])
    return out


def run_sweep(config: dict, run_dir: str | Path, process_index: int = 0, num_processes: int = 1,
              progress: bool = True, model_path: str | None = None, retry_failed: bool = False) -> dict:
    """Run this process's share of the sweep; returns counts (done now, skipped, failed)."""
    from tqdm.auto import tqdm

    from .demo import load_pipeline

    if config.get("model", "demo") != "demo":
        raise ValueError("Sweeps run on the bundled model ('model: demo') for now.")
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "sweep.json").write_text(json.dumps(config, indent=2, default=str))
    mine = [it for i, it in enumerate(items_of(config)) if i % num_processes == process_index]
    skip = done_ids(run, retry_failed)
    todo = [it for it in mine if it.id not in skip]
    shard = run / f"manifest.rank{process_index}.jsonl"
    pipe = load_pipeline(model_path) if todo else None
    counts = {"items": len(mine), "skipped": len(mine) - len(todo), "done": 0, "failed": 0}
    steps, size = int(config.get("steps", 25)), int(config.get("batch", 1))
    bar = tqdm(total=len(todo), desc=f"sweep [{process_index + 1}/{num_processes}]", disable=not progress)
    for batch in batches(todo, size):
        try:
            outcomes = [(it, res, None) for it, res in zip(batch, evaluate_items(pipe, batch, steps))]
        except Exception as err:  # noqa: BLE001  (a failed batch is retried item by item)
            outcomes = [(batch[0], None, err)] if len(batch) == 1 else [_alone(pipe, it, steps) for it in batch]
        for item, result, err in outcomes:
            base = {"id": item.id, "prompt": item.prompt, "seed": item.seed, "method": item.method}
            if err is not None:  # one failed item must not stop the sweep
                append_line(shard, {**base, "error": f"{type(err).__name__}: {err}"})
                counts["failed"] += 1
            else:
                row, clip = result
                save_clip(run, item.id, clip)
                append_line(shard, {**base, **row})
                counts["done"] += 1
            bar.update(1)
    bar.close()
    return counts


def _alone(pipe, item: Item, steps: int):
    """(item, result, None) or (item, None, error) for one item run on its own."""
    try:
        return item, evaluate_items(pipe, [item], steps)[0], None
    except Exception as err:  # noqa: BLE001
        return item, None, err
