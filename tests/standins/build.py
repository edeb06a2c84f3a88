"""Write every registry model's stand-in (and AnimateDiff's motion adapter) into one folder, for the
benchmarks: `python tests/standins/build.py OUT`. OUT/sizes.json holds each stand-in's frames,
height and width."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this is a script of the tests folder

import standins  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    for name in standins.NAMES:
        standins.write(name, out / name)
    standins.write_motion_adapter(out / "motion-adapter")
    (out / "sizes.json").write_text(json.dumps({n: list(standins.SIZES[n]) for n in standins.NAMES}, indent=1))
    print(f"wrote {len(standins.NAMES)} stand-ins to {out}")
