"""Layout adapters: every method computes in the canonical `B C F H W` layout.

`BFCHW` (CogVideoX) is a permuted view; `BCHW` (images) gains a frame axis of size 1.
The conversions are views, never copies, so a result computed on the canonical view
comes back in the caller's memory layout.
"""

from __future__ import annotations

import torch

LAYOUTS = ("BCFHW", "BFCHW", "BCHW")


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}.")


def to_canonical(x: torch.Tensor, layout: str) -> torch.Tensor:
    """View of `x` in `B C F H W`."""
    check_layout(layout)
    if x.ndim != len(layout):
        raise ValueError(f"Layout {layout} expects {len(layout)} dims, got a tensor of shape {tuple(x.shape)}.")
    if layout == "BFCHW":
        return x.permute(0, 2, 1, 3, 4)
    if layout == "BCHW":
        return x.unsqueeze(2)
    return x


def from_canonical(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Inverse of `to_canonical`; also maps a field `(B, 1, F, H, W)` to the layout."""
    check_layout(layout)
    if layout == "BFCHW":
        return x.permute(0, 2, 1, 3, 4)
    if layout == "BCHW":
        return x.squeeze(2)
    return x
