"""Optical flow and warping, shared by the temporal metrics and SAMG's motion-following smoothing.

Two families: on uint8 frames for the metrics (OpenCV DIS / Farneback; torchvision RAFT when
weights are given), and in torch on (N, H, W) float maps on their own device for SAMG's
`temporal_mode="motion"` (`flow_torch` / `warp_torch`: pyramidal Lucas-Kanade, batched, no host
copy). OpenCV is imported where it is used, so the guidance layer never loads it.

Flow convention: `flow[y, x] = (dx, dy)` maps pixel (x, y) of frame A to (x + dx, y + dy)
in frame B. `warp(B, flow)` samples B at those positions, so for a correct flow
`warp(B, flow_AB) ~= A`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .lazy import lazy

torch = lazy("torch")  # imported on first use (the guidance modules import this one)
F = lazy("torch.nn.functional")

BACKENDS = ("dis", "farneback", "raft")


def gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


@lru_cache(maxsize=4)
def _dis(preset: int):
    import cv2

    return cv2.DISOpticalFlow_create(preset)


def flow(a: np.ndarray, b: np.ndarray, backend: str = "dis", raft_weights: str | None = None) -> np.ndarray:
    """Flow (H, W, 2) float32 from grey uint8 frame a to b."""
    import cv2

    if backend == "dis":
        return _dis(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(a, b, None)
    if backend == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 5, 5, 1.1, 0)
    if backend == "raft":
        return raft_flow(a, b, raft_weights)
    raise ValueError(f"Unknown flow backend {backend!r}; use one of {', '.join(BACKENDS)}.")


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)


def warp(image: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """Sample `image` (frame B) at x + flow_ab(x): bilinear, border replicated; (H, W, C) or (H, W)."""
    import cv2

    return cv2.remap(image, _grid(*flow_ab.shape[:2]) + flow_ab, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Lai et al. 2018: True where forward/backward flow disagree or on a motion boundary (H, W).

    inconsistent: |f + b'|^2 > 0.01 (|f|^2 + |b'|^2) + 0.5, b' = backward flow warped by f;
    boundary:     |grad f_x|^2 + |grad f_y|^2 > 0.01 |f|^2 + 0.002.
    Written on separate x / y planes: numpy's reductions over a last axis of size 2 are
    ~15x slower than the same sums done plane by plane.
    """
    import cv2

    fx, fy = cv2.split(flow_fw)
    bx, by = cv2.split(warp(flow_bw, flow_fw))
    sx, sy = fx + bx, fy + by
    f_sq = fx * fx + fy * fy
    inconsistent = sx * sx + sy * sy > 0.01 * (f_sq + bx * bx + by * by) + 0.5
    du_y, du_x = np.gradient(fx)
    dv_y, dv_x = np.gradient(fy)
    grad_sq = du_x * du_x + du_y * du_y + dv_x * dv_x + dv_y * dv_y
    boundary = grad_sq > 0.01 * f_sq + 0.002
    return inconsistent | boundary


def magnitude(flow_ab: np.ndarray) -> np.ndarray:
    """Per-pixel flow length sqrt(dx^2 + dy^2), (H, W)."""
    import cv2

    return cv2.magnitude(*cv2.split(flow_ab))


def masked_channel_mean(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over pixels (where mask != 0) and channels of an (H, W, C<=4) image; 0.0 for an empty mask."""
    import cv2

    means = cv2.mean(image, mask=mask)
    return float(np.mean(means[:image.shape[2] if image.ndim == 3 else 1]))


def torchvision(what: str):
    """The torchvision package, which is optional (RAFT flow and VBench's dimensions use it), or one
    sentence naming `what` needs it."""
    try:
        import torchvision as tv
    except ImportError:
        raise ValueError(f"{what} needs torchvision, which is not installed: install the build made for torch "
                         f"{torch.__version__} (pip install torchvision, or pip install 'samg-video[vision]')."
                         ) from None
    return tv


def read_state_dict(path: str, what: str) -> dict:
    """A weights file's tensors, read as data only (`weights_only`: a pickle that would run code, or a
    TorchScript archive, is refused), or one sentence naming the file and what it should be."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        kind = "it holds more than tensors" if isinstance(err, pickle.UnpicklingError) else \
            (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ValueError(f"{path} is not {what} ({kind}); nothing in it was run.") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} is not {what} (no state dict of tensors).")
    return state


@lru_cache(maxsize=1)
def _raft(weights: str):
    model = torchvision("RAFT optical flow").models.optical_flow.raft_large(weights=None)
    try:
        model.load_state_dict(read_state_dict(weights, "torchvision's RAFT-large weights file"))
    except RuntimeError as err:  # tensors of another network
        first = str(err).strip().splitlines()[0][:160]
        raise ValueError(f"{weights} is not torchvision's RAFT-large weights file ({first}).") from None
    return model.eval()


def raft_flow(a: np.ndarray, b: np.ndarray, weights: str | None) -> np.ndarray:
    """torchvision RAFT-large on grey frames (repeated to RGB); needs a local weights file."""
    if not weights:
        raise ValueError("The RAFT backend needs weights: pass raft_weights=/path/raft_large_C_T_SKHT_V2-ff5fadd5.pth "
                         "(torchvision's Raft_Large_Weights file); samg-video never downloads.")
    h, w = a.shape
    pad_h, pad_w = (-h) % 8, (-w) % 8
    to_t = lambda g: (torch.from_numpy(np.pad(g, ((0, pad_h), (0, pad_w)), mode="edge")).float()
                      .div(127.5).sub(1)[None, None].repeat(1, 3, 1, 1))
    with torch.no_grad():
        out = _raft(weights)(to_t(a), to_t(b))[-1][0]
    return out.permute(1, 2, 0).numpy()[:h, :w].astype(np.float32)


# --- torch: float maps on their own device ---------------------------------------------------


def warp_torch(image: torch.Tensor, flow_ab: torch.Tensor) -> torch.Tensor:
    """`warp` in torch: image (N, C, H, W) sampled at x + flow_ab(x), flow_ab (N, 2, H, W) in pixels
    as (dx, dy); bilinear, border replicated (pixel centres at integer coordinates, as cv2.remap)."""
    h, w = flow_ab.shape[-2:]
    ys = torch.arange(h, device=flow_ab.device, dtype=flow_ab.dtype)
    xs = torch.arange(w, device=flow_ab.device, dtype=flow_ab.dtype)
    x = xs.view(1, 1, w) + flow_ab[:, 0]
    y = ys.view(1, h, 1) + flow_ab[:, 1]
    grid = torch.stack((x * (2 / max(w - 1, 1)) - 1, y * (2 / max(h - 1, 1)) - 1), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def gaussian_kernel(sigma: float, device=None, truncate: float = 3.0) -> torch.Tensor:
    """The project's one Gaussian: normalised, float64, shape (2r + 1,), radius r = max(1, ceil(truncate
    sigma)) (scipy.ndimage's `truncate`); k_i = exp(-i^2 / (2 sigma^2)) / sum_j exp(-j^2 / (2 sigma^2)),
    i = -r..r. The scale field's smoothing keeps 3 sigma; the flow's window 2 sigma (`_blur`)."""
    radius = max(1, math.ceil(truncate * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of x (N, C, H, W), `gaussian_kernel` truncated at 2 sigma (the Lucas-Kanade
    window: a local neighbourhood), replicate borders."""
    k = gaussian_kernel(sigma, x.device, truncate=2.0).to(x.dtype)
    r = (len(k) - 1) // 2
    k = k.repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(-1, 1, 1, 2 * r + 1), groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(-1, 1, 2 * r + 1, 1), groups=x.shape[1])


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of x (N, 1, H, W) along W and H, replicate borders."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2, (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Each map of x (N, 1, H, W) to zero mean and unit deviation (a constant map to zeros)."""
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    return x / x.square().mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-6)


def flow_torch(a: torch.Tensor, b: torch.Tensor, *, window: float = 1.5, iterations: int = 3,
               min_size: int = 8, damping: float = 1e-2) -> torch.Tensor:
    """Dense flow from maps a to maps b, both (N, H, W) float: (N, 2, H, W) in pixels, (dx, dy),
    so that `warp_torch(b, flow) ~= a`.

    Pyramidal Lucas-Kanade on maps standardised per map (a change of gain is not motion): from
    the coarsest level (halving while the short side stays >= `min_size`) to full size, the
    flow is upsampled (x2) and refined `iterations` times by the windowed least-squares step

        [Sxx + l, Sxy; Sxy, Syy + l] d = -[Sxt, Syt],   S.. = G_window * (I. I.),  l = damping * mean(Sxx + Syy)

    with I_x, I_y the mean gradient of a and the warped b and I_t = warp(b, flow) - a. The
    damping l sends the flow to 0 where a map is flat. All pairs and levels run as batched
    torch ops on the maps' device; nothing leaves it.
    """
    a = _standardise(a.float()[:, None])
    b = _standardise(b.float()[:, None])
    pyramid = [(a, b)]
    while min(pyramid[-1][0].shape[-2:]) >= 2 * min_size:
        pa, pb = pyramid[-1]
        pyramid.append((F.avg_pool2d(pa, 2, ceil_mode=True), F.avg_pool2d(pb, 2, ceil_mode=True)))
    flow_ab = None
    for la, lb in reversed(pyramid):
        h, w = la.shape[-2:]
        if flow_ab is None:
            flow_ab = la.new_zeros(la.shape[0], 2, h, w)
        else:
            flow_ab = 2 * F.interpolate(flow_ab, size=(h, w), mode="bilinear", align_corners=False)
        gax, gay = _gradients(la)
        for _ in range(iterations):
            bw = warp_torch(lb, flow_ab)
            gbx, gby = _gradients(bw)
            ix, iy, it = (gax + gbx) / 2, (gay + gby) / 2, bw - la
            products = torch.cat((ix * ix, ix * iy, iy * iy, ix * it, iy * it), 1)
            sxx, sxy, syy, sxt, syt = _blur(products, window).unbind(1)
            lam = damping * (sxx + syy).mean(dim=(-2, -1), keepdim=True)
            sxx, syy = sxx + lam, syy + lam
            det = sxx * syy - sxy * sxy
            du = -(syy * sxt - sxy * syt) / det
            dv = -(sxx * syt - sxy * sxt) / det
            flow_ab = flow_ab + torch.stack((du, dv), 1)
    return flow_ab
