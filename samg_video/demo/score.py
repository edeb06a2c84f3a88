"""Exact prompt-adherence scoring for clips of the synthetic world.

`score(video, prompt)` detects each object by colour, counts the separate blobs of
that colour (two red squares for "a red square" are a count error), classifies the
shape of the largest blob by matching it against the renderer's own shapes (a
matched filter summed over frames, robust to pixel noise, blur and a little change of
size; measured by the one-off `scripts/scorer_noise_check.py` of commit 7e0a6ac) and its motion by a
least-squares fit of its centroid over frames, then matches the detected objects to
the prompt's objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..media import frames_hwc
from .world import COLORS, RADIUS, SHAPES, SIZE, SPEED, inside, parse_prompt

FOREGROUND = 0.45  # a pixel is foreground when its brightest channel exceeds this
MIN_AREA = 12  # pixels (the smallest object covers ~55)
STILL_SPEED = SPEED / 3  # pixels per frame below which an object counts as still
CROP = 15  # side of the shape templates, pixels (a shape spans ~10)
SEARCH = 2  # templates are tried at every integer shift up to this far from the blob's box centre
SCALES = (0.85, 1.0, 1.15)  # template sizes relative to the renderer's
PHASES = 4  # sub-pixel positions per axis


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
    x = torch.from_numpy(np.ascontiguousarray(frames_hwc(video)))
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


@lru_cache(maxsize=1)
def shape_templates(supersample: int = 8) -> np.ndarray:
    """Coverage templates of every shape, shape (S, V, CROP * CROP), S = len(SHAPES).

    The V = len(SCALES) * PHASES**2 variants of a shape are the renderer's own coverage
    (`world.inside` at the renderer's RADIUS, supersampled) at each size and sub-pixel offset.
    """
    s = supersample
    c = (torch.arange(CROP * s, dtype=torch.float64) + 0.5) / s
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = []
    for shape in SHAPES:
        variants = []
        for scale in SCALES:
            for py in range(PHASES):
                for px in range(PHASES):
                    dx, dy = xx - (CROP / 2 + px / PHASES), yy - (CROP / 2 + py / PHASES)
                    cover = inside(shape, dx, dy, RADIUS * scale).double()
                    variants.append(F.avg_pool2d(cover[None, None], s)[0, 0].numpy().ravel())
        out.append(np.stack(variants))
    return np.stack(out)


def shape_residuals(bright: np.ndarray, blob: np.ndarray) -> np.ndarray:
    """How badly each shape explains one frame's object, shape (S,).

    `bright` (H, W) is the object's brightness (0 off the object), `blob` (H, W) its
    mask. With `a` a CROP x CROP window of `bright` and `t` a template, the gain-fitted
    residual is ``min_g ||a - g t||^2 = ||a||^2 - (a . t)^2 / ||t||^2``; each shape's
    residual is its minimum over template variants and window shifts up to SEARCH
    pixels around the blob's bounding-box centre.
    """
    ys, xs = np.nonzero(blob)
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    span = CROP + 2 * SEARCH  # the window, also used as padding so that it never leaves the frame
    y0 = int(round(cy)) - CROP // 2 - SEARCH - 1 + span
    x0 = int(round(cx)) - CROP // 2 - SEARCH - 1 + span
    window = np.pad(bright, span)[y0:y0 + span + 1, x0:x0 + span + 1]
    a = np.lib.stride_tricks.sliding_window_view(window, (CROP, CROP)).reshape(-1, CROP * CROP)  # N D
    t = shape_templates()  # S V D
    dots = np.einsum("nd,svd->svn", a, t)
    resid = (a * a).sum(-1)[None, None] - dots ** 2 / (t * t).sum(-1)[..., None]
    return resid.reshape(len(t), -1).min(-1)


def classify_shape(bright: np.ndarray, masks: np.ndarray, parts: list[list[np.ndarray]]) -> str:
    """Shape of an object from its brightness (F, H, W), per-frame masks (F, H, W) and
    per-frame blobs (`blobs` of each mask): the shape whose residual (`shape_residuals`)
    summed over the largest blob of every frame that has one is smallest."""
    total = np.zeros(len(SHAPES))
    for t, frame_parts in enumerate(parts):
        if frame_parts:
            total += shape_residuals(bright[t], frame_parts[0])
    if not total.any():  # no frame has a blob of MIN_AREA: use the fullest frame's pixels
        t = int(masks.reshape(len(masks), -1).sum(1).argmax())
        total = shape_residuals(bright[t], masks[t])
    return SHAPES[int(total.argmin())]


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
    all_masks = color_masks(frames)
    brightness = frames.max(-1)
    for color, masks in all_masks.items():
        areas = masks.reshape(len(masks), -1).sum(1)
        if np.median(areas) < MIN_AREA:
            continue
        others = np.any([m for c, m in all_masks.items() if c != color], axis=0)
        parts = [blobs(m) for m in masks]
        shape = classify_shape(np.where(others, 0.0, brightness), masks, parts)
        motion, vel = classify_motion(masks)
        count = int(np.median([len(p) for p in parts]))
        found.append(Detection(color, shape, motion, float(areas.mean()), vel, max(count, 1)))
    return sorted(found, key=lambda d: -d.area)


def score(video, prompt: str) -> dict:
    """Per-attribute correctness of a clip against its prompt.

    Returns `color`, `shape`, `motion` (fraction of the prompt's objects right in that
    attribute), `count` (as many objects detected as prompted, each colour one blob), `correct` (every
    attribute of every object right and the count right), `objects` (per prompt object, in prompt
    order: its colour found, drawn once, with the right shape and motion) and `detected`.
    """
    wanted = parse_prompt(prompt)
    found = detect(video)
    free = list(found)
    hits = {"color": 0, "shape": 0, "motion": 0}
    objects = []
    for color, shape, motion in wanted:
        match = next((d for d in free if d.color == color), None)
        hits["color"] += match is not None
        objects.append(match is not None and match.blobs == 1 and match.shape == shape and match.motion == motion)
        if match is None and free:
            match = free[0]
        if match is None:
            continue
        free.remove(match)
        hits["shape"] += match.shape == shape
        hits["motion"] += match.motion == motion
    n = len(wanted)
    result_objects = objects
    result = {k: v / n for k, v in hits.items()}
    result["count"] = len(found) == n and all(d.blobs == 1 for d in found)
    result["correct"] = bool(result["count"] and all(v == n for v in hits.values()))
    result["objects"] = result_objects
    result["detected"] = [asdict(d) for d in found]
    return result
