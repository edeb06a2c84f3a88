"""The numbers of a report: rows grouped by method config, means, the reference, and paired
differences with Student t intervals (`t_interval`). Pure: rows in, dicts out."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from .. import cards, catalogue
from ..guidance.spec import base_config, family, full_config, label, parse_spec, scale_of
from ..sweep import items_of, setting_of

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

def readable(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows a report can use, and a note on each one it leaves out: a record whose prompt or seed
    is no text or whole number, whose method config this version cannot read (an unknown method or
    setting, a bad skip policy), or whose input image is no file of the sweep (a path whose content
    does not give the record's id, such as a file outside the run)."""
    keep, notes = [], []
    for r in rows:
        try:
            if not isinstance(r.get("prompt"), str) or not isinstance(r.get("seed"), int):
                raise ValueError("its prompt or seed is missing")
            label(r["method"])
            if r.get("image") is not None and not input_image_of(r):
                raise ValueError(f"its image {str(r['image'])[:80]!r} is not the input the item was made from")
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            notes.append(f"record {r.get('id')} is left out: {str(err).splitlines()[0][:200]}")
            continue
        keep.append(r)
    return keep, notes


def input_image_of(row: dict) -> bool:
    """Whether the row's `image` is a file whose content, with the row's prompt, seed, method and
    setting, gives the row's id: the sweep's own input, never another file a record names."""
    from ..sweep import Item, file_digest

    path = Path(str(row["image"]))
    if not path.is_file() or path.stat().st_size > 1 << 28:  # an input frame is an image file
        return False
    item = Item(row["prompt"], row["seed"], row["method"], row.get("setting", {}), (), str(row["image"]),
                file_digest(path))
    return item.id == row.get("id")


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
        row = {c.key: mean_of(ok, c.key) for c in catalogue.COLUMNS if c.table}
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
        for key in catalogue.PAIRED:
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
    """JSON without NaN or infinity: NaN becomes null, +-infinity the string "inf" / "-inf" (the PSNR
    of identical clips); tuples become lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
