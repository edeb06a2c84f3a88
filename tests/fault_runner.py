"""Test-only wrapper: run `samg-video` and end the process (os._exit(137), as a kill would) at the
k-th fault point, where a fault point is an atomic rename (`samg_video.atomic.commit`) or the
middle of a manifest line (`samg_video.sweep.append_line`, which then writes half its line, and
ends with 143, as a SIGTERM would, so a caller can tell the two kinds apart).

    python tests/fault_runner.py K sweep CONFIG --out RUN      # one run; exit code 137 when killed
    python tests/fault_runner.py serve                         # many runs, one import of the libraries

`serve` reads one JSON line per run from stdin, {"fault": K, "argv": [...]}, runs it in a forked
child (a process of its own, ended by os._exit as before; the libraries are imported once, in
the parent, before any fork) and writes the child's exit code as one line to stdout (the child's
own output goes to /dev/null).
"""

import json
import os
import sys

from samg_video import atomic, cli, sweep

calls = {"n": 0}
AT = {"k": 0}


def fault() -> bool:
    calls["n"] += 1
    return calls["n"] == AT["k"]


def commit(tmp, path, _commit=atomic.commit):
    if fault():
        os._exit(137)  # the temporary is left behind, as after a kill
    _commit(tmp, path)


def append_line(path, row, _append=sweep.append_line):
    if fault():
        line = json.dumps(row, allow_nan=False) + "\n"
        with open(path, "a") as fh:
            fh.write(line[:len(line) // 2])
        os._exit(143)  # a torn line, which the resume drops
    _append(path, row)


atomic.commit = commit
sweep.append_line = append_line


def run(fault_at: int, argv: list[str]) -> int:
    AT["k"], calls["n"] = fault_at, 0
    return cli.main(argv)


def serve() -> None:
    import accelerate  # noqa: F401  (what a sweep imports, loaded once before the forks)
    import diffusers  # noqa: F401
    import torch  # noqa: F401

    from samg_video import evaluation, generate  # noqa: F401

    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one run, ended by its own exit or by a fault; its printing is not the protocol's
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            rc = 1
            try:
                rc = run(job["fault"], job["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    else:
        sys.exit(run(int(sys.argv[1]), sys.argv[2:]))
