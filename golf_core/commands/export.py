"""``golf export RUN_DIR --out DIR``: a records folder with one self-contained train_gpt.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_export(args: argparse.Namespace) -> int:
    """golf export: write train_gpt.py, README.md, submission.json, requirements.txt and logs."""
    from ..export.folder import export_runs
    from ..export.submission import SubmissionInfo

    info = SubmissionInfo(author=args.author, github_id=args.github_id, name=args.name, blurb=args.blurb,
                          date=args.date, track=args.track)
    rep = export_runs(Path(args.run_dir), Path(args.out), compress=not args.no_compress, info=info,
                      allow_changed_code=args.allow_changed_code, readable=args.readable)
    for w in rep.warnings:
        print(f"golf export: warning: {w}", file=sys.stderr)
    counted = ""
    if rep.recorded_code_bytes is not None:
        counted = (" (= the run's code_bytes)" if rep.exact else f" (the run counted {rep.recorded_code_bytes})")
    print(f"wrote {rep.out_dir}: {', '.join(rep.files)}")
    print(f"train_gpt.py: {rep.code_bytes} bytes{counted}, {rep.modules} modules; seeds: {', '.join(map(str, rep.seeds))}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``golf export``."""
    p = subparsers.add_parser(
        "export", help="write a records folder (one self-contained train_gpt.py, README, submission.json, logs)",
        description="Export RUN_DIR (one run, or a folder of seed runs of one recipe) as a challenge records "
                    "folder: train_gpt.py holds the modules the run used, its plugins and its resolved recipe, "
                    "and runs without golf installed.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a golf run directory, or a folder of seed run directories")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--readable", action="store_true",
                   help="write the readable bundle (whole modules, lzma+base85) for review instead of the compact "
                        "script that code_bytes counts")
    p.add_argument("--no-compress", action="store_true",
                   help="write the readable bundle as plain source (implies --readable)")
    p.add_argument("--allow-changed-code", action="store_true",
                   help="ship the current sources even where they changed since the run")
    p.add_argument("--author", default="", help="submission.json author")
    p.add_argument("--github-id", default="", help="submission.json github_id")
    p.add_argument("--name", default="", help="submission.json name (default: the recipe's [meta] source)")
    p.add_argument("--blurb", default="", help="submission.json blurb (default: the plugin stack)")
    p.add_argument("--date", default="", help="submission.json date (default: the run's, YYYY-MM-DD)")
    p.add_argument("--track", default="", help="10min_16mb or non_record_16mb (default: from the runs' hardware and cap)")
    p.set_defaults(func=cmd_export)
