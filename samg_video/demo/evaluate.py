"""The bundled world's scorer (`ShapeScorer`, the evaluation scorer "shapes" that its model card
names) and the held-out / validation pairs of the bundled model's evaluation.

Held-out pairs: prompts drawn from the grammar with the suite seed and one noise seed
per prompt, both from streams the training never used (training clips come from the
renderer's seed-0 stream; generation noise is never seen in training). The validation
pairs come from another stream: choose settings there, report on the held-out pairs.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from . import suites, world
from .score import FOREGROUND, color_masks, score, to_frames

VALIDATION_SEED = 1  # the validation stream's suite seed

def held_out_pairs(n: int, objects: int, validation: bool = False) -> list[tuple[str, int]]:
    """n (prompt, noise seed) pairs with `objects` objects each: the held-out test pairs, or
    with `validation` the validation pairs (another prompt stream and another seed stream)."""
    rng = np.random.default_rng([7 + 1000 * validation, objects])
    prompts = suites.prompts(n, objects, seed=VALIDATION_SEED) if validation else suites.prompts(n, objects)
    return [(p, int(rng.integers(1 << 31))) for p in prompts]


def score_row(clip, prompt: str, out_of_range: float | None = None) -> dict:
    """The scorer's columns of one clip (F, H, W, 3) against its prompt.

    prompt_color / prompt_shape / prompt_motion: fraction of the prompt's objects right in
    that attribute; prompt_count: as many single blobs as objects; prompt_correct: all of
    it; objects: the prompt's object count; object_1_correct, object_2_correct (two-object
    prompts): that object (in prompt order) drawn once with its colour, shape and motion;
    out_of_range: share of the sampler's raw output outside [-1.05, 1.05] (over-saturation),
    when given.
    """
    report = score(clip, prompt)
    row = {f"prompt_{k}": float(report[k]) if k != "correct" else bool(report[k])
           for k in ("color", "shape", "motion", "count", "correct")}
    row["objects"] = len(world.parse_prompt(prompt))
    if row["objects"] > 1:
        row.update({f"object_{k + 1}_correct": bool(ok) for k, ok in enumerate(report["objects"])})
    if out_of_range is not None:
        row["out_of_range"] = float(out_of_range)
    return row


def object_masks(clip) -> np.ndarray:
    """(F, H, W) bool: where the clip shows an object (the scorer's foreground)."""
    return to_frames(clip).max(-1) > FOREGROUND


def prompt_object_masks(clip, prompt: str) -> list[np.ndarray]:
    """Per prompt object, in prompt order, (F, H, W) bool: the pixels of its colour (the scorer's colour masks)."""
    masks = color_masks(to_frames(clip))
    return [masks[color] for color, _, _ in world.parse_prompt(prompt)]


def wrong_shape_prompt(prompt: str, k: int) -> str:
    """The prompt with every object's shape replaced by the k-th next shape (k = 1, 2)."""
    objs = world.parse_prompt(prompt)
    shapes = world.SHAPES
    return world.prompt_of([world.ObjectSpec(c, shapes[(shapes.index(s) + k) % len(shapes)], m) for c, s, m in objs])


def control_row(clip, prompt: str) -> dict:
    """Controls of the scorer and the clip: `shape_vs_wrong` (shape score against the prompt
    with each other shape: near 0 when the scorer's shape reading discriminates) and
    `frame_change` (mean |x_{f+1} - x_f| over the clip in [0, 1]: flicker plus motion)."""
    frames = to_frames(clip)
    wrong = [score(clip, wrong_shape_prompt(prompt, k))["shape"] for k in range(1, len(world.SHAPES))]
    return {"shape_vs_wrong": float(np.mean(wrong)), "frame_change": float(np.abs(np.diff(frames, axis=0)).mean())}


COLUMNS = ("prompt_color", "prompt_shape", "prompt_motion", "prompt_count", "prompt_correct", "out_of_range",
           "frame_change", "shape_vs_wrong")


def summarise_by_objects(rows: list[dict]) -> dict[str, dict]:
    """Means of COLUMNS per suite ('single' for one-object prompts, 'double' for two)."""
    groups = defaultdict(list)
    for r in rows:
        groups["single" if r["objects"] == 1 else "double"].append(r)
    return {name: {k: float(np.mean([float(r[k]) for r in items])) for k in COLUMNS} | {"n": len(items)}
            for name, items in groups.items()}


class ShapeScorer:
    """The exact prompt scorer of the bundled world as an evaluation scorer (`samg_video.evaluation`).

    Its row is `score_row` (with `out_of_range` from the generation's final latents, when the
    pipeline returns them), plus `control_row` with `controls=True`; its regions are the
    foreground and, for two-object prompts, each prompt object's colour.
    """

    name = "shapes"

    def __init__(self, controls: bool = False):
        self.controls = controls

    def check_prompt(self, prompt: str) -> None:
        world.parse_prompt(prompt)

    def row(self, clip, prompt: str, generation=None) -> dict:
        latents = getattr(generation, "latents", None)
        out_of_range = None if latents is None else float((latents.abs() > 1.05).float().mean())
        return {**score_row(clip, prompt, out_of_range), **(control_row(clip, prompt) if self.controls else {})}

    def regions(self, clip, prompt: str) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        regions = None
        if len(world.parse_prompt(prompt)) > 1:  # the field on each prompt object (by its colour), in prompt order
            regions = {f"object_{k + 1}": m for k, m in enumerate(prompt_object_masks(clip, prompt))}
        return object_masks(clip), regions
