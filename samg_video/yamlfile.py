"""The one YAML reader for files the project loads (sweep configs, guidance presets, prompt
suites, model cards): a regular file of at most `max_bytes`, read with a strict safe loader (no
aliases, which expand a small file into gigabytes; no repeated keys, where the last would
silently win; numbers as YAML 1.2 and Python read them: `010` is 10, `1:30` is text, not
YAML 1.1's octal 8 and base-60 90; hexadecimal, octal and binary stay text), every failure one
sentence naming the file.

    config = read_yaml("configs/sweeps/smoke.yaml", "Sweep config", hint="see configs/sweeps/")
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml

MAX_BYTES = 1 << 20  # a config, preset or suite is a short text file


INT = re.compile(r"^[-+]?[0-9]+$")
FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")


class StrictLoader(yaml.SafeLoader):
    """YAML without aliases and without repeated keys, its numbers decimal (YAML 1.2's core schema
    less its hexadecimal and octal forms)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed; write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:  # one pass: a file of 100,000 keys is read in a second
            key = self.construct_object(key_node, deep=deep)
            marker = key if isinstance(key, (str, int, float, bool, type(None))) else repr(key)
            if marker in seen:
                raise yaml.YAMLError(f"the key {key!r} is given twice")
            seen.add(marker)
        return super().construct_mapping(node, deep)


def _decimal_numbers(loader: type) -> None:
    """Replace YAML 1.1's int and float resolvers of `loader` with decimal ones (module docstring)."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver("tag:yaml.org,2002:int", INT, list("-+0123456789"))
    loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT, list("-+0123456789."))
    loader.add_constructor("tag:yaml.org,2002:int", lambda self, node: int(self.construct_scalar(node)))


_decimal_numbers(StrictLoader)


def kind(mode: int) -> str:
    return "folder" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "device or socket"


def parse_yaml(text: str):
    """YAML text as the strict loader reads it (raises yaml.YAMLError, also for nesting too deep to read)."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except RecursionError:
        raise yaml.YAMLError("it is nested too deeply") from None


def read_yaml(path: str | Path, what: str, hint: str = "", mapping: bool = True, max_bytes: int = MAX_BYTES,
              missing: type[Exception] = FileNotFoundError):
    """The YAML document of `path`; `what` names the file in messages ("Sweep config"), `hint`
    ends the missing-file sentence ("see configs/sweeps/"). `mapping`: the document must be a
    mapping. Raises `missing` for an absent path, ValueError for anything else wrong."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        raise missing(f"{what} {str(path)!r} is not a file{'; ' + hint if hint else ''}.") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (which would block), a device
        raise ValueError(f"{what} {str(path)!r} is not a file but a {kind(info.st_mode)}{'; ' + hint if hint else ''}.")
    if info.st_size > max_bytes:
        raise ValueError(f"{path} is larger than {max_bytes / 2**20:g} MiB; a {what.lower()} is a short YAML file.")
    try:
        data = parse_yaml(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid YAML ({str(err).splitlines()[0]}).") from None
    if mapping and not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a mapping ({what.lower()} keys and values).")
    return data


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
