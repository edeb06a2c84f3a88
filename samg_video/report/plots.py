"""The report's trade-off plots: quality against alignment, paired differences to the reference."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .. import catalogue
from ..atomic import atomic_path
from ..guidance.spec import scale_of


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
    for x_key, x_name in catalogue.PLOTS:
        if y_key is None or not any(x_key in e and y_key in e for e in paired.values()):
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        lines = defaultdict(list)
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
