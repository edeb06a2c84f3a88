"""Temporal and quality metrics with one entry point.

    from samg_video import metrics
    metrics.compute("clip.mp4")                       # every metric
    metrics.compute(frames, metrics=["flicker", "motion"], flow_backend="farneback")
    metrics.compute("clip.mp4", metrics=["clip_score"], prompt="a fox", clip_model="openai/clip-vit-base-patch32")

    models = vbench.load_models(vbench.model_paths(vbench.DIMENSIONS))   # VBench's own cached weights
    metrics.compute("clip.mp4", metrics=list(vbench.DIMENSIONS), vbench_models=models)

Frames stream through in chunks, decoded once for every metric; each consecutive pair's flows
are computed once and shared. Temporal metrics on a one-frame video are None, with the reason.
"""

from __future__ import annotations

from .. import catalogue
from . import vbench
from .base import FlowOptions, Metric, Pair
from .clip_score import CLIPScore
from .flicker import Flicker, vbench_flicker
from .lpips_temporal import LPIPSTemporal, tlp
from .motion import Motion
from .saturation import Saturation
from .warp_error import WarpError

METRICS = {cls.name: cls for cls in (Flicker, WarpError, LPIPSTemporal, Motion, Saturation, CLIPScore)}
# (the dimensions of VBench's models: metrics.vbench); each class's `name` is its catalogue name
DEFAULT = list(catalogue.DEFAULT)  # + clip_score when clip_model is given

__all__ = ["compute", "available", "METRICS", "Metric", "Pair", "FlowOptions", "vbench_flicker", "vbench"]


def available() -> list[str]:
    return list(catalogue.NAMES)


def _make(names, lpips_net: str, clip_model: str | None = None, prompt: str | None = None,
          vbench_models: dict | None = None, device: str = "cpu", fps: float | None = None) -> list[Metric]:
    unknown = [n for n in names if n not in catalogue.BY_NAME]
    if unknown:
        raise ValueError(f"Unknown metric {unknown[0]!r}; available: {', '.join(available())}.")
    needing = [n for n in names if n in catalogue.CLIP_METRICS]
    if needing and not clip_model:
        raise ValueError(f"{needing[0]} needs CLIP weights: pass clip_model (--clip-model DIR or a cached repo id).")
    dims = [n for n in names if n in catalogue.MODEL_OF]
    lacking = [n for n in dims if catalogue.MODEL_OF[n] not in (vbench_models or {})]
    if lacking:
        raise ValueError(f"{lacking[0]} needs its model: pass vbench_models={{{catalogue.MODEL_OF[lacking[0]]!r}: "
                         "...}} (metrics.vbench.load_models).")
    special = {LPIPSTemporal: lambda: LPIPSTemporal(lpips_net), CLIPScore: lambda: CLIPScore(clip_model, prompt)}
    made = [special.get(METRICS[n], METRICS[n])() for n in names if n in METRICS]
    return made + vbench.make(dims, vbench_models or {}, device, fps)


def resized(frame, size: tuple[int, int] | None):
    """A frame (H, W, 3) uint8 at `size` (width, height), by area averaging (exact for a
    nearest-neighbour upscale by an integer factor); unchanged when size is None or its own."""
    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    import cv2

    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)


def _stream(source, accumulators: list[Metric], options: FlowOptions, chunk: int, decoder: str = "ffmpeg",
            value_range=None, size: tuple[int, int] | None = None, max_frames: int | None = None,
            on_frames=None) -> tuple[int, tuple[int, int] | None]:
    """Feed every frame (at `size`, if given) and consecutive pair to the accumulators;
    returns the frame count and the (width, height) analysed. Frames of another size than the first
    (without `size`) are refused, not measured at the first size. Only the first `max_frames` frames
    are read (None: all); `on_frames(n)` hears each block's n frames (progress)."""
    from ..media import iter_frames

    previous, count, analysed = None, 0, None
    for block in iter_frames(source, chunk, decoder, value_range):
        for frame in block:
            frame = resized(frame, size)
            if analysed is not None and analysed != (frame.shape[1], frame.shape[0]):
                raise ValueError(f"frame {count} is {frame.shape[1]}x{frame.shape[0]} but the frames before it are "
                                 f"{analysed[0]}x{analysed[1]}: a clip's frames share one size (size=(W, H), or "
                                 "--size WxH, measures them all at one size).")
            analysed = (frame.shape[1], frame.shape[0])
            for m in accumulators:
                m.frame(frame)
            if previous is not None:
                pair = Pair(previous, frame, options)
                for m in accumulators:
                    m.pair(pair)
            previous, count = frame, count + 1
            if max_frames is not None and count >= max_frames:
                break
        if on_frames is not None:
            on_frames(len(block))
        if max_frames is not None and count >= max_frames:
            break
    return count, analysed


def compute(video, metrics: list[str] | None = None, reference=None, flow_backend: str = "dis",
            raft_weights: str | None = None, flow_downscale: int = 1, lpips_net: str = "alex",
            chunk: int = 32, decoder: str = "ffmpeg", clip_model: str | None = None, prompt: str | None = None,
            value_range: tuple[float, float] | None = None, size: tuple[int, int] | None = None,
            vbench_models: dict | None = None, device: str = "cpu", max_frames: int | None = None,
            on_frames=None) -> dict:
    """Metrics of one clip (array, tensor or path) as a flat dict; `reference` adds TecoGAN's tLP.

    Arrays are uint8 in [0, 255] or floats in [0, 1]; anything else is refused with the range
    found unless `value_range=(low, high)` says what the values mean (e.g. (-1, 1)).

    Files stream in chunks of at most `chunk` frames through `decoder` ("ffmpeg" or
    "decord", see `samg_video.media.iter_frames`). `clip_model` (a folder or cached repo id)
    with the clip's `prompt` adds `clip_score` to the default set.

    Pixel units (motion in px/frame, flow) are those of the analysed frames: the clip's own
    size, or `size=(width, height)` (e.g. a model's resolution for an upscaled file); the
    result's `resolution` says which ("WxH").

    `max_frames` measures the first frames only (the row's `frames_note` says so); `on_frames(n)`
    is called after each decoded block of n frames (a progress bar for long clips).

    VBench's temporal dimensions (`metrics.vbench`: subject_consistency, background_consistency,
    dynamic_degree) take their models from `vbench_models` (`vbench.load_models`), run on
    `device`, and see the same decoded frames as every other metric.
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics or catalogue.chosen(clip_model=bool(clip_model)))
    from ..media import frame_rate

    fps = frame_rate(video) if any(n == "dynamic_degree" for n in names) else None
    accumulators = _make(names, lpips_net, clip_model, prompt, vbench_models, device, fps)
    options = FlowOptions(flow_backend, raft_weights, flow_downscale)
    frames, analysed = _stream(video, accumulators, options, chunk, decoder, value_range, size, max_frames, on_frames)
    result: dict = {"frames": frames, "resolution": f"{analysed[0]}x{analysed[1]}" if analysed else None}
    if max_frames is not None and frames >= max_frames:
        result["frames_note"] = f"measured the first {frames} frames (max_frames)"
    for m in accumulators:
        result.update(m.result())
    if frames < 2:
        result["temporal_note"] = f"temporal metrics need at least 2 frames; this video has {frames}"
    if reference is not None:
        ref = LPIPSTemporal(lpips_net)
        _stream(reference, [ref], options, chunk, decoder, size=size, max_frames=max_frames)
        ours = next((m for m in accumulators if isinstance(m, LPIPSTemporal)), None)
        if ours is None:
            ours = LPIPSTemporal(lpips_net)
            _stream(video, [ours], options, chunk, decoder, value_range, size, max_frames)
        result["tlp"] = tlp(ours.distances(), ref.distances())
    return result
