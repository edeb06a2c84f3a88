"""Test-only wrapper: run `samg-video` and end the process (os._exit(137), as a kill would) at the
k-th fault point, where a fault point is an atomic rename (`samg_video.atomic.commit`) or the
middle of a manifest line (`samg_video.sweep.append_line`, which then writes half its line).

    python tests/fault_runner.py K sweep CONFIG --out RUN
"""

import json
import os
import sys

from samg_video import atomic, cli, sweep

calls = {"n": 0}
AT = int(sys.argv[1])


def fault() -> bool:
    calls["n"] += 1
    return calls["n"] == AT


def commit(tmp, path, _commit=atomic.commit):
    if fault():
        os._exit(137)  # the temporary is left behind, as after a kill
    _commit(tmp, path)


def append_line(path, row, _append=sweep.append_line):
    if fault():
        line = json.dumps(row, allow_nan=False) + "\n"
        with open(path, "a") as fh:
            fh.write(line[:len(line) // 2])
        os._exit(137)  # a torn line, which the resume drops
    _append(path, row)


atomic.commit = commit
sweep.append_line = append_line
sys.exit(cli.main(sys.argv[2:]))
