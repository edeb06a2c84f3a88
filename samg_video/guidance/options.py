"""The one parser of KEY=VALUE options, wherever they are written: a method spec's ',' parts, a skip
policy's, `samg-video --set`, the ComfyUI node's options text."""

from __future__ import annotations

import yaml


def value(text: str):
    """A KEY=VALUE value: a number when it reads as one ('1e-3' too, which YAML 1.1 leaves a
    string), else as YAML reads it (booleans, lists, null, strings)."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def key_values(items, where: str, example: str) -> dict:
    """{key: value} of 'KEY=VALUE' items, each value as `value` reads it: the one parser of a
    method's options, wherever they are written (a spec's ',' parts, `--set`, the ComfyUI node's
    options text). An item without '=' or a key is one sentence naming `where`."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{where}: write KEY=VALUE (e.g. {example}); got {item!r}.")
        out[key.strip()] = value(text)
    return out
