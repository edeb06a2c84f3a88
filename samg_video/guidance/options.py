"""The one parser of KEY=VALUE options, wherever they are written: a method spec's ',' parts, a skip
policy's, `samg-video --set`, the ComfyUI node's options text."""

from __future__ import annotations

import yaml

from ..yamlfile import parse_yaml


MAX_DIGITS = 100  # a longer number is no setting: refused, not read as inf


def value(text: str):
    """A KEY=VALUE value as the project's YAML reader reads it (`yamlfile.parse_yaml`: numbers decimal,
    as YAML 1.2 and Python write them, so '010' is 10 and '1:30' or '0x10' stay text; booleans, lists,
    null, strings); a number of more than MAX_DIGITS characters is refused in one sentence."""
    bare = text.strip()
    if len(bare) > MAX_DIGITS and bare.lstrip("+-").replace(".", "", 1).replace("e", "", 1).isdigit():
        raise ValueError(f"the number {bare[:12]}... ({len(bare)} characters) is out of any setting's range.")
    try:
        return parse_yaml(text)
    except yaml.YAMLError:
        return text


def key_values(items, where: str, example: str) -> dict:
    """{key: value} of 'KEY=VALUE' items, each value as `value` reads it: the one parser of a
    method's options, wherever they are written (a spec's ',' parts, `--set`, the ComfyUI node's
    options text). An item without '=' or a key, or a key given twice, is one sentence naming `where`."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{where}: write KEY=VALUE (e.g. {example}); got {item!r}.")
        if key.strip() in out:
            raise ValueError(f"{where}: {key.strip()} is given twice ({item!r}); write each setting once.")
        out[key.strip()] = value(text)
    return out
