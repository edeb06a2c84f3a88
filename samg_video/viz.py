"""Pictures: scale-field heatmaps and labelled side-by-side grids, as uint8 frames."""

from __future__ import annotations

import numpy as np


def heatmap(field, vmin: float, vmax: float, cmap: str = "magma") -> np.ndarray:
    """Scale field (F, H, W) -> colour frames (F, H, W, 3) uint8, `vmin` dark, `vmax` bright."""
    from matplotlib import colormaps

    values = np.asarray(field, dtype=np.float32)
    normed = np.clip((values - vmin) / max(vmax - vmin, 1e-8), 0, 1)
    return (colormaps[cmap](normed)[..., :3] * 255).round().astype(np.uint8)


def label(frames: np.ndarray, text: str, height: int = 18) -> np.ndarray:
    """Add a black strip with `text` above every frame of (F, H, W, 3) uint8."""
    import cv2

    f, h, w, _ = frames.shape
    strip = np.zeros((height, w, 3), np.uint8)
    scale = min(0.45, 0.9 * w / max(1, 9 * len(text)))
    cv2.putText(strip, text, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([np.broadcast_to(strip, (f, height, w, 3)), frames], axis=1)


def side_by_side(clips: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Concatenate equal-length clips (F, H, W, 3) horizontally, padding heights with black."""
    h = max(c.shape[1] for c in clips)
    padded = [np.pad(c, ((0, 0), (0, h - c.shape[1]), (0, gap), (0, 0))) for c in clips]
    return np.concatenate(padded, axis=2)[:, :, :-gap] if gap else np.concatenate(padded, axis=2)
