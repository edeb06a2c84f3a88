"""Method specs and labels: the one parser of 'cfg:7.5' / 'samg:3-9,temporal_sigma=1' strings,
the one rule for parameters a user leaves out, and the one human-readable label per config.

Everything here derives from the method dataclasses (`dataclasses.fields`): a method's
head is its range (`w_min`, `w_max`) or its `scale`; a label shows the head, then every
parameter that differs from its default and every companion scale (a field whose metadata
says `label="always"`, such as `scale_stg`), in field order. Two different configs never
share a label. A method's base (`base_config`) is the same method and scale without its
options; perturbation guidance names the method it adds its term to (`without_perturbation`).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields

from .base import REGISTRY, Guidance
from .options import key_values, value  # noqa: F401  (the one KEY=VALUE parser, re-exported)
from .skip import parse_policy, split, with_skip


def method_defaults(card: dict | None, name: str | None) -> dict:
    """One rule for unspecified parameters: the card's recommended setting when `name` is its
    method (or no method is named), else the method's defaults with the card's guidance_scale
    as its scale (so `cfg` on Wan means CFG 5, the pipeline's own default)."""
    from . import create

    if card is None:
        return {"method": name}
    recommended = card["recommended"]
    if name is None or name == recommended["method"]:
        return dict(recommended)
    config = {"method": name}
    if name in REGISTRY and "scale" in create(name).to_dict():
        config["scale"] = card.get("guidance_scale", 7.5)
    return config


def parse_spec(spec: str, card: dict | None = None) -> Guidance:
    """'cfg:7.5', 'samg:5-12', 'apg:7.5,eta=0.5', 'samg:3-9,temporal_sigma=1', a label as `label`
    writes it ('samg 3-9 temporal_sigma=1') or a YAML preset path.

    Parameters the spec leaves out come from `card` (`method_defaults`) when one is given.
    """
    if " " in spec.strip() and ":" not in spec:  # a label: NAME HEAD KEY=VALUE ...
        name, *rest = spec.split()
        spec = name + (":" + ",".join(rest) if rest else "")
    from . import create, load_config

    if spec.endswith((".yaml", ".yml")):
        return load_config(spec)
    name, _, rest = spec.partition(":")
    parts = [p for p in rest.split(",") if p] if rest else []
    params = {k: v for k, v in method_defaults(card, name).items() if k != "method"}
    if parts and "=" not in parts[0]:
        head = parts.pop(0)
        if name in REGISTRY and ranged(name):
            lo, sep, hi = head.partition("-")
            if not sep:
                raise ValueError(f"Write a SAMG range as {name}:W_MIN-W_MAX (e.g. {name}:5-12), got {spec!r}.")
            params.update(w_min=float(lo), w_max=float(hi))
        else:
            params["scale"] = float(head)
    params.update(key_values(parts, f"method options after the scale in {spec!r}", "apg:7.5,eta=0.5"))
    return create(name, **params)


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _show(v) -> str:
    """A value as a label shows it: numbers short ('%g') unless that loses digits, then exact."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        short = f"{v:g}"
        return short if math.isinf(v) or float(short) == v else repr(v)
    return str(v)


def head_keys(name: str) -> tuple[str, ...]:
    """The parameters a spec writes right after the name: ('w_min', 'w_max') for a range, ('scale',), or ()."""
    names = {f.name for f in fields(REGISTRY[name])}
    return ("w_min", "w_max") if {"w_min", "w_max"} <= names else ("scale",) if "scale" in names else ()


def ranged(name: str) -> bool:
    """Whether a method is written NAME:W_MIN-W_MAX (it has a range of scales)."""
    return head_keys(name) == ("w_min", "w_max")


def defaults(name: str) -> dict:
    """A method's default config, {parameter: default} (lists for tuples, as in `to_dict`)."""
    return {f.name: _plain(f.default) for f in fields(REGISTRY[name]) if f.default is not MISSING}


def options(config: dict) -> list[tuple[str, object]]:
    """The (parameter, value) pairs a label shows after the head, in field order: companion scales
    always, every other parameter where it differs from its default."""
    name = config["method"]
    c = {k: _plain(v) for k, v in config.items()}
    shown = []
    for f in fields(REGISTRY[name]):
        if f.name in head_keys(name) or f.name not in c:
            continue
        if f.metadata.get("label") == "always" or c[f.name] != _plain(f.default):
            shown.append((f.name, c[f.name]))
    return shown


def skip_suffix(config: dict) -> str:
    """' skip every 3' for a config carrying a skip policy (`guidance.skip`), else ''."""
    policy = parse_policy(config.get("skip"))
    return "" if policy is None else f" skip {policy.label()}"


def without_skip(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "skip"}


def label(config: dict) -> str:
    """'cfg 7.5', 'samg 3-9', 'samg 3-9 temporal_sigma=1', 'stg 5 scale_stg=1', 'samg 3-9 skip every 3':
    a method config's short name (the head, then `options`, then its skip policy)."""
    if "skip" in config:
        return label(without_skip(config)) + skip_suffix(config)
    name = config["method"]
    keys = head_keys(name)
    if ranged(name):
        head = f"{name} {_show(config['w_min'])}-{_show(config['w_max'])}"
    else:
        head = f"{name} {_show(config['scale'])}" if keys and "scale" in config else name
    extras = [f"{k}={_show(v)}" for k, v in options(config)]
    return " ".join([head] + extras)


def family(config: dict) -> str:
    """The method family a config belongs to, for grouping across scales: the name and its
    options ('samg', 'samg temporal_sigma=1', 'stg scale_stg=1', 'samg skip every 3')."""
    if "skip" in config:
        return family(without_skip(config)) + skip_suffix(config)
    return " ".join([config["method"]] + [f"{k}={_show(v)}" for k, v in options(config)])


def full_config(config: dict) -> dict:
    """A config with every parameter filled in from the method's defaults (as `to_dict` writes it),
    a skip policy's too."""
    from . import from_dict

    method, policy = split(config)
    return with_skip(from_dict(method).to_dict(), policy)


def base_config(config: dict) -> dict | None:
    """The same method and scale without its options, as a full config; for perturbation guidance
    the method its term is added to, keeping that method's options ('samg+stg 1-3
    temporal_sigma=1 scale_stg=1' -> 'samg 1-3 temporal_sigma=1'; 'stg 2 scale_stg=1' -> 'cfg 2').
    None for a config that is its own base. A config with a skip policy: the same config computing
    every unconditional pass ('samg 3-9 skip every 3' -> 'samg 3-9')."""
    if "skip" in config:
        return full_config(without_skip(config))
    name = config["method"]
    under = getattr(REGISTRY[name], "without_perturbation", None)
    if under is not None:
        kept = {k: v for k, v in config.items() if k in defaults(under)}
        return full_config({**kept, "method": under})
    base = full_config({"method": name, **{k: config[k] for k in head_keys(name) if k in config}})
    return None if base == full_config(config) else base


def scale_of(config: dict) -> float:
    """The number a family is ordered by: the scale, or SAMG's w_max."""
    return float(config.get("scale", config.get("w_max", 0.0)))


SCALES = ("scale", "w_min", "w_max")  # a method's guidance strength (its head), as opposed to its options


def rescaled(method: Guidance, ratio: float) -> Guidance:
    """The same method with its guidance strength (`SCALES`) times `ratio`: for a second expert
    that its pipeline guides at guidance_scale_2 = ratio x guidance_scale (Wan 2.2 A14B)."""
    from . import from_dict

    config = method.to_dict()
    return from_dict({k: v * ratio if k in SCALES and isinstance(v, (int, float)) else v for k, v in config.items()})
