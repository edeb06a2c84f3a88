"""A model's JSON config read as data before anything is built from it: a regular file of at most
MAX_CONFIG_BYTES that parses as JSON, with numbers no real model has refused (a depth above
MAX_DEPTH, a width or head count above MAX_WIDTH, heads x head width above it, any other integer
above MAX_INT, NaN), each refusal one sentence naming the file and key. Model folders
(`pipelines.registry`) and the VBench models' folders (`metrics.vbench`) are read through it."""

from __future__ import annotations

import json
import math
from pathlib import Path

MAX_CONFIG_BYTES = 1 << 20  # a component's JSON config is a few KB; tokenizer files are not configs
MAX_DEPTH = 1024  # layers / blocks of one stack (the largest video transformers have 60)
MAX_WIDTH = 1 << 16  # widths and head counts (the widest real layers: 53k; a video transformer's: 6k)
MAX_INT = 1 << 22  # any other integer: vocabularies (256k), positions (131k)
DEPTH_WORDS = ("layers", "blocks", "depth")
WIDTH_WORDS = ("dim", "channels", "heads", "hidden_size", "intermediate_size")


def check_numbers(value, where: str, key: str = "") -> None:
    """Every number of a config, nested: not NaN; an integer whose key names a depth at most MAX_DEPTH,
    one that names a width or a head count at most MAX_WIDTH (and heads x head width too), any other
    at most MAX_INT; ValueError naming the file and key."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_numbers(v, where, f"{key}.{k}" if key else str(k))
        heads, width = value.get("num_attention_heads"), value.get("attention_head_dim")
        if isinstance(heads, int) and isinstance(width, int) and heads * width > MAX_WIDTH:
            raise ValueError(f"{where}: {key + '.' if key else ''}num_attention_heads x attention_head_dim = "
                             f"{heads} x {width} is beyond any real model's width (at most {MAX_WIDTH}); the "
                             "folder's config is damaged or not a model's, so nothing is built from it.")
    elif isinstance(value, list):
        for v in value:
            check_numbers(v, where, key)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, float) and math.isnan(value):  # an infinity can be real (a scheduler's lambda_min_clipped)
        raise ValueError(f"{where}: {key} is NaN, not a number; this config cannot build a model.")
    elif isinstance(value, int) and "theta" not in key.lower():  # a rope base (1e6 and more) sizes nothing
        name = key.rsplit(".", 1)[-1].lower()
        depth = any(word in name for word in DEPTH_WORDS)
        width = not depth and any(word in name for word in WIDTH_WORDS)
        bound = MAX_DEPTH if depth else MAX_WIDTH if width else MAX_INT
        if abs(value) > bound:
            what = "a depth" if depth else "a width" if width else "a size"
            raise ValueError(f"{where}: {key} = {value} is beyond any real model's ({what} of at most {bound}); "
                             "the folder's config is damaged or not a model's, so nothing is built from it.")


def read_config(path: str | Path) -> dict:
    """The config at `path`, checked (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; a model folder's configs are plain JSON files.")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} is {size / 2 ** 20:.0f} MiB; a component config is a few KB, so this one is "
                         "damaged or not a config, and the folder is refused.")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is not valid JSON ({str(err)[:200]}).") from None
    check_numbers(config, str(path))
    return config
