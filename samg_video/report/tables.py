"""The report's tables: one `Table` (headers, cell texts, the best cell of each column with a
direction, the reference row) rendered as markdown or as a sortable HTML table; the builders
of the level, paired-difference and every-item tables. Headers, units and directions come
from `samg_video.catalogue`."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from .. import catalogue
from ..catalogue import Column
from .stats import SMALL_N, config_key, method_names, number, order


def cell(value: float, key: str) -> str:
    """A value of column `key` as the tables show it: a percentage, or its column's decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    column = catalogue.column(key)
    return f"{value:.1%}" if column.percent else f"{value:.{column.digits}f}"

def best_rows(values: list[float], key: str) -> set[int]:
    """Indices of the best finite value(s) of a column, by its direction (none when it has none)."""
    better = catalogue.column(key).better
    if better is None:
        return set()
    finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
    if len(finite) < 2:
        return set()
    best = (max if better == "higher" else min)(v for v, _ in finite)
    winners = {i for v, i in finite if v == best}
    return winners if len(winners) < len(finite) else set()  # a column where all tie has no best

@dataclass
class Table:
    """A report table: headers, cell texts, and what the page marks (best cells per column, the reference row)."""

    head: list[str]
    body: list[list[str]]
    best: dict[int, set[int]] = field(default_factory=dict)  # column -> rows
    reference: str | None = None
    tips: list[str] = field(default_factory=list)  # per column: what it means (its header's tooltip)

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
        tips = self.tips + [""] * (len(self.head) - len(self.tips))
        head = "".join(f"<th title='{html.escape(f'{t}; click to sort' if t else 'click to sort', quote=True)}'>"
                       f"{html.escape(h)}</th>" for h, t in zip(self.head, tips))
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

def table_rows(table: dict[str, dict], columns: list[Column], reference: str | None = None) -> Table:
    """The columns that some method has, with the best value of each marked."""
    present = [c for c in columns if any(not math.isnan(r[c.key]) for r in table.values())]
    head = ["method", "n", "failed"] + [c.header for c in present]
    body = [[name, str(r["n"]), str(r["failed"])] + [cell(r[c.key], c.key) for c in present]
            for name, r in table.items()]
    best = {3 + j: best_rows([r[c.key] for r in table.values()], c.key) for j, c in enumerate(present)}
    tips = ["method and its settings", "clips measured", "clips that failed"] + [c.described() for c in present]
    return Table(head, body, best, reference, tips)

def paired_header(key: str) -> str:
    return f"{catalogue.header(key)} ({'pts' if key in catalogue.PERCENT else 'diff.'})"

def paired_rows(paired: dict[str, dict], reference: str, names) -> Table:
    """Mean difference ± half width per metric, n per row (percentages in points); a row
    whose n is below SMALL_N is flagged in its n cell."""
    keys = [k for k in catalogue.PAIRED if any(k in e for e in paired.values())]
    head = ["method", "n"] + [paired_header(k) for k in keys]
    body, means = [], {k: [] for k in keys}
    for name in names:
        if name == reference or name not in paired:
            continue
        e = paired[name]
        scale = {k: 100 if k in catalogue.PERCENT else 1 for k in keys}
        fmt = {k: ".1f" if k in catalogue.PERCENT else f".{catalogue.column(k).digits}f" for k in keys}
        cells = [f"{e[k][0] * scale[k]:+{fmt[k]}} ± {e[k][1] * scale[k]:{fmt[k]}}" if k in e else "n/a" for k in keys]
        body.append([name, f"{e['n']}{' (few)' if e['n'] < SMALL_N else ''}"] + cells)
        for k in keys:
            means[k].append(e[k][0] if k in e else math.nan)
    best = {2 + j: best_rows(means[k], k) for j, k in enumerate(keys)}
    tips = ["method and its settings", "pairs (same prompt and seed)"] + [
        f"difference to the reference: {catalogue.column(k).described()}" for k in keys]
    return Table(head, body, best, tips=tips)

def verdict(row: dict) -> str:
    """'yes' / 'no' for whether the clip met its prompt (where a scorer judged it), else ''."""
    value = row.get("prompt_correct")
    return "" if value is None else ("yes" if value >= 1 else "no")

def items_table(rows: list[dict]) -> Table:
    """Every item: prompt, seed, method, verdict, the main metrics, seconds (where recorded), error."""
    names = method_names(rows)
    keys = [k for k in catalogue.BRIEF if any(isinstance(r.get(k), (int, float)) for r in rows)]
    head = ["prompt", "seed", "method", "prompt met"] + [catalogue.header(k) for k in keys] + ["seconds", "error"]
    body = []
    for r in sorted(rows, key=lambda r: (r["prompt"], r["seed"], order(r["method"]))):
        body.append([r["prompt"], str(r["seed"]), names[config_key(r["method"])], verdict(r)]
                    + [cell(number(r.get(k)), k) for k in keys]
                    + [f"{r['seconds']:.1f}" if isinstance(r.get("seconds"), (int, float)) else "",
                       r.get("error", "")])
    return Table(head, body)
