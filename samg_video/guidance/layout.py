"""Layout adapters: every method computes in the canonical `B C F H W` layout.

`BFCHW` (CogVideoX) and `BFHWC` (channels last: Kandinsky 5) are permuted views; `BCHW`
(images) gains a frame axis of size 1.
The conversions are views, never copies, so a result computed on the canonical view
comes back in the caller's memory layout.
"""

from __future__ import annotations

from ..lazy import lazy

torch = lazy("torch")  # imported on first use: checks of what was typed need no torch

LAYOUTS = ("BCFHW", "BFCHW", "BFHWC", "BCHW")


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
    if layout == "BFHWC":
        return x.permute(0, 4, 1, 2, 3)
    if layout == "BCHW":
        return x.unsqueeze(2)
    return x


def from_canonical(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Inverse of `to_canonical`; also maps a field `(B, 1, F, H, W)` to the layout."""
    check_layout(layout)
    if layout == "BFCHW":
        return x.permute(0, 2, 1, 3, 4)
    if layout == "BFHWC":
        return x.permute(0, 2, 3, 4, 1)
    if layout == "BCHW":
        return x.squeeze(2)
    return x


def tokens_to_canonical(tokens: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Packed tokens (B, F*H*W, C) in (frame, row, column) order (LTX-Video) -> view (B, C, F, H, W)."""
    b, n, c = tokens.shape
    if grid[0] * grid[1] * grid[2] != n:
        raise ValueError(f"A latent grid of {tuple(grid)} holds {grid[0] * grid[1] * grid[2]} tokens, "
                         f"but the predictions have {n}; pass the latent (frames, height, width) of this call.")
    return tokens.view(b, *grid, c).permute(0, 4, 1, 2, 3)


def canonical_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> packed tokens (B, F*H*W, C); the inverse of `tokens_to_canonical`."""
    return x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1, x.shape[1])


def field_layout(layout: str) -> str:
    """The layout a method computes in (and reports its scale field in) for predictions in
    `layout`: packed tokens are unpacked to BCFHW, the others are kept."""
    return "BCFHW" if layout == "tokens" else layout


def guide(method, pred_uncond: torch.Tensor, pred_cond: torch.Tensor, layout: str,
          grid: tuple[int, int, int] | None = None, **kwargs) -> torch.Tensor:
    """`method(pred_uncond, pred_cond, layout=..., **kwargs)` for predictions in any layout, packed
    tokens included: (B, F*H*W, C) are viewed as (B, C, F, H, W) on `grid` (F, H, W), guided,
    and packed again. The one place the hook and the modular guider convert layouts."""
    if layout != "tokens":
        return method(pred_uncond, pred_cond, layout=layout, **kwargs)
    if grid is None:
        raise ValueError("Packed-token predictions need their latent grid (frames, height, width).")
    u, c = (tokens_to_canonical(x, grid) for x in (pred_uncond, pred_cond))
    if kwargs.get("pred_perturbed") is not None:
        kwargs = {**kwargs, "pred_perturbed": tokens_to_canonical(kwargs["pred_perturbed"], grid)}
    if kwargs.get("generated") is not None:  # (B, N) per token -> (B, 1, F, H, W)
        kwargs = {**kwargs, "generated": tokens_to_canonical(kwargs["generated"][..., None].float(), grid) > 0.5}
    return canonical_to_tokens(method(u, c, layout="BCFHW", **kwargs))
