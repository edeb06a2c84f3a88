"""`samg-video report RUN_DIR`: a sweep's results as markdown and an HTML page with a video gallery.

Per method (rows grouped by family, then ordered by scale): alignment (CLIP score; on the
bundled model the exact prompt accuracies), quality (flicker, warping error, LPIPS
temporal, clipped pixels, saturation, with motion beside them) and the scale field's
diagnostics. Every method is paired against a reference (the sweep's `reference`, else
CFG at the model card's scale, else the most accurate CFG) on the same prompts and
seeds: mean difference with a 95 % t interval and its n, in a table and on trade-off plots
(quality against alignment, one line per method family across its scales, error bars both
ways). Tables sort by any column, mark the reference row and the best value of each column
with a direction; a table of every item filters by method and prompt. The gallery plays the
same prompts, one per prompt category, for every method, with the scale-field heatmap beside
each SAMG clip, a poster frame, and the clip's verdict and metrics under it.

Units: a fraction (prompt accuracy, clipped pixels) shows as a percentage in the level tables
and its differences as percentage points (pts), in tables and plots alike.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from . import cards, media
from .atomic import atomic_path, write_bytes, write_text
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
           ("saturation", "saturation", False), ("motion", "motion px/f", False),
           ("subject_consistency", "subject consistency", False),
           ("background_consistency", "background consistency", False), ("dynamic_degree", "dynamic", True)]
FIELD = [("field_mean", "mean", False), ("field_spread", "spread", False), ("field_change", "change", False),
         ("field_change_warped", "change (warped)", False), ("field_roughness", "roughness", False),
         ("field_object", "object", False), ("field_background", "background", False),
         ("field_object_1", "object 1", False), ("field_object_2", "object 2", False)]
COST = [("denoiser_calls", "denoiser calls / clip", False), ("skipped_steps", "steps without uncond", False),
        ("seconds", "seconds / clip", False)]
TABLES = [("Alignment", ALIGNMENT), ("Quality", QUALITY), ("Cost", COST), ("Scale field", FIELD)]
PAIRED = ["clip_score", "prompt_correct", "warp_error", "flicker", "flicker_compensated", "lpips_temporal",
          "clipped_high", "out_of_range", "field_change", "field_change_warped", "motion", "subject_consistency",
          "background_consistency", "dynamic_degree", "denoiser_calls", "seconds"]
PLOTS = [("warp_error", "warp error"), ("out_of_range", "latents out of range"),
         ("flicker", "flicker (higher = steadier)"), ("lpips_temporal", "LPIPS temporal"),
         ("clipped_high", "clipped pixels")]
HEADERS = {k: h for _, columns in TABLES[:3] for k, h, _ in columns} | {k: f"field {h}" for k, h, _ in FIELD}
PERCENT = {k for _, columns in TABLES for k, _, p in columns if p}
HIGHER = {"clip_score", "prompt_correct", "single", "double", "prompt_color", "prompt_shape", "prompt_motion",
          "object_1_correct", "object_2_correct", "flicker", "flicker_compensated", "subject_consistency",
          "background_consistency"}  # better when higher
# better when lower; others: no best
LOWER = {"warp_error", "lpips_temporal", "out_of_range", "clipped_high", "denoiser_calls", "seconds"}
SMALL_N = 10  # fewer pairs than this: the page says the interval is rough


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

    d_i = x_i(method) - x_i(reference) over the n items both finished; reported as
    (mean(d), t_{0.975, n-1} sd(d) / sqrt(n)) (`t_interval`), exact for normal differences at
    any n and NaN for n = 1. Pairing removes the prompt-to-prompt spread, so small real
    differences show.
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
                entry[key] = t_interval(d)
        out[name] = entry
    return out


def t_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """(mean, half width) of the `level` Student-t interval of the mean of d (n,):
    half = t_{(1 + level) / 2, n - 1} sd(d) / sqrt(n), sd with n - 1; half is NaN for n < 2."""
    n = len(d)
    if n < 2:
        return float(d.mean()), math.nan
    return float(d.mean()), float(stats.t.ppf((1 + level) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))


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


def best_rows(values: list[float], key: str) -> set[int]:
    """Indices of the best finite value(s) of a column, by its direction (none when it has none)."""
    if key not in HIGHER | LOWER:
        return set()
    finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
    if len(finite) < 2:
        return set()
    best = (max if key in HIGHER else min)(v for v, _ in finite)
    winners = {i for v, i in finite if v == best}
    return winners if len(winners) < len(finite) else set()  # a column where all tie has no best


@dataclass
class Table:
    """A report table: headers, cell texts, and what the page marks (best cells per column, the reference row)."""

    head: list[str]
    body: list[list[str]]
    best: dict[int, set[int]] = field(default_factory=dict)  # column -> rows
    reference: str | None = None

    def markdown(self) -> str:
        rule = "|---|" + "---:|" * (len(self.head) - 1)
        rows = []
        for i, r in enumerate(self.body):
            cells = [f"**{c}**" if i in self.best.get(j, ()) else c for j, c in enumerate(r)]
            if r[0] == self.reference:
                cells[0] = f"{cells[0]} (reference)"
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(["| " + " | ".join(self.head) + " |", rule, *rows])

    def html(self, table_id: str = "") -> str:
        head = "".join(f"<th title='sort'>{html.escape(h)}</th>" for h in self.head)
        rows = []
        for i, r in enumerate(self.body):
            best = self.best
            cells = "".join(f"<td{sort_value(c)}{' class=best' if i in best.get(j, ()) else ''}>{html.escape(c)}</td>"
                            for j, c in enumerate(r))
            rows.append(f"<tr{' class=ref' if r[0] == self.reference else ''}>{cells}</tr>")
        ident = f" id='{table_id}'" if table_id else ""
        return f"<table class=sort{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def sort_value(text: str) -> str:
    """` data-v=NUMBER` for a cell that starts with a number ("72.2%", "+1.5 ± 8.4"), else ''."""
    try:
        return f" data-v={float(text.split()[0].rstrip('%'))!r}"
    except (ValueError, IndexError):
        return ""


def table_rows(table: dict[str, dict], columns, reference: str | None = None) -> Table:
    """The columns that some method has, with the best value of each marked."""
    present = [(k, h, p) for k, h, p in columns if any(not math.isnan(r[k]) for r in table.values())]
    head = ["method", "n", "failed"] + [h for _, h, _ in present]
    body = [[name, str(r["n"]), str(r["failed"])] + [cell(r[k], p) for k, _, p in present] for name, r in table.items()]
    best = {3 + j: best_rows([r[k] for r in table.values()], k) for j, (k, _, _) in enumerate(present)}
    return Table(head, body, best, reference)


def paired_header(key: str) -> str:
    return f"{HEADERS.get(key, key)} ({'pts' if key in PERCENT else 'diff.'})"


def paired_rows(paired: dict[str, dict], reference: str, names) -> Table:
    """Mean difference ± half width per metric, n per row (percentages in points); a row
    whose n is below SMALL_N is flagged in its n cell."""
    keys = [k for k in PAIRED if any(k in e for e in paired.values())]
    head = ["method", "n"] + [paired_header(k) for k in keys]
    body, means = [], {k: [] for k in keys}
    for name in names:
        if name == reference or name not in paired:
            continue
        e = paired[name]
        scale = {k: 100 if k in PERCENT else 1 for k in keys}
        fmt = {k: ".1f" if k in PERCENT else ".4f" for k in keys}
        cells = [f"{e[k][0] * scale[k]:+{fmt[k]}} ± {e[k][1] * scale[k]:{fmt[k]}}" if k in e else "n/a" for k in keys]
        body.append([name, f"{e['n']}{' (few)' if e['n'] < SMALL_N else ''}"] + cells)
        for k in keys:
            means[k].append(e[k][0] if k in e else math.nan)
    best = {2 + j: best_rows(means[k], k) for j, k in enumerate(keys)}
    return Table(head, body, best)


def alignment_key(table: dict) -> str | None:
    for key in ("clip_score", "prompt_correct"):
        if any(not math.isnan(r[key]) for r in table.values()):
            return key
    return None


MARKERS = "osD^vP*Xh<>p"


def tradeoff_plots(table: dict, paired: dict, reference: str, out: Path) -> list[Path]:
    """PNG per quality metric: paired difference in quality (x) against paired difference in
    alignment (y), one line per family across its scales (its own colour and marker), 95 %
    t intervals as error bars, fractions in percentage points as in the tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    y_key = alignment_key(table)
    families = list(dict.fromkeys(r["family"] for r in table.values()))
    colours = plt.get_cmap("tab20" if len(families) > 10 else "tab10").colors
    files = []
    for x_key, x_name in PLOTS:
        if y_key is None or not any(x_key in e and y_key in e for e in paired.values()):
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        lines = defaultdict(list)
        for name, r in table.items():
            e = paired.get(name, {})
            if x_key in e and y_key in e:
                lines[r["family"]].append((scale_of(r["config"]), name, e[x_key], e[y_key]))
        sx, sy = (100 if k in PERCENT else 1 for k in (x_key, y_key))
        for fam, points in lines.items():
            points.sort()
            i = families.index(fam)
            ax.errorbar([p[2][0] * sx for p in points], [p[3][0] * sy for p in points],
                        xerr=[p[2][1] * sx for p in points], yerr=[p[3][1] * sy for p in points],
                        marker=MARKERS[i % len(MARKERS)], color=colours[i % len(colours)], capsize=2, lw=1, label=fam)
            for _, name, (x, _), (y, _) in points:
                ax.annotate(name.split()[1] if len(name.split()) > 1 else name, (x * sx, y * sy), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(6))
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_powerlimits((-5, 6))  # plain decimals, no offset label
            axis.set_major_formatter(formatter)
        ax.set_xlabel(f"{x_name}{' (pts)' if x_key in PERCENT else ''}, difference to {reference}")
        ax.set_ylabel(f"{HEADERS.get(y_key, y_key)}{' (pts)' if y_key in PERCENT else ''}, difference to {reference}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, title="family")
        path = out / f"tradeoff_{x_key}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
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


def verdict(row: dict) -> str:
    """'yes' / 'no' for whether the clip met its prompt (where a scorer judged it), else ''."""
    value = row.get("prompt_correct")
    return "" if value is None else ("yes" if value >= 1 else "no")


def clip_caption(name: str, row: dict) -> str:
    parts = [f"prompt met: {verdict(row)}"] if verdict(row) else []
    parts += [f"{HEADERS[k]} {row[k]:.4f}" for k in ("warp_error", "flicker") if isinstance(row.get(k), (int, float))]
    return f"<b>{html.escape(name)}</b><br>{html.escape(' · '.join(parts))}"


class Media:
    """Where the page's pictures and clips go: files beside the page (gallery/ for clips), or,
    for a single-file page, data URIs up to `budget` bytes of clips (past it a clip is skipped
    and counted)."""

    def __init__(self, out: Path, single_file: bool, budget: int):
        self.out, self.single_file, self.budget, self.used, self.skipped = out, single_file, budget, 0, 0

    def image(self, path: Path) -> str:
        if not self.single_file:
            return path.relative_to(self.out).as_posix()
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    def picture(self, src: Path) -> str:
        """An input image of the sweep (an image-to-video item's first frame), as PNG."""
        import imageio.v3 as iio

        data = iio.imwrite("<bytes>", media.rgb(iio.imread(src)), extension=".png")
        if self.single_file:
            return "data:image/png;base64," + base64.b64encode(data).decode()
        name = f"input_{hashlib.sha256(data).hexdigest()[:12]}.png"
        write_bytes(self.out / "gallery" / name, data)
        return f"gallery/{name}"

    def clip(self, src: Path) -> tuple[str, str] | None:
        """(video URL, poster URL) for a clip file, or None when it is past the budget."""
        data = src.read_bytes()
        poster = poster_png(src)
        if self.single_file:
            size = len(data) + len(poster)
            if self.used + size > self.budget:
                self.skipped += 1
                return None
            self.used += size
            return (f"data:video/mp4;base64,{base64.b64encode(data).decode()}",
                    f"data:image/png;base64,{base64.b64encode(poster).decode()}")
        folder = self.out / "gallery"
        folder.mkdir(parents=True, exist_ok=True)
        if src.parent.resolve() != folder.resolve():
            shutil.copy(src, folder / src.name)
        write_bytes(folder / f"{src.stem}.png", poster)
        return f"gallery/{src.name}", f"gallery/{src.stem}.png"


def poster_png(clip: Path) -> bytes:
    """The clip's first frame as PNG bytes."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", media.read_video(clip)[0], extension=".png")


def gallery(run: Path, rows: list[dict], table: dict, files: Media, limit: int = 8) -> list[str]:
    """HTML blocks, one per chosen prompt: every method's clip (and SAMG's heatmap) with controls,
    a poster frame and its verdict and metrics; a button plays the row together."""
    names = method_names(rows)
    by_key = {(r["prompt"], r["seed"], names[config_key(r["method"])]): r for r in rows if "error" not in r}
    blocks = []
    for prompt, seed in gallery_prompts(rows, limit):
        tags = next((r.get("tags") for r in rows if r["prompt"] == prompt and r.get("tags")), [])
        cells = []
        image = next((r["image"] for r in rows if r["prompt"] == prompt and r.get("image")), None)
        if image and Path(image).is_file():
            cells.append(f'<figure><img class=input src="{files.picture(Path(image))}" alt="input image">'
                         "<figcaption><b>input image</b></figcaption></figure>")
        for name in table:
            r = by_key.get((prompt, seed, name))
            if r is None:
                continue
            videos = []
            for kind in ("", "field"):
                src = clip_path(run, r["id"], kind)
                placed = files.clip(src) if src.is_file() else None
                if placed:
                    videos.append(f'<video src="{placed[0]}" poster="{placed[1]}" controls loop muted playsinline '
                                  'preload="none"></video>')
            cells.append(f"<figure>{''.join(videos)}<figcaption>{clip_caption(name, r)}</figcaption></figure>")
        caption = html.escape(prompt) + f" (seed {seed}" + (f"; {html.escape(', '.join(tags))})" if tags else ")")
        blocks.append(f"<h3>{caption} <button class=play>play row</button></h3><div class='row'>{''.join(cells)}</div>")
    return blocks


ITEM_COLUMNS = ["clip_score", "warp_error", "flicker", "lpips_temporal", "out_of_range", "motion"]


def items_table(rows: list[dict]) -> Table:
    """Every item: prompt, seed, method, verdict, the main metrics, seconds (where recorded), error."""
    names = method_names(rows)
    keys = [k for k in ITEM_COLUMNS if any(isinstance(r.get(k), (int, float)) for r in rows)]
    head = ["prompt", "seed", "method", "prompt met"] + [HEADERS[k] for k in keys] + ["seconds", "error"]
    body = []
    for r in sorted(rows, key=lambda r: (r["prompt"], r["seed"], order(r["method"]))):
        body.append([r["prompt"], str(r["seed"]), names[config_key(r["method"])], verdict(r)]
                    + [cell(number(r.get(k)), k in PERCENT) for k in keys]
                    + [f"{r['seconds']:.1f}" if isinstance(r.get("seconds"), (int, float)) else "",
                       r.get("error", "")])
    return Table(head, body)


def scope(rows: list[dict]) -> str:
    """What each method's numbers rest on: prompts x seeds."""
    prompts, seeds = {r["prompt"] for r in rows}, {r["seed"] for r in rows}
    return f"Each method rests on up to {len(prompts)} prompts x {len(seeds)} seeds (n per row below)."


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


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px;"
         "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,"
         "#items td:nth-child(3){text-align:left}th{cursor:pointer;background:#f4f4f4}"
         "th::after{content:' ⇅';color:#999;font-size:10px}th:hover{background:#e4e4e4}"
         "td.best{font-weight:bold;background:#e6f4e6}tr.ref td{background:#eef3fb}tr.ref td:first-child::after"
         "{content:' (reference)';color:#557}.row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;"
         "text-align:center;font-size:11px;max-width:270px}video,img.input{width:128px;image-rendering:pixelated;margin:1px}"
         "img{max-width:100%}.note{color:#744}input{margin:0 1em .5em 0}")
SCRIPT = """
document.querySelectorAll('table.sort th').forEach(th => th.addEventListener('click', () => {
  const i = th.cellIndex;  // the column within its own table
  const body = th.closest('table').tBodies[0], dir = th.dataset.dir = th.dataset.dir === '1' ? '-1' : '1';
  const key = r => r.cells[i].dataset.v;
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x !== undefined && y !== undefined) return (x - y) * dir;
    if (x !== undefined || y !== undefined) return x === undefined ? 1 : -1;
    return a.cells[i].textContent.localeCompare(b.cells[i].textContent) * dir;
  }).forEach(r => body.appendChild(r));
}));
const filter = () => {
  const m = document.getElementById('fm').value.toLowerCase(), p = document.getElementById('fp').value.toLowerCase();
  document.querySelectorAll('#items tbody tr').forEach(r => {
    const shown = r.cells[2].textContent.toLowerCase().includes(m) && r.cells[0].textContent.toLowerCase().includes(p);
    r.style.display = shown ? '' : 'none';
  });
};
document.querySelectorAll('#fm, #fp').forEach(e => e && e.addEventListener('input', filter));
document.querySelectorAll('button.play').forEach(b => b.addEventListener('click', () => {
  b.parentElement.nextElementSibling.querySelectorAll('video').forEach(v => { v.currentTime = 0; v.play(); });
}));
"""


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, reference: str | None = None,
                 single_file: bool = False, gallery_size: int = 8, embed_budget: int = 20 << 20,
                 say=lambda text: None) -> tuple[Path, Path]:
    """Write report.md (plots beside it), report.html and summary.json.

    `reference` (a method spec among the sweep's methods, e.g. "cfg:3") replaces the sweep's own
    reference in the paired table and the trade-off plots. The gallery shows `gallery_size`
    prompts (0: none). `single_file`: report.html embeds its plots and clips (clips up to
    `embed_budget` bytes, the page says how many it skipped); otherwise clips and posters go
    to gallery/ beside it. `say(text)` hears each stage as it starts (the command line's progress).
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
    say(f"{len(rows)} item{'' if len(rows) == 1 else 's'} read; paired differences")  # after every check
    paired = paired_differences(rows, reference) if reference else {}
    if reference:
        say("trade-off plots")
    plots = tradeoff_plots(table, paired, reference, out) if reference else []
    failed, planned = sum("error" in r for r in rows), planned_items(run)
    status = f"{len(rows)} items recorded" + (f" of {planned} planned" if planned else "") + f", {failed} failed." \
        + (f" {others} items of other settings or methods in this folder are left out." if others else "")
    model = rows[0].get("setting", {}).get("model", config.get("model", "demo"))
    title = f"Sweep report: {run.name} ({model})"
    md = [f"# {title}", "", status, scope(rows), ""]
    body = [f"<h1>{html.escape(title)}</h1><p>{html.escape(status)} {html.escape(scope(rows))}</p>",
            "<p>Click a column header to sort; the best value of a column with a direction is shaded.</p>"]
    for name, columns in TABLES:
        t = table_rows(table, columns, reference)
        if len(t.head) > 3:
            md += [f"## {name}", "", t.markdown(), ""]
            body += [f"<h2 id={name.lower().replace(' ', '-')}>{name}</h2>", t.html()]
    interval = ("mean difference ± half width of the 95 % t interval (Student t with n - 1 degrees of freedom; "
                "fractions in percentage points)")
    small = (f"Rows marked (few) rest on fewer than {SMALL_N} pairs: their intervals are wide, read them as rough.")
    if reference:
        t = paired_rows(paired, reference, table)
        intro = f"Paired against {reference} on the same prompts and seeds; {interval}."
        notes = [small] if any("(few)" in r[1] for r in t.body) else []
        md += ["## Paired differences", "", intro, "", t.markdown(), "", *notes, ""]
        body += ["<h2 id=paired>Paired differences</h2>", f"<p>{html.escape(intro)}</p>", t.html()]
        body += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    options = option_differences(rows, table)
    if options:
        t = paired_rows(options, "", list(options))
        t.head, t.body = ["method", "against"] + t.head[1:], [[r[0], options[r[0]]["base"]] + r[1:] for r in t.body]
        t.best = {j + 1: rows_ for j, rows_ in t.best.items()}
        intro = f"Each option against the same method and scale without it (same prompts and seeds); {interval}."
        notes = [small] if any("(few)" in r[2] for r in t.body) else []
        md += ["## Each option on its own", "", intro, "", t.markdown(), "", *notes, ""]
        body += ["<h2 id=options>Each option on its own</h2>", f"<p>{html.escape(intro)}</p>", t.html()]
        body += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    files = Media(out, single_file, embed_budget)
    if plots:
        body += ["<h2 id=plots>Trade-off plots</h2>", ("<p>Each method's paired difference to the reference: "
                                                        "quality (x) against alignment (y), 95 % t intervals.</p>")]
    for path in plots:
        md += [f"![{path.stem}]({path.name})", ""]
        body += [(f'<h3>{html.escape(path.stem.replace("_", " "))}</h3><img src="{files.image(path)}" '
                  f'alt="{html.escape(path.stem)}">')]
    if gallery_size:
        say(f"gallery (up to {gallery_size} prompt{'' if gallery_size == 1 else 's'})")
        blocks = gallery(run, rows, table, files, gallery_size)
        body += ["<h2 id=gallery>Gallery</h2>", ("<p>The same prompts and seeds for every method; heatmaps show SAMG's "
                                      "scale field (bright = high scale).</p>"), *blocks]
        if files.skipped:
            body += [(f"<p class=note>{files.skipped} clips are not embedded: they pass the "
                      f"{embed_budget / 2**20:g} MB budget of this single-file page. `samg-video report` without "
                      "--single-file links every clip.</p>")]
    body += ["<h2 id=items-table>Every item</h2>",
             "<p>Filter: <input id=fm placeholder='method'><input id=fp placeholder='prompt'></p>",
             items_table(rows).html("items")]
    write_text(out / "report.md", "\n".join(md))
    write_text(out / "summary.json", json.dumps(plain({"methods": table, "reference": reference, "paired": paired,
                                                        "options": options, "items": len(rows), "failed": failed,
                                                        "planned": planned}),
                                                 indent=2, allow_nan=False))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(body) + f"<script>{SCRIPT}</script></body></html>")
    write_text(out / "report.html", page)
    return out / "report.md", out / "report.html"
