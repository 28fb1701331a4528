"""``golf check RECIPE|RUN_DIR``: the legality audit, one table row per rule."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

DESCRIPTION = """\
Audit a recipe or a finished run against the challenge's rules and print one row per rule
(pass / FAIL / not judged / n/a / not checked) with its evidence; write compliance.json; exit 1
when a rule fails. A rule that is not checked fails unless the recipe declares why it cannot
apply ([check.exempt] rule = "why").

The audit is the run: everything after training runs in fresh audit processes, each on its own
copy of the dataset on disk: the reported run, a repeat of it, a base at a second batch geometry,
and one run per flip-test cut, whose validation shards on disk hold the stream with the cut's
tokens changed (shuffled over the processes, indistinguishable from the reported run).

  causality                     no score before a cut, nor the full row at the cut, moves when the
                                tokens from the cut on change on disk (per-target tolerance, capped)
  audit_reproduces              the repeat reproduces every score; the artifact is identical in every run
  normalization                 the session computes every NLL from the full row the adapter returns
  targets_after_scoring         no batch.y read before the batch is scored
  score_before_update           the eval ledger: updates read scored targets only
  scored_once                   coverage exactly 1 for every target
  no_validation_before_scoring  declared reads, unrecorded loads, file opens of validation shards
  document_overlap              validation documents found in the training shards (hashes)
  document_independence         for [check] document_independent = true: no other document's score moves
  train_data_after_clock        training data opened at eval time, or after the loop past the clock
  artifact_cap                  code + model bytes <= 16,000,000
  train_clock / eval_clock      600 s each, judged on 8xH100 only; eval counts decode and warm-up

RECIPE: trains it (with --tiny: the tiny sizes, 6 steps and a 4,096-target validation stream),
runs it, writes a run directory (--out) and checks it. RUN_DIR: reads resolved.toml, artifact.bin,
result.json; with a checkpoint of the run's last step every phase after training re-runs, else eval time.
"""

EXAMPLES = """\
examples:
  golf check recipes/pr1229.toml --tiny            fails causality and targets_after_scoring
  golf check runs/pr1394-seed1337                  audit a finished run
  golf check pr1413 --tiny --cuts 20 --seed 7      more cuts, a fixed seed
"""


def cmd_check(args: argparse.Namespace) -> int:
    """golf check: audit a recipe or a run directory; exit 1 when a rule fails."""
    from ..check import TINY_CHECK_OVERRIDES, CheckOptions, check_recipe, check_run_dir

    opts = CheckOptions(cuts=args.cuts, cuts_b=args.cuts_b, whole_cuts=args.whole_cuts, flips=args.flips, seed=args.seed, cap=args.tol_cap,
                        workers=args.workers, echo=not args.quiet)
    target = Path(args.target)
    if target.is_dir():
        if args.overrides or args.tiny:
            from ..errors import GolfError

            raise GolfError(f"{target}: --set and --tiny apply to a RECIPE, not to a run directory")
        report = check_run_dir(target, Path(args.out) if args.out else None, opts)
    else:
        from ..recipe import load_recipe

        sets = (list(TINY_CHECK_OVERRIDES) if args.tiny else []) + list(args.overrides)
        recipe = load_recipe(args.target, overrides=sets, tiny=args.tiny)
        out = Path(args.out) if args.out else Path("runs") / f"check-{Path(args.target).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        report = check_recipe(recipe, out, opts)
    if int(os.environ.get("RANK", "0")) == 0:
        print(report.table())
        if report.out_dir is not None:
            print(f"compliance: {report.out_dir / 'compliance.json'}")
    return 0 if report.passed else 1


def register(subparsers) -> None:
    """Add ``golf check``."""
    p = subparsers.add_parser("check", help="legality audit of a recipe or run directory (flip test, ledger, bytes, clocks)",
                              description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="RECIPE|RUN_DIR", help="a recipe (path or shipped name) or a finished run directory")
    p.add_argument("--tiny", action="store_true", help="RECIPE: the tiny CPU sizes (golf_core/tiny.py) and a short training")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="RECIPE: override a value, TOML-typed (repeatable)")
    p.add_argument("--out", default=None, help="where the run files and compliance.json go (RUN_DIR: default the run directory)")
    p.add_argument("--cuts", type=int, default=8, help="eval-time flip-test runs at the recipe's real windows per batch (default 8)")
    p.add_argument("--cuts-b", type=int, default=2, help="eval-time flip-test runs at the second batch geometry (default 2)")
    p.add_argument("--whole-cuts", type=int, default=2, help="flip-test runs of every phase after training (default 2)")
    p.add_argument("--flips", type=int, default=48, help="flipped positions per cut (default 48)")
    p.add_argument("--tol-cap", type=float, default=1e-4, help="largest per-target tolerance, nats (default 1e-4)")
    p.add_argument("--workers", type=int, default=2, help="audit processes at a time (default 2)")
    p.add_argument("--seed", type=int, default=None, help="cut, flip and order seed (default: a fresh one, recorded)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_check)
