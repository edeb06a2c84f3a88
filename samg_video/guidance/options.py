"""The one parser of KEY=VALUE options, wherever they are written: a method spec's ',' parts, a skip
policy's, `samg-video --set`, the ComfyUI node's options text."""

from __future__ import annotations

from ..yamlfile import value  # noqa: F401  (the one reading of a written value; re-exported)


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
