"""``golf check RECIPE|RUN_DIR``: the legality audit, one table row per rule."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

DESCRIPTION = """\
Audit a recipe or a finished run against the challenge's rules and print one row per rule
(pass / FAIL / not judged / not checked) with its evidence; write compliance.json; exit 1 when
a rule fails.

  causality                     the flip test: the post-training pipeline (pre-quant adaptation,
                                calibration, quantization, eval-time adaptation, scoring) runs on a
                                truncated validation stream twice as is (noise floor -> tolerance),
                                then once per probe with token j changed; no score at t < j (nor
                                log p of the original token at t = j) may move
  normalization                 reported NLL = -log softmax over the whole vocabulary (logit tap on
                                compute_logits/forward_logits); with --sweep, the sum over every
                                token id of the scored p at one row (one eval run per id) = 1
  score_before_update           the eval ledger: updates read scored targets only, and never
                                precede the scoring of an earlier target
  scored_once                   coverage exactly 1 for every target
  no_validation_before_scoring  validation reads outside the eval session, declared trains-on-val
  artifact_cap                  code + model bytes <= 16,000,000
  train_clock / eval_clock      600 s each, judged on 8xH100 only (elsewhere: not judged)

RECIPE: trains it (with --tiny: the tiny sizes, 6 steps and a 4,096-target validation stream),
runs it, writes a run directory (--out) and checks it. RUN_DIR: reads resolved.toml, artifact.bin, result.json; with a checkpoint
of the run's last step the flip test covers the whole post-training pipeline, else eval time.
"""

EXAMPLES = """\
examples:
  golf check recipes/pr1229.toml --tiny            fails causality (scored-position SLOT)
  golf check runs/pr1394-seed1337                  audit a finished run
  golf check pr1229 --tiny --sweep on              also fails normalization (sum of p != 1)
"""


def cmd_check(args: argparse.Namespace) -> int:
    """golf check: audit a recipe or a run directory; exit 1 when a rule fails."""
    from ..check import TINY_CHECK_OVERRIDES, CheckOptions, check_recipe, check_run_dir

    opts = CheckOptions(probes=args.probes, flip_targets=args.flip_tokens, seed=args.seed,
                        reuse_artifact=not args.full_pipeline, sweep=args.sweep, echo=not args.quiet)
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
    p.add_argument("--probes", type=int, default=8, help="flip-test probes (default 8)")
    p.add_argument("--flip-tokens", type=int, default=None, metavar="N",
                   help="targets in the flip test's truncated stream (default 8 eval windows, or 3 chunks "
                        "when the adapter updates chunk by chunk)")
    p.add_argument("--sweep", choices=("off", "auto", "on"), default="off",
                   help="vocabulary sweep for normalization, one eval run per token id: off (default), "
                        "auto = when the logit tap cannot verify it, on = always")
    p.add_argument("--full-pipeline", action="store_true",
                   help="re-run pre-quant and quantization for every probe even when nothing before scoring reads validation data")
    p.add_argument("--seed", type=int, default=0, help="probe and flip-token seed")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_check)
