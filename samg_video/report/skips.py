"""The report's section on skip policies (`guidance.skip`): for each method run under a policy,
against the same method computing every unconditional pass on the same prompts and seeds:

- its denoiser calls per clip, mean and range (a policy that decides per clip spends a
  different number on each) and their ratio to the full-call method's;
- non-inferiority on each metric the sweep gives a margin (`margins`, written before the run):
  with d_i = x_i(policy) - x_i(full) and (mean, half) its 95 % t interval, the row keeps the
  method's quality on a metric where higher is better when mean - half >= -margin, where
  lower is better when mean + half <= margin (percentages in points);
- its pixels against the full-call clip: PSNR = 10 log10(255^2 / MSE) over the clip's uint8
  frames (the frames the sweep kept with `keep_frames`; videos are compressed), median and
  worst over the pairs;
- a figure of a few clips' plans: the policy's signal per step (`skip_signal`), computed steps
  filled, reused steps open, the policy's threshold dashed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import catalogue
from ..atomic import atomic_path
from ..manifest import load_frames
from .stats import SMALL_N, by_method, number
from .tables import Table

KNOB = {"adaptive": "threshold", "error": "tolerance"}  # the setting a policy's signal is compared with


def skipped(table: dict[str, dict]) -> list[str]:
    """The methods of the table that run under a skip policy."""
    return [name for name, r in table.items() if r["config"].get("skip")]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """10 log10(255^2 / mean((a - b)^2)) of two uint8 clips (F, H, W, 3); inf when they are equal."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def pixel_agreement(run: Path, rows: list[dict], name: str, base: str) -> tuple[int, float, float] | None:
    """(pairs, median PSNR, worst PSNR) of `name`'s clips against `base`'s on the same prompt and seed,
    over the pairs whose frames were both kept; None without any."""
    groups = by_method(rows)
    full = {(r["prompt"], r["seed"]): r["id"] for r in groups.get(base, []) if "error" not in r}
    values = []
    for r in groups.get(name, []):
        other = full.get((r["prompt"], r["seed"]))
        if "error" in r or other is None:
            continue
        a, b = load_frames(run, r["id"]), load_frames(run, other)
        if a is not None and b is not None and a.shape == b.shape:
            values.append(psnr(a, b))
    if not values:
        return None
    return len(values), float(np.median(values)), float(min(values))


def calls_of(rows: list[dict], name: str) -> list[float]:
    return [number(r.get("denoiser_calls")) for r in by_method(rows).get(name, []) if "error" not in r
            and not math.isnan(number(r.get("denoiser_calls")))]


def inside(entry: tuple[float, float], key: str, margin: float) -> bool | None:
    """Whether the paired interval (mean, half) excludes a loss beyond `margin` (module docstring);
    None when the interval is undefined (n < 2)."""
    scale = 100 if key in catalogue.PERCENT else 1
    mean, half = entry[0] * scale, entry[1] * scale
    if math.isnan(half):
        return None
    if catalogue.column(key).better == "higher":
        return mean - half >= -margin
    return mean + half <= margin


def skip_summary(run: Path, rows: list[dict], table: dict, options: dict, margins: dict) -> dict[str, dict]:
    """Per method under a policy (with a base in `options`): base, n, calls (mean, min, max, ratio to
    the base), each margin's (mean, half, inside), PSNR (pairs, median, worst) and `keeps` (every
    margin inside, None without margins)."""
    out = {}
    for name in skipped(table):
        entry = options.get(name)
        if entry is None:
            continue
        base = entry["base"]
        calls, full = calls_of(rows, name), calls_of(rows, base)
        summary = {"base": base, "n": entry["n"]}
        if calls and full:
            summary["calls"] = (float(np.mean(calls)), min(calls), max(calls), float(np.mean(calls) / np.mean(full)))
        checks = {}
        for key, margin in margins.items():
            if key in entry:
                checks[key] = (*entry[key], inside(entry[key], key, float(margin)))
        summary["margins"] = checks
        summary["keeps"] = None if not checks else all(c[2] is True for c in checks.values())
        summary["psnr"] = pixel_agreement(run, rows, name, base)
        out[name] = summary
    return out


def skip_table(summary: dict[str, dict], margins: dict) -> Table:
    """One row per method under a policy: the module docstring's columns."""
    keys = list(margins)
    head = ["method", "against", "n", "calls / clip (range)", "x full calls"]
    head += [f"{catalogue.header(k)} ({'pts' if k in catalogue.PERCENT else 'diff.'}; margin {margins[k]:g})"
             for k in keys]
    head += ["PSNR median (dB)", "PSNR worst (dB)", "within every margin"]
    body = []
    for name, s in summary.items():
        mean, low, high, ratio = s.get("calls", (math.nan,) * 4)
        cells = [name, s["base"], f"{s['n']}{' (few)' if s['n'] < SMALL_N else ''}", f"{mean:.1f} ({low:g}-{high:g})",
                 f"{ratio:.2f}"]
        for k in keys:
            if k not in s["margins"]:
                cells.append("n/a")
                continue
            m, h, ok = s["margins"][k]
            scale, fmt = (100, ".1f") if k in catalogue.PERCENT else (1, ".4f")
            word = {True: "inside", False: "OUTSIDE", None: "n < 2"}[ok]
            cells.append(f"{m * scale:+{fmt}} ± {h * scale:{fmt}} {word}")
        pixels = s.get("psnr")
        cells += ["n/a", "n/a"] if pixels is None else [db(pixels[1]), db(pixels[2])]
        cells.append({True: "yes", False: "no", None: "no margins"}[s["keeps"]])
        body.append(cells)
    tips = ["the method and its skip policy", "the same method computing every unconditional pass", "pairs",
            "denoiser evaluations per clip: mean (fewest-most over clips)", "calls relative to the full-call method"]
    tips += [f"paired difference to the full-call method ({catalogue.column(k).described()}); inside: the 95 % "
             f"interval excludes a loss beyond {margins[k]:g}" for k in keys]
    tips += ["PSNR of the clip's frames against its full-call clip: the median over pairs", "the lowest PSNR",
             "inside every margin"]
    return Table(head, body, tips=tips)


def db(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.1f}"


def plan_figure(rows: list[dict], table: dict, out: Path, clips: int = 3) -> Path | None:
    """skip_plans.png: for each method whose policy records a signal, the first `clips` clips (by
    prompt and seed): signal per step (log scale), computed steps filled, reused open, steps decided
    without a signal (always computed) as ticks at the bottom, the policy's threshold dashed. None
    when no row has a signal."""
    groups = by_method(rows)
    panels = []
    for name in skipped(table):
        traced = sorted((r for r in groups.get(name, []) if r.get("plan") and any(
            isinstance(v, (int, float)) and v > 0 for v in r.get("skip_signal") or [])),
                        key=lambda r: (r["prompt"], r["seed"]))[:clips]
        if traced:
            panels.append((name, table[name]["config"]["skip"], traced))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    lines = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.0 * lines), squeeze=False, sharex=True)
    colours = plt.get_cmap("tab10").colors
    for ax, (name, policy, traced) in zip(axes.flat, panels):
        for i, r in enumerate(traced):
            steps = np.arange(len(r["skip_signal"]))
            signal = np.array([np.nan if v is None or v <= 0 else v for v in r["skip_signal"]], dtype=float)
            computed = np.array([c == "C" for c in r["plan"]])
            colour = colours[i % len(colours)]
            ax.plot(steps, signal, color=colour, lw=1, label=f"{r['prompt'][:28]}, seed {r['seed']}")
            known = ~np.isnan(signal)
            ax.scatter(steps[computed & known], signal[computed & known], color=colour, s=14, zorder=3)
            ax.scatter(steps[~computed & known], signal[~computed & known], facecolors="none", edgecolors=colour,
                       s=14, zorder=3)
            ax.scatter(steps[~known], np.full((~known).sum(), 0.03 + 0.04 * i), marker="|", color=colour, s=30,
                       transform=ax.get_xaxis_transform())  # a step decided without a signal (computed)
        knob = KNOB.get(policy.get("policy"))
        if knob and knob in policy:
            ax.axhline(policy[knob], color="gray", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlim(-0.5, max(len(r["plan"]) for r in traced) - 0.5)
        ax.set_title(name, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5, loc="lower right")
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("signal (filled: computed)")
    path = out / "skip_plans.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
