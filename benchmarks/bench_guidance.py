"""Time every guidance method against the CFG combination line, side by side.

    python benchmarks/bench_guidance.py [--repeats 30] [--threads N] [--contend] [--tiny]
    python benchmarks/bench_guidance.py --conditions [--repeats 100] [--runs 10]

`--threads N` sets torch's intra-op threads; `--contend` keeps every other core busy with a
spinning process while timing (a shared machine, or a data loader beside the sampler), where
each parallel operation pays a thread hand-off. `--conditions` runs SAMG and CFG against the
line under four conditions in turn (one thread; all threads; all threads with the other cores
busy, under OpenMP's default wait policy and under OMP_WAIT_POLICY=PASSIVE), each in a fresh
process, and prints one table of ratios and of the line's own time. Under the default policy
a worker thread spins after each parallel region and so competes with the busy core for its
time slice; whether it wins varies from process to process, and the line's own time with it.
With PASSIVE the workers sleep between regions and are woken promptly, and the timing is stable.
The process runs with glibc's mmap threshold raised (MALLOC_MMAP_THRESHOLD_), so large
tensors are reused from the heap rather than mapped afresh each call: the page faults of
fresh mappings would otherwise dominate and vary from run to run.

Shapes: CogVideoX-5B latents (1, 13, 16, 60, 90) as BFCHW and Wan 2.1 latents
(1, 16, 21, 60, 104) as BCFHW, float32 on the CPU. Methods run interleaved in one
process, so the ratios compare like with like; the baseline is the line the diffusers
pipelines run, `u + w * (c - u)`. Perturbation methods (stg, samg+stg) are timed on their
combination only; their real cost is the extra denoiser pass per step (the passes column).
"samg (compiled)" is SAMG with `guidance.fused.enable()`: its step compiled by torch.compile
(compiled before timing starts; needs a C++ compiler on the CPU).
Extra peak memory is measured per method in a fresh
subprocess: the rise of the resident-set high-water mark (reset via
/proc/self/clear_refs) during one call, in units of one latent, output included.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:  # set before torch allocates: re-execute with it
    os.environ.update(MALLOC_MMAP_THRESHOLD_=str(2**30), MALLOC_TRIM_THRESHOLD_=str(2**30))
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402

from samg_video import guidance  # noqa: E402

SHAPES = {"CogVideoX-5B": ((1, 13, 16, 60, 90), "BFCHW"), "Wan2.1": ((1, 16, 21, 60, 104), "BCFHW")}
if os.environ.get("BENCH_TINY"):  # --tiny: every row on small latents (a check that the script runs; set
    SHAPES = {name: ((1, 16, 3, 8, 8), layout) for name, (_, layout) in SHAPES.items()}  # before re-exec)
METHODS = {
    "cfg": {"method": "cfg", "scale": 7.5},
    "samg": {"method": "samg"},
    "samg (compiled)": {"method": "samg", "compiled": True},
    # the target row: every smoothing option (spatial, temporal, across steps)
    "samg+all smoothing": {"method": "samg", "spatial_sigma": 1.0, "temporal_sigma": 1.0, "step_ema": 0.5},
    "samg+all smoothing+bound": {"method": "samg", "spatial_sigma": 1.0, "temporal_sigma": 1.0, "step_ema": 0.5,
                                 "bound": 2.0},
    "samg+all+quantiles": {"method": "samg", "spatial_sigma": 1.0, "temporal_sigma": 1.0, "step_ema": 0.5,
                           "bound": 2.0, "quantiles": [0.01, 0.99]},
    "rescale": {"method": "rescale"},
    "apg": {"method": "apg", "norm_threshold": 15.0, "momentum": -0.5},
    "cfg_zero_star": {"method": "cfg_zero_star"},
    "interval": {"method": "interval", "interval": [0.2, 0.8]},
    "dynamic_cfg": {"method": "dynamic_cfg"},
    "mambo": {"method": "mambo"},
    "tcfg": {"method": "tcfg"},
    "fdg": {"method": "fdg"},
    "apg_mix": {"method": "apg_mix"},
    "stg (combination only)": {"method": "stg", "scale_stg": 1.0},
    "samg+stg (combination only)": {"method": "samg+stg", "scale_stg": 1.0, "stg_field": True},
}


def pipeline_line(u, c, w=7.5):
    return u + w * (c - u)


def make_callables(shape, layout, methods=None):
    g = torch.Generator().manual_seed(0)
    u, c, p = (torch.randn(shape, generator=g) for _ in range(3))
    calls = {"pipeline CFG line": lambda i: pipeline_line(u, c)}
    for label, cfg in (methods or METHODS).items():
        cfg = dict(cfg)
        compiled = cfg.pop("compiled", False)
        m = guidance.from_dict(cfg)
        m.reset()

        def call(i, m=m, compiled=compiled):
            guidance.fused.enable(compiled)  # the compiled step for this row only
            return m(u, c, step=i % 50, num_steps=50, layout=layout, pred_perturbed=p)
        calls[label] = call
    return calls


def time_calls(calls, repeats: int) -> dict[str, list[float]]:
    """Seconds of each of `repeats` interleaved calls per method (after one warm-up call each)."""
    times = {k: [] for k in calls}
    for k, f in calls.items():  # warm-up
        f(0)
    for r in range(repeats):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f(r + 1)
            times[k].append(time.perf_counter() - t0)
    return times


def time_all(calls, repeats: int) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in time_calls(calls, repeats).items()}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def peak_child(shape_name: str, label: str) -> None:
    """(Run in a subprocess.) Print the extra peak bytes of one call."""
    shape, layout = SHAPES[shape_name]
    calls = make_callables(shape, layout)
    f = calls[label]
    f(0)
    f(1)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS:")
    out = f(2)
    peak = _status("VmHWM:")
    del out
    print(json.dumps({"extra": peak - before}))


def peak_extra(shape_name: str, label: str) -> float | None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, __file__, "--peak-child", shape_name, label]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["extra"]


def spin() -> None:
    while True:
        pass


def contenders(n: int) -> list[multiprocessing.Process]:
    """n processes that keep a core busy each (daemons; terminated by the caller)."""
    procs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    return procs


CONDITION_ROWS = ("pipeline CFG line", "cfg", "samg", "samg (compiled)", "samg+all smoothing")


def conditions(repeats: int, runs: int = 1) -> None:
    """SAMG and CFG against the line under four conditions, each in a fresh process, `runs` times;
    a cell is the median ratio over the runs, with their range when there are several."""
    cores = os.cpu_count() or 1
    busy = ["--threads", str(cores), "--contend"]
    conds = {"1 thread": (["--threads", "1"], {}), f"{cores} threads": (["--threads", str(cores)], {}),
             f"{cores} threads, other cores busy": (busy, {}),
             f"{cores} threads, other cores busy, passive wait": (busy, {"OMP_WAIT_POLICY": "PASSIVE"})}
    results = {name: [] for name in conds}
    for _ in range(runs):
        for name, (extra, env) in conds.items():
            cmd = [sys.executable, __file__, "--json", "--repeats", str(repeats), *extra]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env})
            results[name].append(json.loads(out.stdout))
    print(f"torch {torch.__version__}, float32 CPU ({cores} cores), {repeats} interleaved calls per method and run; "
          "ratio to the CFG line (u + w (c - u)) measured in the same process"
          + (f"; {runs} runs, each in fresh processes" if runs > 1 else "") + "\n")
    for title, stat in (("Median call", statistics.median), ("Mean call (the expected cost)", statistics.fmean)):
        print(f"{title}: " + ("median (min-max) over the runs" if stat is statistics.median else
                              f"mean over the runs with a 95 % t interval (n = {runs})") + "\n")
        print("| latents | method | " + " | ".join(results) + " |")
        print("|---|---|" + "---:|" * len(results))
        for shape in SHAPES:
            line_ms = [[stat(r[shape]["pipeline CFG line"]) * 1e3 for r in per_run] for per_run in results.values()]
            print(f"| {shape} | CFG line itself, ms | " + " | ".join(cell(ms, stat) for ms in line_ms) + " |")
            for row in CONDITION_ROWS[1:]:
                ratios = [[stat(r[shape][row]) / stat(r[shape]["pipeline CFG line"]) for r in per_run]
                          for per_run in results.values()]
                print(f"| {shape} | {row} | " + " | ".join(cell(x, stat) for x in ratios) + " |")
        print()


def cell(values: list[float], stat) -> str:
    """One table cell for per-run values: median (min-max), or mean +- a 95 % t interval over the runs."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    if stat is statistics.median:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{statistics.fmean(values):.2f} +- {half:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--contend", action="store_true", help="keep the other cores busy while timing")
    p.add_argument("--conditions", action="store_true", help="SAMG and CFG under four thread conditions")
    p.add_argument("--runs", type=int, default=1, help="with --conditions: repeat each condition (fresh processes)")
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--tiny", action="store_true", help="small latents: check that every row runs, in seconds")
    p.add_argument("--peak-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.tiny and not os.environ.get("BENCH_TINY"):  # children (--conditions, --peak-child) inherit it
        os.environ["BENCH_TINY"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if args.peak_child:
        return peak_child(*args.peak_child)
    if args.conditions:
        return conditions(args.repeats, args.runs)
    if args.threads:
        torch.set_num_threads(args.threads)
    busy = contenders((os.cpu_count() or 1) - 1) if args.contend else []
    try:
        if args.json:
            only = {k: v for k, v in METHODS.items() if k in CONDITION_ROWS}
            out = {name: time_calls(make_callables(shape, layout, only), args.repeats)
                   for name, (shape, layout) in SHAPES.items()}
            print(json.dumps(out))
            return
        report(args)
    finally:
        for proc in busy:
            proc.terminate()


def report(args) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 CPU, median of {args.repeats}"
          + (", other cores busy" if args.contend else ""))
    for name, (shape, layout) in SHAPES.items():
        latent = torch.Size(shape).numel() * 4
        medians = time_all(make_callables(shape, layout), args.repeats)
        base = medians["pipeline CFG line"]
        print(f"\n### {name} {shape} {layout} (one latent = {latent / 2**20:.1f} MiB)\n")
        print("| method | denoiser passes per step | median ms | ratio to CFG line | extra peak memory (latents) |")
        print("|---|---:|---:|---:|---:|")
        for label, t in medians.items():
            extra = None if args.no_memory else peak_extra(name, label)
            mem = "n/a" if extra is None else f"{extra / latent:.2f}"
            config = {k: v for k, v in METHODS.get(label, {}).items() if k != "compiled"}
            passes = guidance.from_dict(config).denoiser_calls() if config else 2
            print(f"| {label} | {passes} | {t * 1e3:.2f} | {t / base:.2f} | {mem} |")


if __name__ == "__main__":
    main()
