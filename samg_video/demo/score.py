"""Exact prompt-adherence scoring for clips of the synthetic world.

`score(video, prompt)` detects each object by colour, counts the separate blobs of
that colour (two red squares for "a red square" are a count error), classifies the
shape of the largest blob by how much of its bounding box it fills (square ~1.0,
circle ~0.79) and how its pixels split between the box's upper and lower halves (a
triangle is bottom-heavy) and its motion by a least-squares fit of its centroid over
frames, then matches the detected objects to the prompt's objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .world import COLORS, SIZE, SPEED, parse_prompt

FOREGROUND = 0.45  # a pixel is foreground when its brightest channel exceeds this
MIN_AREA = 12  # pixels (the smallest object covers ~55)
STILL_SPEED = SPEED / 3  # pixels per frame below which an object counts as still
SQUARE_FILL, TOP_MASS = 0.9, 0.4


@dataclass
class Detection:
    color: str
    shape: str
    motion: str
    area: float
    velocity: tuple[float, float]
    blobs: int = 1  # separate blobs of this colour (median over frames); > 1 = duplicated object


def to_frames(video) -> np.ndarray:
    """Any clip -> float array (F, SIZE, SIZE, 3) in [0, 1].

    Accepts (F, H, W, 3) or (F, 3, H, W), uint8 or float in [0, 1], numpy or torch;
    larger frames are area-downsampled to the world's size.
    """
    x = torch.as_tensor(np.asarray(video) if not torch.is_tensor(video) else video)
    if x.ndim != 4:
        raise ValueError(f"Expected a clip of 4 dims (F, H, W, 3) or (F, 3, H, W), got shape {tuple(x.shape)}.")
    if x.shape[-1] != 3 and x.shape[1] == 3:
        x = x.permute(0, 2, 3, 1)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.shape[1] != SIZE or x.shape[2] != SIZE:
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(SIZE, SIZE), mode="area").permute(0, 2, 3, 1)
    return x.clamp(0, 1).numpy()


def color_masks(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per palette colour, a boolean mask (F, H, W) of the pixels nearest to it.

    Colours are compared after dividing by the brightest channel, so the dimmer
    anti-aliased edge of an object keeps the object's hue.
    """
    names = list(COLORS)
    palette = np.array([COLORS[n] for n in names], dtype=np.float32)
    palette = palette / palette.max(-1, keepdims=True)
    hue = frames / np.maximum(frames.max(-1, keepdims=True), 1e-6)
    dist = ((hue[..., None, :] - palette) ** 2).sum(-1)  # F H W K
    nearest = dist.argmin(-1)
    fg = frames.max(-1) > FOREGROUND
    return {n: fg & (nearest == k) for k, n in enumerate(names)}


def classify_shape(mask: np.ndarray) -> str:
    """Shape of one frame's mask (H, W).

    A triangle (apex up) holds under TOP_MASS of its pixels in the upper half of its
    bounding box (circle and square: ~0.5); a square fills its box (fill >= SQUARE_FILL),
    a circle does not (~0.79).
    """
    ys, xs = np.nonzero(mask)
    top, bottom = ys.min(), ys.max()
    upper = (ys < (top + bottom + 1) / 2).mean()
    if upper < TOP_MASS:
        return "triangle"
    fill = len(ys) / ((bottom - top + 1) * (xs.max() - xs.min() + 1))
    return "square" if fill >= SQUARE_FILL else "circle"


def blobs(mask: np.ndarray) -> list[np.ndarray]:
    """Connected parts (8-neighbourhood) of one frame's mask (H, W) with at least
    MIN_AREA pixels, largest first, each as a mask (H, W)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    parts = [labels == k for k in range(1, n + 1)]
    return sorted((b for b in parts if b.sum() >= MIN_AREA), key=lambda b: -b.sum())


def classify_motion(masks: np.ndarray) -> tuple[str, tuple[float, float]]:
    """Motion of an object from its masks (F, H, W): slope of the centroid track."""
    frames = [t for t in range(len(masks)) if masks[t].sum() >= MIN_AREA]
    if len(frames) < 2:
        return "still", (0.0, 0.0)
    cents = np.array([[np.nonzero(masks[t])[1].mean(), np.nonzero(masks[t])[0].mean()] for t in frames])
    t = np.array(frames, dtype=np.float64)
    vx, vy = (np.polyfit(t, cents[:, i], 1)[0] for i in range(2))
    if max(abs(vx), abs(vy)) < STILL_SPEED:
        return "still", (float(vx), float(vy))
    if abs(vx) >= abs(vy):
        return ("left" if vx < 0 else "right"), (float(vx), float(vy))
    return ("up" if vy < 0 else "down"), (float(vx), float(vy))


def detect(video) -> list[Detection]:
    """Objects in a clip, largest first."""
    frames = to_frames(video)
    found = []
    for color, masks in color_masks(frames).items():
        areas = masks.reshape(len(masks), -1).sum(1)
        if np.median(areas) < MIN_AREA:
            continue
        parts = blobs(masks[int(areas.argmax())])
        shape = classify_shape(parts[0] if parts else masks[int(areas.argmax())])
        motion, vel = classify_motion(masks)
        count = int(np.median([len(blobs(m)) for m in masks]))
        found.append(Detection(color, shape, motion, float(areas.mean()), vel, max(count, 1)))
    return sorted(found, key=lambda d: -d.area)


def score(video, prompt: str) -> dict:
    """Per-attribute correctness of a clip against its prompt.

    Returns `color`, `shape`, `motion` (fraction of the prompt's objects right in that
    attribute), `count` (as many objects detected as prompted, each colour one blob), `correct` (every
    attribute of every object right and the count right) and `detected`.
    """
    wanted = parse_prompt(prompt)
    found = detect(video)
    free = list(found)
    hits = {"color": 0, "shape": 0, "motion": 0}
    for color, shape, motion in wanted:
        match = next((d for d in free if d.color == color), None)
        hits["color"] += match is not None
        if match is None and free:
            match = free[0]
        if match is None:
            continue
        free.remove(match)
        hits["shape"] += match.shape == shape
        hits["motion"] += match.motion == motion
    n = len(wanted)
    result = {k: v / n for k, v in hits.items()}
    result["count"] = len(found) == n and all(d.blobs == 1 for d in found)
    result["correct"] = bool(result["count"] and all(v == n for v in hits.values()))
    result["detected"] = [asdict(d) for d in found]
    return result
