"""The catalogue of every column a record can hold: what it is called, its unit, which way is
better, where it shows, and which metric computes it. Evaluation, the command line, the report
and the ComfyUI nodes read it; nothing else lists metric names, headers or directions.

    from samg_video.catalogue import COLUMNS, column, METRICS
    column("warp_error").better          # "lower"
    [m.name for m in METRICS if m.default]   # what metrics.compute runs when not told

Two kinds of entry:

- `Metric`: a name `metrics.compute` accepts, whether it runs by default, what it needs
  (CLIP weights, or one of VBench's models) and whether it is one of VBench's own dimensions;
- `Column`: a key of a record (a metric can write several: `flicker` writes `flicker` and
  `flicker_compensated`), with its header, unit, direction and the report table it belongs to.

This module imports nothing, so the command line can build its choices before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A metric `metrics.compute` runs by name.

    needs: None, "clip_model" (CLIP weights and the prompt), or the VBench model it needs
    ("dino" | "clip" | "raft"); vbench: one of VBench's own dimensions (its number, not a kin)."""

    name: str
    default: bool = False
    needs: str | None = None
    vbench: bool = False


@dataclass(frozen=True)
class Column:
    """One key of a record.

    table: the report table it shows in ("alignment" | "quality" | "cost" | "field"; "" for
    none); better: "higher" | "lower" | None (no best); percent: a fraction shown as a
    percentage (differences in points); metric: the metric that writes it (None: the scorer,
    the field diagnostics or the generator); paired: in the report's paired differences; plot:
    the trade-off plot's axis label (None: no plot); brief: in the short tables (the command
    line's `compare`, the report's table of every item); short: its command-line header."""

    key: str
    header: str
    table: str = ""
    better: str | None = None
    percent: bool = False
    unit: str = ""
    about: str = ""
    metric: str | None = None
    paired: bool = False
    plot: str | None = None
    brief: bool = False
    short: str = ""

    @property
    def digits(self) -> int:
        """Decimals a value of this column is shown with: counts 1, seconds 2, other numbers 4."""
        return {"count": 1, "s": 2}.get(self.unit, 4)

    @property
    def cli(self) -> str:
        """The command line's column header (at most 12 characters)."""
        return (self.short or self.key)[:12]

    def described(self) -> str:
        """'about; unit; higher is better' (what a tooltip says)."""
        way = {"higher": "higher is better", "lower": "lower is better"}.get(self.better or "", "")
        return "; ".join(p for p in (self.about, self.unit, way) if p)


METRICS = (
    Metric("flicker", default=True),
    Metric("warp_error", default=True),
    Metric("motion", default=True),
    Metric("saturation", default=True),
    Metric("lpips_temporal", default=True),
    Metric("clip_score", needs="clip_model"),
    Metric("subject_consistency", needs="dino", vbench=True),
    Metric("background_consistency", needs="clip", vbench=True),
    Metric("dynamic_degree", needs="raft", vbench=True),
    Metric("interpolation_smoothness", needs="raft"),  # VBench's protocol with another interpolator
)

_ACC = dict(table="alignment", better="higher", percent=True)
COLUMNS = (
    # alignment: CLIP score, or the bundled world's exact scorer
    Column("clip_score", "CLIP score", "alignment", "higher", unit="0-100", metric="clip_score", paired=True,
           brief=True, about="mean CLIPScore (100 max(cos, 0)) of the frames against the prompt"),
    Column("prompt_correct", "prompt acc", **_ACC, paired=True, about="clips that meet their whole prompt"),
    Column("single", "1-object acc", **_ACC, about="prompt accuracy on one-object prompts"),
    Column("double", "2-object acc", **_ACC, about="prompt accuracy on two-object prompts"),
    Column("prompt_color", "colour", **_ACC, about="objects of the prompt's colour"),
    Column("prompt_shape", "shape", **_ACC, about="objects of the prompt's shape"),
    Column("prompt_motion", "motion acc", **_ACC, about="objects moving as the prompt says"),
    Column("object_1_correct", "object 1 acc", **_ACC, about="the first object of a two-object prompt right"),
    Column("object_2_correct", "object 2 acc", **_ACC, about="the second object of a two-object prompt right"),
    # quality
    Column("flicker", "flicker", "quality", "higher", unit="0-1, 1 = perfectly steady", metric="flicker",
           paired=True, plot="flicker (higher = steadier)", brief=True,
           about="VBench temporal flickering (255 - mean |f_t - f_t+1|) / 255; counts motion as change"),
    Column("flicker_compensated", "flicker comp.", "quality", "higher", unit="0-1, 1 = steady", metric="flicker",
           paired=True, brief=True, short="flicker_comp",
           about="the same formula after motion compensation (optical flow)"),
    Column("warp_error", "warp error", "quality", "lower", unit="pixels in [0, 1]", metric="warp_error",
           paired=True, plot="warp error", brief=True,
           about="warping error (Lai et al. 2018): mean squared RGB difference to the next frame warped back"),
    Column("lpips_temporal", "LPIPS temporal", "quality", "lower", unit="0-1", metric="lpips_temporal",
           paired=True, plot="LPIPS temporal", brief=True, short="lpips_temp", about="LPIPS between adjacent frames"),
    Column("tlp", "tLP", better="lower", metric="lpips_temporal",
           about="TecoGAN's tLP: |LPIPS of adjacent frames - the reference's|"),
    Column("out_of_range", "out of range", "quality", "lower", percent=True, paired=True,
           plot="latents out of range", brief=True, about="share of the sampler's raw output outside [-1.05, 1.05]"),
    Column("clipped_high", "clipped", "quality", "lower", percent=True, metric="saturation", paired=True,
           plot="clipped pixels", brief=True, about="pixels with a channel at 255"),
    Column("clipped_low", "clipped low", metric="saturation", percent=True, about="pixels with a channel at 0"),
    Column("saturation", "saturation", "quality", unit="0-1", metric="saturation", brief=True,
           about="mean HSV saturation"),
    Column("oversaturated", "oversaturated", metric="saturation", percent=True,
           about="pixels with HSV saturation above 0.95"),
    Column("motion", "motion px/f", "quality", unit="pixels per frame", metric="motion", paired=True, brief=True,
           about="mean optical-flow length: how much moves (a frozen clip scores 0 and is perfectly steady)"),
    Column("subject_consistency", "subject consistency", "quality", "higher", unit="0-1",
           metric="subject_consistency", paired=True, about="VBench: DINO features of each frame against the "
                                                            "previous and the first"),
    Column("background_consistency", "background consistency", "quality", "higher", unit="0-1",
           metric="background_consistency", paired=True, about="VBench: the same with CLIP image features"),
    Column("dynamic_degree", "dynamic", "quality", percent=True, metric="dynamic_degree", paired=True,
           about="VBench: clips whose RAFT flow passes VBench's motion threshold"),
    Column("interpolation_smoothness", "interpolation smoothness", better="higher", unit="0-1",
           metric="interpolation_smoothness",
           about="VBench's motion-smoothness protocol with a RAFT interpolator (not a VBench number)"),
    # cost
    Column("denoiser_calls", "denoiser calls / clip", "cost", "lower", unit="count", paired=True, brief=True,
           short="calls", about="denoiser evaluations per clip, all steps"),
    Column("skipped_steps", "steps without uncond", "cost", unit="count", about="steps without an unconditional pass"),
    Column("seconds", "seconds / clip", "cost", "lower", unit="s", paired=True, about="wall time per clip"),
    # the scale field (metrics.field)
    Column("field_mean", "field mean", "field", about="mean of W"),
    Column("field_spread", "field spread", "field", about="standard deviation of W"),
    Column("field_change", "field change", "field", paired=True, brief=True,
           about="mean |W_t+1 - W_t| over consecutive latent frames"),
    Column("field_change_warped", "field change (warped)", "field", paired=True, brief=True, short="field_warped",
           about="the field's frame-to-frame change along the clip's optical flow"),
    Column("field_roughness", "field roughness", "field", about="mean |W| difference of neighbouring cells"),
    Column("field_object", "field object", "field", about="mean W on object pixels"),
    Column("field_background", "field background", "field", about="mean W on background pixels"),
    Column("field_object_1", "field object 1", "field", about="mean W on the first object"),
    Column("field_object_2", "field object 2", "field", about="mean W on the second object"),
)
TABLES = (("Alignment", "alignment"), ("Quality", "quality"), ("Cost", "cost"), ("Scale field", "field"))

BY_KEY = {c.key: c for c in COLUMNS}
BY_NAME = {m.name: m for m in METRICS}
NAMES = tuple(m.name for m in METRICS)
DEFAULT = tuple(m.name for m in METRICS if m.default)
VBENCH = tuple(m.name for m in METRICS if m.vbench)
NEEDS_MODEL = tuple(m.name for m in METRICS if m.needs not in (None, "clip_model"))  # VBench's models
MODEL_OF = {m.name: m.needs for m in METRICS if m.name in NEEDS_MODEL}
HIGHER = frozenset(c.key for c in COLUMNS if c.better == "higher")
LOWER = frozenset(c.key for c in COLUMNS if c.better == "lower")
PERCENT = frozenset(c.key for c in COLUMNS if c.percent)
PAIRED = tuple(c.key for c in COLUMNS if c.paired)
PLOTS = tuple((c.key, c.plot) for c in COLUMNS if c.plot)
BRIEF = tuple(c.key for c in COLUMNS if c.brief)
MEASURED = tuple(c.key for c in COLUMNS if c.metric)  # every column a metric writes, in catalogue order
SWITCHED = "lpips_temporal"  # the default metric with a switch of its own (slow: a network per frame pair)
CLIP_METRICS = tuple(m.name for m in METRICS if m.needs == "clip_model")


NODE_OUTPUTS = ("flicker", "flicker_compensated", "warp_error", "lpips_temporal", "motion")  # ComfyUI's metrics node
CAPTION = ("warp_error", "flicker")  # under each clip of the report's gallery
ALIGNMENT = ("clip_score", "prompt_correct")  # the trade-off plot's alignment axis: the first one measured


def chosen(lpips: bool = True, clip_model: bool = False) -> list[str]:
    """The metrics a measurement runs unless told: the default ones (LPIPS-temporal only when its switch
    is on), and those that need CLIP weights when a CLIP model is given."""
    names = [n for n in DEFAULT if lpips or n != SWITCHED]
    return names + list(CLIP_METRICS) if clip_model else names


def column(key: str) -> Column:
    """The catalogue entry of a record key (a key it does not list gets a plain column named by itself)."""
    return BY_KEY.get(key) or Column(key, key)


def header(key: str) -> str:
    return column(key).header


def in_table(table: str) -> list[Column]:
    """The columns of one report table, in catalogue order."""
    return [c for c in COLUMNS if c.table == table]
