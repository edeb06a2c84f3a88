"""Method specs and labels: the one parser of 'cfg:7.5' / 'samg:3-9,temporal_sigma=1' strings,
the one rule for parameters a user leaves out, and the one human-readable label per config.
"""

from __future__ import annotations

from .base import REGISTRY, Guidance

SAMG_OPTIONS = (("normalize", "clip"), ("quantiles", [0.0, 1.0]), ("temporal_sigma", 0.0), ("temporal_mode", "fixed"),
                ("renormalize", False), ("spatial_sigma", 0.0), ("step_ema", 0.0), ("bound", None),
                ("interval", [0.0, 1.0]))
PERTURBATION_OPTIONS = (("layers", None), ("mode", "block"), ("fqn", "auto"))
LABEL_OPTIONS = {  # parameters shown in a label when they differ from these defaults
    "samg": SAMG_OPTIONS,
    "samg+stg": SAMG_OPTIONS + (("scale_stg", None), ("stg_field", False)) + PERTURBATION_OPTIONS
    + (("stg_interval", [0.0, 1.0]),),
    "stg": (("scale_stg", None),) + PERTURBATION_OPTIONS + (("interval", [0.0, 1.0]),),
    "slg": (("scale_slg", None),) + PERTURBATION_OPTIONS + (("interval", [0.01, 0.2]),),
    "pag": (("scale_pag", None), ("layers", None), ("mode", "attention"), ("fqn", "auto"), ("interval", [0.01, 0.2])),
    "fdg": (("scale_low", None), ("parallel_weight", 1.0)),
    "tcfg": (("per", "clip"),),
    "apg_mix": (("cfg_scale", None), ("start_step", None)),
}
RANGED = ("samg", "samg+stg")  # methods written NAME:W_MIN-W_MAX


def value(text: str):
    """A KEY=VALUE value: a number when it reads as one ('1e-3' too, which YAML 1.1 leaves a
    string), else as YAML reads it (booleans, lists, null, strings)."""
    import yaml

    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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
    """'cfg:7.5', 'samg:5-12', 'apg:7.5,eta=0.5', 'samg:3-9,temporal_sigma=1' or a YAML preset path.

    Parameters the spec leaves out come from `card` (`method_defaults`) when one is given.
    """
    from . import create, load_config

    if spec.endswith((".yaml", ".yml")):
        return load_config(spec)
    name, _, rest = spec.partition(":")
    parts = [p for p in rest.split(",") if p] if rest else []
    params = {k: v for k, v in method_defaults(card, name).items() if k != "method"}
    if parts and "=" not in parts[0]:
        head = parts.pop(0)
        if name in RANGED:
            lo, sep, hi = head.partition("-")
            if not sep:
                raise ValueError(f"Write a SAMG range as {name}:W_MIN-W_MAX (e.g. {name}:5-12), got {spec!r}.")
            params.update(w_min=float(lo), w_max=float(hi))
        else:
            params["scale"] = float(head)
    for item in parts:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"Method options are KEY=VALUE after the scale, e.g. apg:7.5,eta=0.5; got {item!r}.")
        params[key] = value(text)
    return create(name, **params)


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def label(config: dict) -> str:
    """'cfg 7.5', 'samg 3-9', 'samg 3-9 temporal_sigma=1', 'stg 5 scale_stg=1': a method config's
    short name (the scale or range, then the options in LABEL_OPTIONS that differ from their default)."""
    c = {k: _plain(v) for k, v in config.items()}
    name = c.pop("method")
    extras = [f"{k}={_show(c[k])}" for k, default in LABEL_OPTIONS.get(name, ()) if k in c and c[k] != default]
    if name in RANGED:
        head = f"{name} {c['w_min']:g}-{c['w_max']:g}"
    else:
        head = f"{name} {c['scale']:g}" if "scale" in c else name
    return head + (" " + " ".join(extras) if extras else "")


def family(config: dict) -> str:
    """The method family a config belongs to, for grouping: the method name, and for SAMG
    its options apart from the range ('samg', 'samg temporal_sigma=1')."""
    text = label(config)
    if config["method"] not in RANGED:
        return config["method"]
    return " ".join([config["method"]] + text.split()[2:])


def scale_of(config: dict) -> float:
    """The number a family is ordered by: the scale, or SAMG's w_max."""
    return float(config.get("scale", config.get("w_max", 0.0)))
