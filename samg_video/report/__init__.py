"""`samg-video report RUN_DIR`: a sweep's results as markdown and an HTML page with a video gallery.

Per method (rows grouped by family, then ordered by scale): alignment (CLIP score; on the
bundled model the exact prompt accuracies), quality (flicker, warping error, LPIPS
temporal, clipped pixels, saturation, with motion beside them), cost and the scale field's
diagnostics (the tables and columns of `samg_video.catalogue`). Methods run under a skip
policy get their own section against the same method computing every pass: calls, the
sweep's non-inferiority margins, pixels (`skips`). Every method is paired
against a reference (the sweep's `reference`, else CFG at the model card's scale, else the
most accurate CFG) on the same prompts and seeds: mean difference with a 95 % t interval
and its n, in a table and on trade-off plots (quality against alignment, one line per
method family across its scales, error bars both ways). Tables sort by any column, mark the
reference row and the best value of each column with a direction; a table of every item
filters by method and prompt. The gallery plays the same prompts, one per prompt category,
for every method, with the scale-field heatmap beside each SAMG clip, a poster frame, and
the clip's verdict and metrics under it.

Units: a fraction (prompt accuracy, clipped pixels) shows as a percentage in the level tables
and its differences as percentage points (pts), in tables and plots alike.

The package, by job: `stats` (grouping, means, references, paired t intervals), `tables`
(tables as markdown and sortable HTML), `plots` (trade-off plots), `skips` (skip policies
against their full-call method), `gallery` (clips, posters, heatmaps), `page` (the page's
sections, style and script); `write_report` puts them together.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .. import catalogue
from ..atomic import write_text
from ..manifest import read_manifest
from .gallery import Media, gallery
from .page import Page
from .plots import tradeoff_plots
from .skips import plan_figure, skip_summary, skip_table
from .stats import (SMALL_N, current_setting, option_bases, option_differences, paired_differences, pick_reference,
                    plain, planned_items, readable, summarise, t_interval)
from .tables import Table, items_table, paired_rows, table_rows

__all__ = ["write_report", "summarise", "paired_differences", "option_bases", "option_differences", "t_interval",
           "Table"]

INTERVAL = ("mean difference ± half width of the 95 % t interval (Student t with n - 1 degrees of freedom; "
            "fractions in percentage points)")
SMALL = f"Rows marked (few) rest on fewer than {SMALL_N} pairs: their intervals are wide, read them as rough."


def scope(rows: list[dict]) -> str:
    """What each method's numbers rest on: prompts x seeds."""
    prompts, seeds = {r["prompt"] for r in rows}, {r["seed"] for r in rows}
    return f"Each method rests on up to {len(prompts)} prompts x {len(seeds)} seeds (n per row below)."


def status_line(rows: list[dict], planned: int | None, others: int) -> str:
    """'2196 items recorded of 2196 planned, 3 failed.' (+ the rows of other settings left out)."""
    failed = sum("error" in r for r in rows)
    text = f"{len(rows)} item{'' if len(rows) == 1 else 's'} recorded"
    text += (f" of {planned} planned" if planned else "") + f", {failed} failed."
    return text + (f" {others} items of other settings or methods in this folder are left out." if others else "")


def options_table(options: dict[str, dict]) -> Table:
    """The paired table of each option against its base, with an 'against' column."""
    t = paired_rows(options, "", list(options))
    t.head, t.body = ["method", "against"] + t.head[1:], [[r[0], options[r[0]]["base"]] + r[1:] for r in t.body]
    t.best = {j + 1: rows for j, rows in t.best.items()}
    return t


def few_note(t: Table, column: int) -> list[str]:
    return [SMALL] if any("(few)" in r[column] for r in t.body) else []


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
    rows, left_out = readable(read_manifest(run))
    if not rows:
        raise ValueError(f"{run} holds no sweep results it can read (manifest.rank*.jsonl"
                         f"{'; ' + left_out[0] if left_out else ''}); run `samg-video sweep` first.")
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
    planned = planned_items(run)
    model = rows[0].get("setting", {}).get("model", config.get("model", "demo"))
    page = Page(f"Sweep report: {run.name} ({model})", [status_line(rows, planned, others), scope(rows), *left_out])
    page.html("<p>Click a column header to sort; the best value of a column with a direction is shaded.</p>")
    for name, key in catalogue.TABLES:
        t = table_rows(table, catalogue.in_table(key), reference)
        if len(t.head) > 3:
            page.section(name, name.lower().replace(" ", "-"), t)
    if reference:
        t = paired_rows(paired, reference, table)
        page.section("Paired differences", "paired", t, f"Paired against {reference} on the same prompts and seeds; "
                     f"{INTERVAL}.", few_note(t, 1))
    options = option_differences(rows, table)
    if options:
        t = options_table(options)
        page.section("Each option on its own", "options", t, "Each option against the same method and scale without "
                     f"it (same prompts and seeds); {INTERVAL}.", few_note(t, 2))
    files = Media(out, single_file, embed_budget)
    margins = config.get("margins") or {}
    skips = skip_summary(run, rows, table, options, margins)
    if skips:
        say("skip policies")
        figure = plan_figure(rows, table, out)
        t = skip_table(skips, margins)
        page.section("Skip policies", "skips", t, (
            "Each method under a skip policy against the same method computing every unconditional pass, on "
            f"the same prompts and seeds: denoiser calls per clip (mean, range over clips), {INTERVAL}, inside "
            "or OUTSIDE the sweep's margin (the largest loss that still counts as none), and PSNR of each clip's "
            "pixels against its full-call clip (where the sweep kept frames)."), few_note(t, 2))
        if figure is not None:
            page.md.append(f"![{figure.stem}]({figure.name})\n")
            page.html(f'<h3>Skip plans</h3><p>The signal each policy decided on, per step, for a few clips; filled: '
                      f'computed, open: reused; dashed: the policy\'s threshold.</p><img src="{files.image(figure)}" '
                      f'alt="skip plans">')
    if plots:
        page.html("<h2 id=plots>Trade-off plots</h2>", ("<p>Each method's paired difference to the reference: "
                                                         "quality (x) against alignment (y), 95 % t intervals.</p>"))
        page.md += [f"![{path.stem}]({path.name})\n" for path in plots]
        page.html(*(f'<h3>{html.escape(path.stem.replace("_", " "))}</h3><img src="{files.image(path)}" '
                    f'alt="{html.escape(path.stem)}">' for path in plots))
    if gallery_size:
        say(f"gallery (up to {gallery_size} prompt{'' if gallery_size == 1 else 's'})")
        page.html("<h2 id=gallery>Gallery</h2>", ("<p>The same prompts and seeds for every method; heatmaps show "
                                                   "SAMG's scale field (bright = high scale).</p>"),
                  *gallery(run, rows, table, files, gallery_size))
        if files.skipped:
            page.html(f"<p class=note>{files.skipped} clips are not embedded: they pass the "
                      f"{embed_budget / 2**20:g} MB budget of this single-file page. `samg-video report` without "
                      "--single-file links every clip.</p>")
    page.html("<h2 id=items-table>Every item</h2>",
              "<p>Filter: <input id=fm placeholder='method'><input id=fp placeholder='prompt'></p>",
              items_table(rows).html("items"))
    write_text(out / "report.md", page.markdown())
    summary = {"methods": table, "reference": reference, "paired": paired, "options": options, "skips": skips,
               "margins": margins, "items": len(rows),
               "failed": sum("error" in r for r in rows), "planned": planned}
    write_text(out / "summary.json", json.dumps(plain(summary), indent=2, allow_nan=False))
    write_text(out / "report.html", page.document())
    return out / "report.md", out / "report.html"
