"""Scale-field diagnostics against fields and videos whose answers are known by construction."""

import numpy as np
import pytest

from samg_video.metrics.field import field_diagnostics, latent_frame_index


def textured_video(frames=5, size=48, shift=2, seed=0):
    """A random texture translating `shift` px right per frame (known flow), and the texture."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (12, 30, 3), dtype=np.uint8), (120, size), interpolation=cv2.INTER_CUBIC)
    return np.stack([np.roll(base, shift * t, axis=1)[:, 20:20 + size] for t in range(frames)]), base


def test_constant_field_is_still_and_smooth():
    clip, _ = textured_video()
    out = field_diagnostics([np.full((5, 12, 12), 4.0)] * 3, clip)
    assert out["field_mean"] == 4.0 and out["field_spread"] == 0.0
    assert out["field_change"] == 0.0 and out["field_roughness"] == 0.0
    assert out["field_change_warped"] == pytest.approx(0.0, abs=1e-6)


def test_a_field_that_moves_with_the_video_changes_only_before_warping():
    """A field pattern carried by the same translation as the video: large raw change, and almost
    none once the field is warped along the clip's own flow."""
    clip, base = textured_video()
    pattern = base[..., 0].astype(np.float32) / 255 * 6 + 2  # values in [2, 8], moving with the texture
    fields = np.stack([np.roll(pattern, 2 * t, axis=1)[:, 20:68] for t in range(5)])
    out = field_diagnostics([fields], clip)
    assert out["field_change"] > 0.2
    assert out["field_change_warped"] < out["field_change"] / 4


def test_roughness_of_a_checkerboard_and_the_object_split():
    clip = np.zeros((2, 16, 16, 3), np.uint8)  # the field (8 x 8 latent grid) is resized to the clip
    board = (np.indices((8, 8)).sum(0) % 2).astype(np.float32) * 3 + 1  # 1 and 4 alternating
    out = field_diagnostics([np.stack([board, board])], clip)
    assert out["field_roughness"] == pytest.approx(3.0)
    masks = np.zeros((2, 16, 16), bool)
    masks[:, :, :8] = True  # the left half is the object
    field = np.where(np.arange(8) < 4, 2.0, 6.0)[None, :].repeat(8, 0).astype(np.float32)
    split = field_diagnostics([np.stack([field, field])], clip, masks)
    assert split["field_object"] == 2.0 and split["field_background"] == 6.0


def test_latent_frames_map_to_evenly_spread_video_frames():
    assert latent_frame_index(13, 49).tolist() == list(range(0, 49, 4))  # CogVideoX: 4x temporal compression
    assert latent_frame_index(1, 1).tolist() == [0]


def test_motion_compensated_smoothing_keeps_a_moving_field_intact():
    """A field blob translating 2 px per frame: smoothing along the field's own flow (temporal_mode
    "motion") keeps its shape where fixed-position smoothing blurs it along the path; a static
    field is smoothed as by the fixed kernel; SAMG with equal scales stays CFG exactly."""
    import torch

    from samg_video import guidance
    from samg_video.guidance.smoothing import smooth_along, smooth_along_motion

    f, size = 8, 32
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    field = torch.stack([torch.exp(-((xx - 8 - 2 * t) ** 2 + (yy - 16) ** 2) / 8) for t in range(f)])[None, None]
    moved = smooth_along_motion(field, 1.0)
    fixed = smooth_along(field, "f", 1.0)
    inner = (slice(None), slice(None), slice(1, -1))  # the ends replicate their own frame
    moved_err, fixed_err = ((m - field)[inner].abs().max() for m in (moved, fixed))
    assert fixed_err > 0.25 and moved_err < fixed_err / 3, (moved_err, fixed_err)
    ramp = torch.linspace(0.5, 1, f)[None, None, :, None, None]
    still = field[:, :, :1].expand(1, 1, f, size, size).contiguous() * ramp
    assert torch.allclose(smooth_along_motion(still, 1.0), smooth_along(still, "f", 1.0), atol=0.03)
    u, c = torch.randn(1, 4, f, 16, 16), torch.randn(1, 4, f, 16, 16)
    samg = guidance.create("samg", w_min=3, w_max=3, temporal_sigma=1, temporal_mode="motion")
    assert torch.equal(samg(u, c, step=0, num_steps=4), guidance.create("cfg", scale=3)(u, c, step=0, num_steps=4))
    with pytest.raises(ValueError, match="temporal_mode"):
        guidance.create("samg", temporal_mode="flow")


def test_motion_smoothing_runs_on_the_fields_device():
    """temporal_mode="motion" is torch from flow to warp: on the meta device (no data, so any host
    copy, .item() or numpy conversion raises) SAMG's scale field is computed all the same, and
    the flow follows a known translation to a tenth of a pixel."""
    import torch

    from samg_video import guidance
    from samg_video.flow import flow_torch, warp_torch

    samg = guidance.create("samg", w_min=2, w_max=8, temporal_sigma=1, temporal_mode="motion", spatial_sigma=1)
    u, c = (torch.empty(2, 4, 8, 16, 16, device="meta") for _ in range(2))
    assert samg.scale_field(u, c).shape == (2, 1, 8, 16, 16)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = lambda x0, y0: torch.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 8)
    a, b = blob(12, 16)[None], blob(15, 14.5)[None]
    flow = flow_torch(a, b)
    inside = a[0] > 0.3
    assert abs(flow[0, 0][inside].mean() - 3) < 0.1 and abs(flow[0, 1][inside].mean() + 1.5) < 0.1
    assert (warp_torch(b[:, None], flow)[0, 0] - a[0]).abs().max() < 0.05


def test_renormalize_keeps_the_smoothed_field_range():
    """Smoothing a normalised energy compresses its range (a peak drops, its scale rises); with
    renormalize the smoothed field is mapped back to [0, 1] per clip, so W spans [w_min, w_max]
    again and only its shape changed; equal scales stay CFG exactly."""
    import torch

    from samg_video import guidance
    from samg_video.guidance.samg import normalize_energy
    from samg_video.guidance.smoothing import smooth_field

    torch.manual_seed(0)
    u, c = torch.randn(2, 4, 8, 16, 16), torch.randn(2, 4, 8, 16, 16)
    plain = guidance.create("samg", w_min=2, w_max=8, temporal_sigma=2, spatial_sigma=1)
    kept = guidance.create("samg", w_min=2, w_max=8, temporal_sigma=2, spatial_sigma=1, renormalize=True)
    w_plain, w_kept = plain.scale_field(u, c), kept.scale_field(u, c)
    assert w_plain.amin() > 2.5 and w_plain.amax() < 7.5  # smoothing pulled both ends inwards
    for w in w_kept:  # per clip: the full range again
        assert w.amin().item() == pytest.approx(2, abs=1e-5) and w.amax().item() == pytest.approx(8, abs=1e-5)
    e_n = normalize_energy((c - u).square().mean(1, keepdim=True), "clip", (0.0, 1.0))
    smoothed = smooth_field(e_n, 1, 2)
    lo, hi = smoothed.amin(dim=(1, 2, 3, 4), keepdim=True), smoothed.amax(dim=(1, 2, 3, 4), keepdim=True)
    assert torch.allclose(w_kept, 8 - 6 * (smoothed - lo) / (hi - lo), atol=1e-4)  # an affine map of the same shape
    equal = guidance.create("samg", w_min=4, w_max=4, temporal_sigma=2, renormalize=True)
    assert torch.equal(equal(u, c, step=0, num_steps=4), guidance.create("cfg", scale=4)(u, c, step=0, num_steps=4))
