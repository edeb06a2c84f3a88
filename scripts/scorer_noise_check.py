"""How the exact scorer holds up on damaged ground truth: 150 rendered single-object
clips (scene seed 0), with Gaussian pixel noise of each sigma (torch seed 0), a
Gaussian blur, and objects drawn 10 % smaller or larger than the renderer's size,
scored against their own prompts. Every number here has an independent truth (the
render), so the scorer can be checked without looking at any model's clips.

    python scripts/scorer_noise_check.py
"""

import numpy as np
import torch
from scipy import ndimage

from samg_video.demo import score, world

KEYS = ("color", "shape", "motion", "count", "correct")


def damaged(clip: torch.Tensor, sigma: float, blur: float, g: torch.Generator) -> torch.Tensor:
    x = torch.from_numpy(ndimage.gaussian_filter(clip.numpy(), (0, blur, blur, 0))) if blur else clip
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def main() -> None:
    rng = np.random.default_rng(0)
    scenes = [world.random_scene(rng, 0.0) for _ in range(150)]
    cases = [(s, 0.0, 1.0) for s in (0.0, 0.03, 0.06, 0.1, 0.12, 0.15, 0.2, 0.25)]
    cases += [(0.1, 0.7, 1.0), (0.1, 0.0, 0.9), (0.1, 0.0, 1.1)]
    g = torch.Generator().manual_seed(0)
    for sigma, blur, size in cases:
        clips = [world.render(s, radius=world.RADIUS * size) for s in scenes]
        res = [score(damaged(c, sigma, blur, g), world.prompt_of(s)) for s, c in zip(scenes, clips)]
        squares = [r["shape"] for r, s in zip(res, scenes) if s[0].shape == "square"]
        print(f"sigma {sigma:<4} blur {blur:<3} size x{size:<3}: "
              + ", ".join(f"{k} {np.mean([r[k] for r in res]):.3f}" for k in KEYS)
              + f", squares' shape {np.mean(squares):.3f}", flush=True)


if __name__ == "__main__":
    main()
