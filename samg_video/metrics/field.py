"""Diagnostics of a SAMG scale field: where guidance went, and how steady it was.

Input: the field of every guided step, each (F', H', W') at the latent grid (F' latent
frames), and the decoded clip (F, H, W, 3) uint8. Numbers are in scale units (the
field's own values, between w_min and w_max) and average over steps:

    field_mean          mean of W
    field_spread        standard deviation of W over frames x rows x columns
    field_change        mean_t |W_{t+1} - W_t|, consecutive latent frames
    field_change_warped mean_t |W_t - warp(W_{t+1}, flow_t)|: the same after following the
                        clip's own motion (DIS flow between the video frames that the latent
                        frames t and t+1 stand for, the field resized to the clip, nearest);
                        what is left is change that motion does not explain
    field_roughness     mean |W(y, x+1) - W(y, x)| and |W(y+1, x) - W(y, x)| over the latent grid
    field_object / field_background (with masks): mean W on object / background pixels

The temporal options (temporal_sigma, step_ema) act on exactly these numbers, so they
are measurable even where the output metrics cannot tell settings apart.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import flow as flowlib


def latent_frame_index(num_latent: int, num_frames: int) -> np.ndarray:
    """The video frame each latent frame stands for: evenly spread, first to last."""
    return np.round(np.linspace(0, num_frames - 1, num_latent)).astype(int)


def resize_field(field: np.ndarray, height: int, width: int) -> np.ndarray:
    """(F', H', W') -> (F', height, width), nearest neighbour."""
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_NEAREST) for f in field])


def pair_flows(frames: np.ndarray) -> list[np.ndarray]:
    """DIS flow from each frame to the next, (H, W, 2) each."""
    grey = [flowlib.gray(f) for f in frames]
    return [flowlib.flow(a, b) for a, b in zip(grey, grey[1:])]


def warped_change(field: np.ndarray, flows: list[np.ndarray]) -> float:
    """mean_t |W_t - warp(W_{t+1}, flow_t)| on the clip's grid (flows from `pair_flows`)."""
    return float(np.mean([np.abs(field[t] - flowlib.warp(field[t + 1], fw)).mean() for t, fw in enumerate(flows)]))


def step_diagnostics(field: np.ndarray) -> dict:
    """Flow-free numbers of one step's field (F', H', W')."""
    out = {"field_mean": float(field.mean()), "field_spread": float(field.std()),
           "field_roughness": float((np.abs(np.diff(field, axis=2)).mean()
                                     + np.abs(np.diff(field, axis=1)).mean()) / 2)}
    out["field_change"] = float(np.abs(np.diff(field, axis=0)).mean()) if len(field) > 1 else None
    return out


def field_diagnostics(fields: list, clip: np.ndarray, masks: np.ndarray | None = None,
                      regions: dict[str, np.ndarray] | None = None) -> dict:
    """Mean over steps of the module docstring's numbers; `fields`: per step (F', H', W') arrays or
    tensors of any leading singleton dims; `masks` (F, H, W) bool marks object pixels (-> field_object,
    field_background); `regions` name -> (F, H, W) bool adds field_<name>, the field's mean there."""
    steps = [np.asarray(f, dtype=np.float32).reshape(np.shape(f)[-3:]) for f in fields]
    if not steps:
        return {}
    per_step = [step_diagnostics(f) for f in steps]
    out = {k: (float(np.mean([d[k] for d in per_step])) if per_step[0][k] is not None else None)
           for k in per_step[0]}
    index = latent_frame_index(len(steps[0]), len(clip))
    flows = pair_flows(clip[index]) if len(index) > 1 else []
    objects = masks[index] if masks is not None else None
    split = objects is not None and objects.any() and (~objects).any()
    areas = {name: m[index] for name, m in (regions or {}).items() if m[index].any()}
    warped, on_objects, on_background = [], [], []
    on_regions = {name: [] for name in areas}
    for field in steps:  # one step's field at the clip's size at a time: memory stays one clip-sized field
        resized = resize_field(field, *clip.shape[1:3])
        if flows:
            warped.append(warped_change(resized, flows))
        if split:
            on_objects.append(resized[objects].mean())
            on_background.append(resized[~objects].mean())
        for name, area in areas.items():
            on_regions[name].append(resized[area].mean())
    out["field_change_warped"] = float(np.mean(warped)) if warped else None
    if split:
        out["field_object"], out["field_background"] = float(np.mean(on_objects)), float(np.mean(on_background))
    out.update({f"field_{name}": float(np.mean(values)) for name, values in on_regions.items()})
    return out
