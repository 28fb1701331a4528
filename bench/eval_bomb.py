"""Benchmark: peak memory of ``golf eval`` on a decompression bomb vs on a valid demo artifact.

The bomb is a golf artifact with an honest header (the demo recipe and model, no plugins) whose
zlib payload is ``--bomb-mib`` MiB of zeros (1 GiB compresses to about 1 MB). Each ``golf eval``
runs in its own subprocess, which reports its peak RSS (``ru_maxrss``) and exit code. Bounded
decompression (``golf_core/quant/bounded.py``) must refuse the bomb in one line with a peak below
the valid artifact's. Prints a table and writes bench/results/eval_bomb.json.

    python bench/eval_bomb.py --valid runs/demo/artifact.bin [--bomb-mib 1024]

Without ``--valid`` a demo artifact is made first (``golf run demo --set train.iterations=2``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

CHILD = """
import json, resource, sys
from golf_core.cli import main
rc = main(["eval", sys.argv[1], "--json"])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
open(sys.argv[2], "w").write(json.dumps({"rc": rc, "peak_rss_mib": peak_kib / 1024}))
"""


def make_bomb(path: Path, mib: int) -> int:
    """Write the bomb artifact; returns its size in bytes."""
    from golf_core.quant.artifact import Artifact, write_artifact
    from golf_core.recipe import load_recipe

    recipe = load_recipe("demo").to_dict()
    recipe["plugins"], recipe["options"] = [], {}
    comp = zlib.compressobj(9)
    zeros = b"\0" * (1 << 20)
    payload = b"".join(comp.compress(zeros) for _ in range(mib)) + comp.flush()
    art = Artifact(codec="zlib", payload=payload, model={**recipe["model"], "vocab_size": recipe["data"]["vocab_size"]},
                   plugins=[], extra={"golf_core": "bench", "recipe": recipe})
    return write_artifact(path, art)


def measure(artifact: Path, work: Path) -> dict:
    """``golf eval artifact`` in a fresh process: exit code, peak RSS, last stderr line."""
    report = work / f"{artifact.parent.name}-{artifact.stem}.json"
    p = subprocess.run([sys.executable, "-c", CHILD, str(artifact), str(report)], capture_output=True, text=True)
    out = json.loads(report.read_text())
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    out["last_stderr_line"] = lines[-1] if lines else ""
    out["artifact_bytes"] = artifact.stat().st_size
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valid", type=Path, help="a valid demo artifact.bin (default: make one)")
    ap.add_argument("--bomb-mib", type=int, default=1024, help="MiB of zeros inside the bomb")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "eval_bomb.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="golf-bomb-") as tmp:
        work = Path(tmp)
        valid = args.valid
        if valid is None:
            run = work / "valid"
            subprocess.run([sys.executable, "-m", "golf_core.cli", "run", "demo", "--set", "train.iterations=2",
                            "--out", str(run), "--quiet"], check=True)
            valid = run / "artifact.bin"
        bomb = work / "bomb" / "artifact.bin"
        bomb.parent.mkdir()
        make_bomb(bomb, args.bomb_mib)
        rows = {"valid": measure(valid, work), "bomb": measure(bomb, work)}
    print(f"{'artifact':<8} {'file bytes':>11} {'exit':>5} {'peak RSS MiB':>13}  last stderr line")
    for name, r in rows.items():
        print(f"{name:<8} {r['artifact_bytes']:>11} {r['rc']:>5} {r['peak_rss_mib']:>13.1f}  {r['last_stderr_line'][:90]}")
    ok = rows["bomb"]["rc"] == 2 and rows["bomb"]["peak_rss_mib"] < rows["valid"]["peak_rss_mib"]
    print(f"bomb refused with a lower peak than the valid artifact: {ok}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bomb_mib": args.bomb_mib, "rows": rows, "bomb_below_valid": ok}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
