"""`samg-video report RUN_DIR`: a sweep's results as markdown and an HTML page with a video gallery.

Per method (rows grouped by family, then ordered by scale): alignment (CLIP score; on the
bundled model the exact prompt accuracies), quality (flicker, warping error, LPIPS
temporal, clipped pixels, saturation, with motion beside them) and the scale field's
diagnostics. Every method is paired against a reference (the sweep's `reference`, else
CFG at the model card's scale, else the most accurate CFG) on the same prompts and
seeds: mean difference with a 95 % interval, in a table and on trade-off plots (quality
against alignment, one line per method family across its scales, error bars both ways).
The gallery plays the same prompts, one per prompt category, for every method, with
the scale-field heatmap beside each SAMG clip.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import cards
from .atomic import write_text
from .guidance.spec import base_config, family, full_config, label, parse_spec, scale_of
from .sweep import clip_path, items_of, read_manifest, setting_of

# (key, header, percent?) per table; a column shows when any row has it
ALIGNMENT = [("clip_score", "CLIP score", False), ("prompt_correct", "prompt acc", True),
             ("single", "1-object acc", True), ("double", "2-object acc", True), ("prompt_color", "colour", True),
             ("prompt_shape", "shape", True), ("prompt_motion", "motion acc", True),
             ("object_1_correct", "object 1 acc", True), ("object_2_correct", "object 2 acc", True)]
QUALITY = [("flicker", "flicker", False), ("flicker_compensated", "flicker comp.", False),
           ("warp_error", "warp error", False), ("lpips_temporal", "LPIPS temporal", False),
           ("out_of_range", "out of range", True), ("clipped_high", "clipped", True),
           ("saturation", "saturation", False), ("motion", "motion px/f", False)]
FIELD = [("field_mean", "mean", False), ("field_spread", "spread", False), ("field_change", "change", False),
         ("field_change_warped", "change (warped)", False), ("field_roughness", "roughness", False),
         ("field_object", "object", False), ("field_background", "background", False),
         ("field_object_1", "object 1", False), ("field_object_2", "object 2", False)]
TABLES = [("Alignment", ALIGNMENT), ("Quality", QUALITY), ("Scale field", FIELD)]
PAIRED = ["clip_score", "prompt_correct", "warp_error", "flicker", "flicker_compensated", "lpips_temporal",
          "clipped_high", "out_of_range", "field_change", "field_change_warped", "motion"]
PLOTS = [("warp_error", "warp error"), ("out_of_range", "latents out of range"), ("flicker", "flicker (higher = steadier)"),
         ("lpips_temporal", "LPIPS temporal"), ("clipped_high", "clipped pixels")]


def number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def mean_of(rows: list[dict], key: str) -> float:
    values = [number(r.get(key)) for r in rows]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def order(config: dict) -> tuple:
    """Sort key: family (CFG first), then scale."""
    return (family(config) != "cfg", family(config), scale_of(config), label(config))


def config_key(config: dict) -> str:
    """The identity of a method config: the config itself, as canonical JSON."""
    return json.dumps(config, sort_keys=True)


def method_names(rows: list[dict]) -> dict[str, str]:
    """{config key: display name} for the rows' method configs: the label, which shows every
    non-default parameter (a label two configs share, possible only in hand-edited manifests,
    gets a '#2' suffix)."""
    names: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: config_key(r["method"])):
        key = config_key(r["method"])
        if key not in names:
            name, n = label(r["method"]), 1
            while name in names.values():
                n += 1
                name = f"{label(r['method'])} #{n}"
            names[key] = name
    return names


def by_method(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows grouped by their method config, keyed by display name."""
    names, groups = method_names(rows), defaultdict(list)
    for r in rows:
        groups[names[config_key(r["method"])]].append(r)
    return groups


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Mean of every column per method config (failed items counted, not averaged), in report order."""
    groups = by_method(rows)
    table = {}
    for name, items in sorted(groups.items(), key=lambda kv: order(kv[1][0]["method"])):
        ok = [r for r in items if "error" not in r]
        row = {key: mean_of(ok, key) for _, columns in TABLES for key, _, _ in columns}
        row["single"] = mean_of([r for r in ok if r.get("objects") == 1], "prompt_correct")
        row["double"] = mean_of([r for r in ok if r.get("objects") == 2], "prompt_correct")
        row.update(n=len(ok), failed=len(items) - len(ok), config=items[0]["method"], family=family(items[0]["method"]))
        table[name] = row
    return table


def pick_reference(table: dict[str, dict], config: dict) -> str | None:
    """The sweep's `reference` spec, else CFG at the card's scale, else the most accurate CFG row."""

    card = cards.card(config.get("model", "demo"))
    if config.get("reference"):
        wanted = parse_spec(config["reference"], card).to_dict()
        match = [name for name, r in table.items() if r["config"] == wanted]
        if not match:
            raise ValueError(f"The sweep's reference {config['reference']!r} ({label(wanted)}) is not among its "
                             f"methods: {', '.join(table)}.")
        return match[0]
    cfg = {name: r for name, r in table.items() if r["config"]["method"] == "cfg"}
    usual = f"cfg {card.get('guidance_scale', 0):g}"
    if usual in cfg:
        return usual
    scored = [(-r["prompt_correct"], r["config"]["scale"], name) for name, r in cfg.items()
              if not math.isnan(r["prompt_correct"])]
    return min(scored)[2] if scored else (next(iter(cfg)) if cfg else None)


def paired_differences(rows: list[dict], reference: str) -> dict[str, dict]:
    """Per method, mean difference to `reference` on the same (prompt, seed) items, with a 95 % interval.

    d_i = x_i(method) - x_i(reference) over the items both finished; reported as
    (mean(d), 1.96 sd(d) / sqrt(n)), the normal approximation of the paired mean. Pairing
    removes the prompt-to-prompt spread, so small real differences show.
    """
    items_of = {name: {(r["prompt"], r["seed"]): r for r in group if "error" not in r}
                for name, group in by_method(rows).items()}
    ref = items_of.get(reference, {})
    out = {}
    for name, items in items_of.items():
        keys = sorted(set(items) & set(ref))
        entry: dict = {"n": len(keys)}
        for key in PAIRED:
            d = np.array([number(items[k].get(key)) - number(ref[k].get(key)) for k in keys])
            d = d[~np.isnan(d)]
            if len(d):
                half = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else math.nan
                entry[key] = (float(d.mean()), float(half))
        out[name] = entry
    return out


def option_bases(table: dict[str, dict]) -> dict[str, str]:
    """Each method with options -> the method of the table that is the same method and scale
    without them (`guidance.spec.base_config`), where the sweep has it: 'samg 3-9
    temporal_sigma=1' -> 'samg 3-9'; perturbation guidance -> the method without its
    perturbation term ('stg 2 scale_stg=1' -> 'cfg 2', 'samg+stg 1-3 scale_stg=1' -> 'samg 1-3')."""
    known = {}
    for name, r in table.items():
        try:
            known[config_key(full_config(r["config"]))] = name
        except ValueError:  # a config of a method's older form: no base is looked up for it
            continue
    bases = {}
    for name, r in table.items():
        try:
            base = base_config(r["config"])
        except ValueError:
            continue
        if base is not None and known.get(config_key(base), name) != name:
            bases[name] = known[config_key(base)]
    return bases


def option_differences(rows: list[dict], table: dict[str, dict]) -> dict[str, dict]:
    """Per method with options, the paired difference to its base (`option_bases`): what each
    option does on its own, at its own scale."""
    bases = option_bases(table)
    out = {}
    for base in sorted(set(bases.values())):
        paired = paired_differences(rows, base)
        out.update({name: {**paired[name], "base": base} for name, b in bases.items() if b == base and name in paired})
    return out


def cell(value: float, percent: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.4f}"


def table_rows(table: dict[str, dict], columns) -> tuple[list[str], list[list[str]]]:
    """(headers, cells) for the columns that some method has."""
    present = [(k, h, p) for k, h, p in columns if any(not math.isnan(r[k]) for r in table.values())]
    head = ["method", "n", "failed"] + [h for _, h, _ in present]
    body = [[name, str(r["n"]), str(r["failed"])] + [cell(r[k], p) for k, _, p in present] for name, r in table.items()]
    return head, body


def paired_rows(paired: dict[str, dict], reference: str, table: dict) -> tuple[list[str], list[list[str]]]:
    keys = [k for k in PAIRED if any(k in e for e in paired.values())]
    percent = {"prompt_correct", "clipped_high", "out_of_range"}
    head = ["method", "n"] + keys
    body = []
    for name in table:
        if name == reference or name not in paired:
            continue
        e = paired[name]
        cells = [(f"{e[k][0] * 100:+.1f} ± {e[k][1] * 100:.1f}" if k in percent else f"{e[k][0]:+.4f} ± {e[k][1]:.4f}")
                 if k in e else "n/a" for k in keys]
        body.append([name, str(e["n"])] + cells)
    return head, body


def markdown(head: list[str], body: list[list[str]]) -> str:
    rule = "|---|" + "---:|" * (len(head) - 1)
    return "\n".join(["| " + " | ".join(head) + " |", rule] + ["| " + " | ".join(r) + " |" for r in body])


def html_table(head: list[str], body: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><tr>{cells}</tr>{rows}</table>"


def alignment_key(table: dict) -> str | None:
    for key in ("clip_score", "prompt_correct"):
        if any(not math.isnan(r[key]) for r in table.values()):
            return key
    return None


def tradeoff_plots(table: dict, paired: dict, reference: str, out: Path) -> list[Path]:
    """PNG per quality metric: paired difference in quality (x) against paired difference in
    alignment (y), one line per family across its scales, 95 % intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_key = alignment_key(table)
    files = []
    for x_key, x_name in PLOTS:
        if y_key is None or not any(x_key in e and y_key in e for e in paired.values()):
            continue
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        families = defaultdict(list)
        for name, r in table.items():
            e = paired.get(name, {})
            if x_key in e and y_key in e:
                families[r["family"]].append((scale_of(r["config"]), name, e[x_key], e[y_key]))
        for fam, points in families.items():
            points.sort()
            xs, ys = [p[2][0] for p in points], [p[3][0] for p in points]
            ax.errorbar(xs, ys, xerr=[p[2][1] for p in points], yerr=[p[3][1] for p in points], marker="o",
                        capsize=2, label=fam)
            for scale, name, (x, _), (y, _) in points:
                ax.annotate(name.split()[1] if len(name.split()) > 1 else name, (x, y), fontsize=6)
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_xlabel(f"{x_name}, difference to {reference}")
        ax.set_ylabel(f"{y_key.replace('_', ' ')}, difference to {reference}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
        path = out / f"tradeoff_{x_key}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def gallery_prompts(rows: list[dict], limit: int = 8) -> list[tuple[str, int]]:
    """(prompt, seed) pairs that every method finished, one per prompt category (first tag, or the
    object count on the bundled model) before a second of any, at most `limit`."""
    done = defaultdict(set)
    for r in rows:
        if "error" not in r:
            done[(r["prompt"], r["seed"])].add(config_key(r["method"]))
    methods = {config_key(r["method"]) for r in rows}
    complete = sorted(k for k, v in done.items() if v == methods)
    category = {(r["prompt"], r["seed"]): (r.get("tags") or [f"{r.get('objects', 1)} object(s)"])[0] for r in rows}
    firsts, seen = [], set()
    for key in complete:
        if category[key] not in seen:
            seen.add(category[key])
            firsts.append(key)
    return (firsts + [k for k in complete if k not in firsts])[:limit]


def gallery(run: Path, rows: list[dict], table: dict, out: Path) -> list[str]:
    """HTML blocks, one per chosen prompt: every method's clip (and SAMG's heatmap) as looping videos,
    copied into out/gallery/."""
    folder = out / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    names = method_names(rows)
    by_key = {(r["prompt"], r["seed"], names[config_key(r["method"])]): r for r in rows if "error" not in r}
    blocks = []
    for prompt, seed in gallery_prompts(rows):
        tags = next((r.get("tags") for r in rows if r["prompt"] == prompt and r.get("tags")), [])
        cells = []
        for name in table:
            r = by_key.get((prompt, seed, name))
            if r is None:
                continue
            videos = []
            for kind in ("", "field"):
                src = clip_path(run, r["id"], kind)
                if src.is_file():
                    if src.parent.resolve() != folder.resolve():
                        shutil.copy(src, folder / src.name)
                    videos.append(f'<video src="gallery/{src.name}" autoplay loop muted playsinline></video>')
            cells.append(f"<figure>{''.join(videos)}<figcaption>{html.escape(name)}</figcaption></figure>")
        caption = html.escape(prompt) + f" (seed {seed}" + (f"; {html.escape(', '.join(tags))})" if tags else ")")
        blocks.append(f"<h3>{caption}</h3><div class='row'>{''.join(cells)}</div>")
    return blocks


def current_setting(rows: list[dict], config: dict) -> tuple[list[dict], int]:
    """The rows of the items the run's sweep.json plans, and how many others the folder holds.

    A row is kept when its setting is the current one and its id is planned: items of an
    earlier setting, of a method removed from the list, or of an older form of a method
    (one that gained a field, so its id changed) are left out and counted.
    """
    if not config:
        return rows, 0
    setting = setting_of(config)
    try:
        planned = {item.id for item in items_of(config)}
    except Exception:  # noqa: BLE001  (an old or edited sweep.json: keep every row of the setting)
        planned = None
    keep = [r for r in rows if r.get("setting", setting) == setting and (planned is None or r.get("id") in planned)]
    if not keep:
        raise ValueError("The run folder holds no items of its current sweep.json's settings; run the sweep first.")
    return keep, len(rows) - len(keep)


def planned_items(run: Path) -> int | None:
    """How many items the run's sweep.json plans (None when it cannot be read)."""
    try:
        return len(items_of(json.loads((run / "sweep.json").read_text())))
    except Exception:  # noqa: BLE001  (an old or edited sweep.json only loses this count)
        return None


def plain(value):
    """JSON without NaN: NaN becomes null; tuples become lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}"
         ".row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;text-align:center;font-size:11px}"
         "video{max-width:256px;image-rendering:pixelated;margin:1px}")


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 reference: str | None = None) -> tuple[Path, Path]:
    """Write report.md (plots beside it), report.html (gallery videos in gallery/) and summary.json.

    `reference` (a method spec among the sweep's methods, e.g. "cfg:3") replaces the sweep's own
    reference in the paired table and the trade-off plots.
    """
    run = Path(run_dir)
    rows = read_manifest(run)
    if not rows:
        raise ValueError(f"{run} holds no sweep results (manifest.rank*.jsonl); run `samg-video sweep` first.")
    out = Path(out_dir) if out_dir else run
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((run / "sweep.json").read_text()) if (run / "sweep.json").is_file() else {}
    rows, others = current_setting(rows, config)
    table = summarise(rows)
    reference = pick_reference(table, {**config, "reference": reference} if reference else config)
    paired = paired_differences(rows, reference) if reference else {}
    plots = tradeoff_plots(table, paired, reference, out) if reference else []
    failed, planned = sum("error" in r for r in rows), planned_items(run)
    status = f"{len(rows)} items recorded" + (f" of {planned} planned" if planned else "") + f", {failed} failed." \
        + (f" {others} items of other settings or methods in this folder are left out." if others else "")
    model = rows[0].get("setting", {}).get("model", config.get("model", "demo"))
    title = f"Sweep report: {run.name} ({model})"
    md, body = [f"# {title}", "", status, ""], [f"<h1>{html.escape(title)}</h1><p>{html.escape(status)}</p>"]
    for name, columns in TABLES:
        head, cells = table_rows(table, columns)
        if len(head) > 3:
            md += [f"## {name}", "", markdown(head, cells), ""]
            body += [f"<h2>{name}</h2>", html_table(head, cells)]
    if reference:
        head, cells = paired_rows(paired, reference, table)
        intro = f"Paired against {reference} (same prompts and seeds; mean difference ± 95 % interval):"
        md += ["## Paired differences", "", intro, "", markdown(head, cells), ""]
        body += ["<h2>Paired differences</h2>", f"<p>{html.escape(intro)}</p>", html_table(head, cells)]
    options = option_differences(rows, table)
    if options:
        head, cells = paired_rows(options, "", {name: None for name in options})
        head, cells = ["method", "against"] + head[1:], [[r[0], options[r[0]]["base"]] + r[1:] for r in cells]
        intro = "Each option against the same method and scale without it (same prompts and seeds; ± 95 % interval):"
        md += ["## Each option on its own", "", intro, "", markdown(head, cells), ""]
        body += ["<h2>Each option on its own</h2>", f"<p>{html.escape(intro)}</p>", html_table(head, cells)]
    for path in plots:
        md += [f"![{path.stem}]({path.name})", ""]
        body += [f'<h3>{html.escape(path.stem.replace("_", " "))}</h3><img src="{path.name}">']
    body += ["<h2>Gallery</h2>"] + gallery(run, rows, table, out)
    write_text(out / "report.md", "\n".join(md))
    write_text(out / "summary.json", json.dumps(plain({"methods": table, "reference": reference, "paired": paired,
                                                        "options": options, "items": len(rows), "failed": failed,
                                                        "planned": planned}),
                                                 indent=2, allow_nan=False))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>")
    write_text(out / "report.html", page)
    return out / "report.md", out / "report.html"
