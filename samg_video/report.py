"""`samg-video report RUN_DIR`: a sweep's results as markdown and a self-contained HTML page.

Per method: prompt accuracy (all, single- and two-object prompts), attribute
accuracies, artifact levels (pixels out of range, clipped highlights, saturation),
temporal numbers (flicker, warping error) with motion magnitude beside them; the
detail-artifact trade-off plots (accuracy against out-of-range pixels and against
warping error, CFG scales joined as a curve); every method paired against the best CFG
scale on the same prompts and seeds (mean difference with a 95 % interval); and frame
strips of one clip per method.
"""

from __future__ import annotations

import base64
import html
import io as _io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .sweep import read_manifest

COLUMNS = [("prompt_correct", "prompt acc"), ("single", "1-object acc"), ("double", "2-object acc"),
           ("prompt_color", "colour"), ("prompt_shape", "shape"), ("prompt_motion", "motion acc"),
           ("out_of_range", "out of range"), ("clipped_high", "clipped"), ("saturation", "saturation"),
           ("flicker", "flicker"), ("warp_error", "warp error"), ("motion", "motion px/f")]


def method_label(config: dict) -> str:
    c = dict(config)
    name = c.pop("method")
    if name == "samg":
        label = f"samg {c['w_min']:g}-{c['w_max']:g}"
        extras = [f"{k}={c[k]}" for k, default in (("normalize", "clip"), ("temporal_sigma", 0.0),
                                                    ("spatial_sigma", 0.0), ("step_ema", 0.0), ("bound", None))
                  if c.get(k) != default]
        return label + (" " + " ".join(extras) if extras else "")
    return f"{name} {c['scale']:g}" if "scale" in c else name


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Mean of each column per method label (failed items excluded, counted)."""
    groups = defaultdict(list)
    for r in rows:
        groups[method_label(r["method"])].append(r)
    table = {}
    for label, items in groups.items():
        ok = [r for r in items if "error" not in r]
        mean = lambda key, rs=ok: float(np.mean([float(r[key]) for r in rs])) if rs else float("nan")  # noqa: E731
        row = {key: mean(key) for key, _ in COLUMNS if key not in ("single", "double")}
        row["single"] = mean("prompt_correct", [r for r in ok if r.get("objects") == 1])
        row["double"] = mean("prompt_correct", [r for r in ok if r.get("objects") == 2])
        row.update(n=len(ok), failed=len(items) - len(ok), config=items[0]["method"])
        table[label] = row
    return table


PAIRED = [("prompt_correct", "prompt acc"), ("prompt_color", "colour"), ("prompt_shape", "shape"),
          ("prompt_motion", "motion acc"), ("out_of_range", "out of range"), ("warp_error", "warp error"),
          ("motion", "motion px/f")]


def best_cfg(table: dict[str, dict]) -> str | None:
    """The CFG row with the highest prompt accuracy (ties: the lower scale)."""
    cfg = [(-r["prompt_correct"], r["config"]["scale"], label) for label, r in table.items()
           if r["config"]["method"] == "cfg" and not np.isnan(r["prompt_correct"])]
    return min(cfg)[2] if cfg else None


def paired_differences(rows: list[dict], reference: str) -> dict[str, dict]:
    """Per method, mean difference to `reference` on the same (prompt, seed) items, with a 95 % interval.

    d_i = x_i(method) - x_i(reference) over the items both finished; reported as
    mean(d) and 1.96 * sd(d) / sqrt(n) (normal approximation of the paired mean).
    Pairing removes the prompt-to-prompt spread, so small real differences show.
    """
    by_method = defaultdict(dict)
    for r in rows:
        if "error" not in r:
            by_method[method_label(r["method"])][(r["prompt"], r["seed"])] = r
    ref = by_method.get(reference, {})
    out = {}
    for label, items in by_method.items():
        keys = sorted(set(items) & set(ref))
        entry = {"n": len(keys)}
        for key, _ in PAIRED:
            d = np.array([float(items[k][key]) - float(ref[k][key]) for k in keys
                          if items[k].get(key) is not None and ref[k].get(key) is not None])
            half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            entry[key] = (float(d.mean()) if len(d) else float("nan"), float(half))
        out[label] = entry
    return out


def paired_table(paired: dict[str, dict], reference: str) -> str:
    pct = {"prompt_correct", "prompt_color", "prompt_shape", "prompt_motion", "out_of_range"}
    lines = [f"Paired against **{reference}** (same prompts and seeds; mean difference +- 95 % interval):", "",
             "| method | n | " + " | ".join(name for _, name in PAIRED) + " |", "|---|---:|" + "---:|" * len(PAIRED)]
    for label, entry in paired.items():
        if label == reference:
            continue
        cells = [(f"{m * 100:+.1f} +- {h * 100:.1f}" if key in pct else f"{m:+.4f} +- {h:.4f}")
                 for key, _ in PAIRED for m, h in [entry[key]]]
        lines.append(f"| {label} | {entry['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(table: dict[str, dict]) -> str:
    head = "| method | n | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(COLUMNS)]
    for label, row in table.items():
        cells = []
        for key, _ in COLUMNS:
            value = row[key]
            cells.append("n/a" if np.isnan(value) else (f"{value:.1%}" if key in ("prompt_correct", "single", "double",
                                                                                    "prompt_color", "prompt_shape",
                                                                                    "prompt_motion", "out_of_range",
                                                                                    "clipped_high") else f"{value:.4f}"))
        lines.append(f"| {label} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _png(fig) -> str:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def tradeoff_plots(table: dict[str, dict]) -> dict[str, str]:
    """PNG (base64) scatter plots: accuracy against artifact level and against warping error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    for x_key, x_name in (("out_of_range", "pixels out of range"), ("warp_error", "warping error"),
                          ("flicker", "VBench flicker score (higher = steadier)")):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        cfg = sorted((r["config"]["scale"], r) for label, r in table.items() if r["config"]["method"] == "cfg")
        if cfg:
            ax.plot([r[x_key] for _, r in cfg], [r["prompt_correct"] for _, r in cfg], "o-", color="gray", label="CFG")
            for scale, r in cfg:
                ax.annotate(f"{scale:g}", (r[x_key], r["prompt_correct"]), fontsize=7, color="gray")
        for label, r in table.items():
            if r["config"]["method"] != "cfg":
                ax.plot(r[x_key], r["prompt_correct"], "s" if r["config"]["method"] == "samg" else "^", label=label)
        ax.set_xlabel(x_name)
        ax.set_ylabel("prompt accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
        plots[x_key] = _png(fig)
        plt.close(fig)
    return plots


def clip_strips(run_dir: Path, rows: list[dict], per_method: int = 1, scale: int = 3) -> dict[str, str]:
    """One PNG strip (all frames side by side) of the first clips of each method."""
    import imageio.v3 as iio

    from .io import upscale

    strips, seen = {}, defaultdict(int)
    for r in sorted(rows, key=lambda r: (r["prompt"], r["seed"])):
        label = method_label(r["method"])
        path = run_dir / "clips" / f"{r['id']}.npy"
        if "error" in r or seen[label] >= per_method or not path.is_file():
            continue
        clip = upscale(np.load(path), scale)
        strip = np.concatenate(list(clip), axis=1)
        strips[f"{label} | {r['prompt']} (seed {r['seed']})"] = base64.b64encode(
            iio.imwrite("<bytes>", strip, extension=".png")).decode()
        seen[label] += 1
    return strips


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write report.md (with PNG plots beside it) and report.html (everything inline)."""
    run = Path(run_dir)
    rows = read_manifest(run)
    if not rows:
        raise ValueError(f"{run} holds no sweep results (manifest.rank*.jsonl); run `samg-video sweep` first.")
    out = Path(out_dir) if out_dir else run
    out.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    plots = tradeoff_plots(table)
    strips = clip_strips(run, rows)
    failed = sum("error" in r for r in rows)
    reference = best_cfg(table)
    paired = paired_differences(rows, reference) if reference else {}
    comparison = paired_table(paired, reference) if reference else "No CFG rows to compare against."
    md = [f"# Sweep report: {run.name}", "", f"{len(rows)} items, {failed} failed.", "", markdown_table(table), "",
          comparison, ""]
    for key, data in plots.items():
        (out / f"tradeoff_{key}.png").write_bytes(base64.b64decode(data))
        md += [f"![accuracy against {key}](tradeoff_{key}.png)", ""]
    (out / "report.md").write_text("\n".join(md))
    (out / "summary.json").write_text(json.dumps({"methods": table, "paired_reference": reference,
                                                  "paired": paired}, indent=2, default=float))
    body = [f"<h1>Sweep report: {html.escape(run.name)}</h1><p>{len(rows)} items, {failed} failed.</p>",
            _html_table(table), _html_table_from(comparison)]
    body += [f'<h3>accuracy against {k}</h3><img src="data:image/png;base64,{v}">' for k, v in plots.items()]
    body += ["<h2>Clips</h2>"] + [f'<p>{html.escape(k)}</p><img src="data:image/png;base64,{v}">'
                                  for k, v in strips.items()]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>samg-video report</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}</style></head><body>"
            + "\n".join(body) + "</body></html>")
    (out / "report.html").write_text(page)
    return out / "report.md", out / "report.html"


def _html_table(table: dict[str, dict]) -> str:
    return _html_table_from(markdown_table(table))


def _html_table_from(markdown: str) -> str:
    """A markdown table (optionally after a caption paragraph) as HTML."""
    text = markdown.split("\n\n")
    caption = f"<p>{html.escape(text[0])}</p>" if len(text) > 1 else ""
    lines = text[-1].splitlines()
    if len(lines) < 2:
        return caption + f"<p>{html.escape(text[-1])}</p>"
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return caption + f"<table><tr>{cells}</tr>{body}</table>"
