"""Pictures: scale-field heatmaps and labelled side-by-side grids, as uint8 frames."""

from __future__ import annotations

import numpy as np


def heatmap(field, vmin: float, vmax: float, cmap: str = "magma") -> np.ndarray:
    """Scale field (F, H, W) -> colour frames (F, H, W, 3) uint8, `vmin` dark, `vmax` bright."""
    from matplotlib import colormaps

    values = np.asarray(field, dtype=np.float32)
    normed = np.clip((values - vmin) / max(vmax - vmin, 1e-8), 0, 1)
    return (colormaps[cmap](normed)[..., :3] * 255).round().astype(np.uint8)


def colorbar(height: int, vmin: float, vmax: float, width: int = 34, cmap: str = "magma") -> np.ndarray:
    """A vertical colour bar (height, width, 3) uint8: vmax (bright) at the top, vmin at the bottom,
    both written on it."""
    import cv2

    ramp = np.linspace(vmax, vmin, height, dtype=np.float32)[:, None].repeat(width // 2, axis=1)
    bar = np.zeros((height, width, 3), np.uint8)
    bar[:, :width // 2] = heatmap(ramp[None], vmin, vmax, cmap)[0]
    for text, y in ((f"{vmax:g}", 10), (f"{vmin:g}", height - 3)):
        cv2.putText(bar, text, (width // 2 + 1, y), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def scale_map(field, vmin: float, vmax: float, scale: int = 1) -> np.ndarray:
    """A scale field (F, H, W) as heatmap frames upscaled by `scale`, with a colour bar on the right."""
    heat = heatmap(field, vmin, vmax)
    if scale > 1:
        heat = heat.repeat(scale, axis=1).repeat(scale, axis=2)
    bar = colorbar(heat.shape[1], vmin, vmax)
    return np.concatenate([heat, np.broadcast_to(bar, (len(heat), *bar.shape))], axis=2)


def field_frames(fields: list, step: int = -1, size: tuple[int, int, int] | None = None) -> np.ndarray:
    """One sample's scale field as (F, H, W) float32: the field of `step`, or with step -1 the mean
    over the steps; resized (nearest) to size = (F, H, W) when given (e.g. the clip's frames).

    fields: one tensor per guided step, (B, 1, F, H, W) (the canonical layout), (B, F, H, W) or
    (B, H, W) (an image model's); the first sample is shown."""
    import torch

    field = (torch.stack(list(fields)).mean(0) if step < 0 else fields[step]).float()
    field = field[0, 0] if field.ndim == 5 else field[0]
    field = field[None] if field.ndim == 2 else field  # (F, H, W)
    if size is not None:
        field = torch.nn.functional.interpolate(field[None, None], size=tuple(size), mode="nearest")[0, 0]
    return field.cpu().numpy()


def field_heatmap(fields: list, w_min: float, w_max: float, scale: int = 1, step: int = -1,
                  size: tuple[int, int, int] | None = None) -> np.ndarray:
    """`scale_map` of `field_frames(fields, step, size)`: the heatmap of a method's field between
    its w_min (dark) and w_max (bright), uint8 (F, H * scale, W * scale + bar, 3)."""
    return scale_map(field_frames(fields, step, size), w_min, w_max, scale)


def label_lines(text: str, width: int, scale: float) -> list[str]:
    """`text` broken at spaces into lines that fit `width` pixels in OpenCV's simplex font at `scale`
    (a single word wider than that keeps a line of its own)."""
    import cv2

    lines: list[str] = []
    for word in text.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines or [""]


def label(frames: np.ndarray, text: str, scale: float = 0.4, lines: int = 1) -> np.ndarray:
    """Add a black strip with `text` above every frame of (F, H, W, 3) uint8, on as many lines as
    the frame's width needs (nothing cut) and at least `lines` (labels of clips shown side by side
    share a height)."""
    import cv2

    f, h, w, _ = frames.shape
    wrapped = label_lines(text, w - 6, scale)
    lines = wrapped + [""] * max(0, lines - len(wrapped))
    step = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] + 6
    strip = np.zeros((step * len(lines) + 4, w, 3), np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(strip, line, (3, step * (i + 1) - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return np.concatenate([np.broadcast_to(strip, (f, strip.shape[0], w, 3)), frames], axis=1)


def stacked(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Clips (F, H, W, 3) one above the other, the narrower padded with black on the right."""
    width = max(top.shape[2], bottom.shape[2])
    pad = lambda c: np.pad(c, ((0, 0), (0, 0), (0, width - c.shape[2]), (0, 0)))  # noqa: E731
    return np.concatenate([pad(top), pad(bottom)], axis=1)


def side_by_side(clips: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Concatenate equal-length clips (F, H, W, 3) horizontally, padding heights with black."""
    h = max(c.shape[1] for c in clips)
    padded = [np.pad(c, ((0, 0), (0, h - c.shape[1]), (0, gap), (0, 0))) for c in clips]
    return np.concatenate(padded, axis=2)[:, :, :-gap] if gap else np.concatenate(padded, axis=2)


def contact_sheet(clips: np.ndarray, upscale: int = 1, gap: int = 2) -> np.ndarray:
    """Clips (N, F, H, W, 3) uint8 -> one image, a row of F frames per clip with grey gaps,
    upscaled by `upscale` (nearest neighbour): ((N (H + gap)) u, (F (W + gap)) u, 3) uint8."""
    n, f, h, w, _ = clips.shape
    out = np.full((n * (h + gap), f * (w + gap), 3), 64, dtype=np.uint8)
    for i in range(n):
        for t in range(f):
            out[i * (h + gap):i * (h + gap) + h, t * (w + gap):t * (w + gap) + w] = clips[i, t]
    return out.repeat(upscale, 0).repeat(upscale, 1)
