"""How the exact scorer holds up on noisy ground truth: 150 rendered single-object clips
(scene seed 0) with Gaussian pixel noise of each sigma added (torch seed 0), scored
against their own prompts.

    python scripts/scorer_noise_check.py
"""

import numpy as np
import torch

from samg_video.demo import score, world

rng = np.random.default_rng(0)
scenes = [world.random_scene(rng, 0.0) for _ in range(150)]
clips = [world.render(s) for s in scenes]
g = torch.Generator().manual_seed(0)
for sigma in [0.0, 0.03, 0.06, 0.1, 0.12, 0.15]:
    res = [score((c + sigma * torch.randn(c.shape, generator=g)).clamp(0, 1), world.prompt_of(s))
           for s, c in zip(scenes, clips)]
    squares = [r["shape"] for r, s in zip(res, scenes) if s[0].shape == "square"]
    print(f"sigma {sigma}: " + ", ".join(f"{k} {np.mean([r[k] for r in res]):.3f}"
                                         for k in ("color", "shape", "motion", "count", "correct"))
          + f", squares' shape {np.mean(squares):.3f}")
