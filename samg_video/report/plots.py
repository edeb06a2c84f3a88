"""The report's trade-off plots: quality against alignment, paired differences to the reference."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .. import catalogue
from ..atomic import atomic_path
from ..guidance.spec import scale_of


def alignment_key(table: dict) -> str | None:
    for key in catalogue.ALIGNMENT:
        if any(not math.isnan(r[key]) for r in table.values()):
            return key
    return None

MARKERS = "osD^vP*Xh<>p"

def label_offsets(points: list[tuple[float, float]], sizes: list[tuple[float, float]], step: float = 7.0,
                  rings: int = 12) -> list[tuple[float, float, int]]:
    """Greedy label placement in display units (pixels): label k (width, height `sizes[k]`) goes at
    the first offset from its point, in rings of radius step, 2 step, ... (8 directions each, the
    upper right first), whose box overlaps no label placed before it and no point; the last ring's
    last candidate if none is free. Returns each box's lower-left corner's offset and ring (dx, dy, ring)."""
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    dots = [(x - 3, y - 3, x + 3, y + 3) for x, y in points]
    placed, offsets = [], []

    def free(box):
        return not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed + dots)

    for (x, y), (w, h) in zip(points, sizes):
        for ring in range(1, rings + 1):
            for ux, uy in directions:  # the box's near corner (or edge centre) at distance ring * step
                dx = ux * ring * step - (w if ux < 0 else w / 2 if ux == 0 else 0)
                dy = uy * ring * step - (h if uy < 0 else h / 2 if uy == 0 else 0)
                box = (x + dx, y + dy, x + dx + w, y + dy + h)
                if free(box):
                    break
            else:
                continue
            break
        placed.append(box)
        offsets.append((dx, dy, ring))
    return offsets


def place_labels(ax, labels: list[tuple[float, float, str, tuple]]) -> None:
    """Each point's scale label (x, y, text, colour) beside it in a box edged in its family's colour,
    placed by `label_offsets` so that no two labels overlap, with a thin line back to its point
    when it had to move away from its first place."""
    from matplotlib.text import Text

    if not labels:
        return
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8}
    texts = [ax.annotate(text, (x, y), fontsize=6.5, color="0.1", bbox={**box, "edgecolor": colour, "linewidth": 0.6},
                         textcoords="offset points", xytext=(0, 0), ha="left", va="bottom",
                         arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.4", "shrinkA": 0, "shrinkB": 2})
             for x, y, text, colour in labels]
    fig = ax.figure
    fig.canvas.draw()  # the axes' final limits and the texts' sizes
    renderer, to_points = fig.canvas.get_renderer(), 72 / fig.dpi
    points = [tuple(ax.transData.transform((x, y))) for x, y, *_ in labels]
    pad = 0.2 * 6.5 / to_points  # the box's padding around the text (boxstyle pad 0.15 of the font size, and a margin)
    extents = [Text.get_window_extent(t, renderer) for t in texts]  # the text alone, not its line
    sizes = [(e.width + 2 * pad, e.height + 2 * pad) for e in extents]
    for text, (dx, dy, ring) in zip(texts, label_offsets(points, sizes, step=5.0)):
        text.set_position(((dx + pad) * to_points, (dy + pad) * to_points))
        text.arrow_patch.set_visible(ring > 1)  # moved off its first place: a line back to the point


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
    for x_key, x_name in catalogue.PLOTS:
        if y_key is None or not any(x_key in e and y_key in e for e in paired.values()):
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        lines, labels = defaultdict(list), []
        for name, r in table.items():
            e = paired.get(name, {})
            if x_key in e and y_key in e:
                lines[r["family"]].append((scale_of(r["config"]), name, e[x_key], e[y_key]))
        sx, sy = (100 if k in catalogue.PERCENT else 1 for k in (x_key, y_key))
        for fam, points in lines.items():
            points.sort()
            i = families.index(fam)
            ax.errorbar([p[2][0] * sx for p in points], [p[3][0] * sy for p in points],
                        xerr=[p[2][1] * sx for p in points], yerr=[p[3][1] * sy for p in points],
                        marker=MARKERS[i % len(MARKERS)], color=colours[i % len(colours)], capsize=2, lw=1, label=fam)
            labels += [(x * sx, y * sy, name.split()[1] if len(name.split()) > 1 else name, colours[i % len(colours)])
                       for _, name, (x, _), (y, _) in points]
        place_labels(ax, labels)
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(6))
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_powerlimits((-5, 6))  # plain decimals, no offset label
            axis.set_major_formatter(formatter)
        points_of = lambda key: " (pts)" if key in catalogue.PERCENT else ""  # noqa: E731
        ax.set_xlabel(f"{x_name}{points_of(x_key)}, difference to {reference}")
        ax.set_ylabel(f"{catalogue.header(y_key)}{points_of(y_key)}, difference to {reference}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, title="family")
        path = out / f"tradeoff_{x_key}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
        plt.close(fig)
        files.append(path)
    return files
