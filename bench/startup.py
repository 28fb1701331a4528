"""Benchmark: how long ``golf`` takes to answer commands that need no torch, and whether it imports it.

Each command runs ``--repeat`` times in a fresh interpreter; the median wall time is reported,
next to the same command with the plugins' modules loaded first (what every command did before
``golf_core.cli.needs_plugin_commands``: the plugins import torch). Prints a table and writes
bench/results/startup.json.

    python bench/startup.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["recipes"], ["run", "--help"], ["config", "show", "demo"])

CHILD = """
import contextlib, io, sys
from golf_core import cli
argv = sys.argv[2:]
if sys.argv[1] == "plugins-first":
    from golf_core.plugins import iter_installed_modules
    list(iter_installed_modules())
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(argv)
    except SystemExit:
        pass
print("torch" in sys.modules)
"""


def timed(mode: str, argv: list, repeat: int) -> tuple[float, bool]:
    """Median seconds of ``repeat`` fresh runs, and whether torch was imported."""
    times, torch_loaded = [], False
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", CHILD, mode, *argv], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        torch_loaded = p.stdout.strip().splitlines()[-1] == "True"
    return statistics.median(times), torch_loaded


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "startup.json")
    args = ap.parse_args()
    rows = []
    print(f"{'command':<24} {'now s':>7} {'torch':>6} {'plugins first s':>16} {'torch':>6}")
    for argv in COMMANDS:
        now, t_now = timed("core", argv, args.repeat)
        before, t_before = timed("plugins-first", argv, args.repeat)
        rows.append({"command": " ".join(argv), "seconds": now, "imports_torch": t_now,
                     "seconds_plugins_first": before, "imports_torch_plugins_first": t_before})
        print(f"{' '.join(argv):<24} {now:>7.2f} {str(t_now):>6} {before:>16.2f} {str(t_before):>6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
