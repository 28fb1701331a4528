"""``golf ablate``: toggle plugins of a recipe, run every variant with several seeds, compare."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

DESCRIPTION = """\
Run a recipe's plugin variants with several seeds and compare each with a base.

modes (T = the plugins given to --toggle):
  one-at-a-time  base = the recipe WITHOUT every plugin of T; one variant per plugin of T
                 adds that plugin alone (+a, +b, ...). What does each trick bring alone?
  leave-one-out  base = the recipe WITH every plugin of T; one variant per plugin of T
                 removes it (-a, -b, ...). What does each trick bring to the full stack?
  grid           every subset of T; base = the empty subset, then +a, +b, +a+b, ...

A toggled plugin the recipe lists keeps its place; one it does not list is added after the
recipe's plugins, in --toggle order. Seeds: the recipe's train.seed, +1, +2, ... (the same
for every variant). Every variant is resolved and validated before anything runs; the base
runs first. Each run is a normal run directory OUT/<variant>/seed<S>/ (as `golf run` with
--set plugins=[...] --set train.seed=S). Repeating the command after a crash skips the runs
whose result.json is complete.

writes OUT/ablation.json (per variant: plugins, per-seed val_bpb, mean, std, delta vs base,
Welch t and two-sided p, the challenge's bar, artifact bytes, train/eval seconds),
OUT/ablation.md (the table for a pull request), OUT/ablation.png (delta vs base, error bars
+-1 s.e.), OUT/curves.png (validation curves of every run).

bar: an improvement of at least 0.005 nats per token at p < 0.01 (one-sided Welch test of
mean(base) - mean(variant) > margin); bpb converts to nats/token as
bpb * ln2 * val_bytes / val_tokens, with the base runs' counts from result.json.
"""

EXAMPLES = """\
examples:
  golf ablate recipes/demo.toml --toggle qk-gain,leaky-relu-sq --seeds 2 --tiny --out runs/abl
  golf ablate pr1394 --toggle ema,xsa,depth-recurrence --mode leave-one-out --seeds 3 --out runs/pr1394-loo
"""


def cmd_ablate(args: argparse.Namespace) -> int:
    """golf ablate: plan (validating every variant), run or resume, aggregate, report."""
    from ..ablate import default_runner, parse_toggles, plan_ablation, run_ablation

    toggles = parse_toggles(args.toggle)
    out = Path(args.out)
    plan = plan_ablation(args.recipe, toggles, out, mode=args.mode, n_seeds=args.seeds,
                         sets=args.overrides, tiny=args.tiny)
    runs_per = len(plan.seeds)
    print(f"[ablate] {plan.recipe_path}: {plan.mode}, {len(plan.variants)} variants x {runs_per} seed(s) "
          f"= {len(plan.runs)} runs, all validated", flush=True)
    for v in plan.variants:
        print(f"[ablate]   {v.name:<24} {', '.join(v.plugins) or '(no plugins)'}", flush=True)
    if plan.variants[0].plugins != plan.base_recipe_plugins:
        print(f"[ablate] note: the base differs from the recipe's plugins ({', '.join(plan.base_recipe_plugins) or 'none'}) "
              f"because {plan.mode} starts from the recipe {'without' if plan.mode != 'leave-one-out' else 'with'} "
              f"every toggled plugin", flush=True)
    if args.dry_run:
        return 0

    def runner(recipe, run_dir):
        return default_runner(recipe, run_dir, echo=args.verbose)

    summary = run_ablation(plan, runner=runner)
    for v in summary["variants"]:
        print("[ablate] " + _one_line(v), flush=True)
    print(f"[ablate] wrote {out / 'ablation.json'}, ablation.md, ablation.png, curves.png")
    return 0


def _fmt(x, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def _one_line(v: dict) -> str:
    """One variant of the summary as a terminal line."""
    head = f"{v['name']:<24} val_bpb {_fmt(v.get('mean'), '.4f')} ± {_fmt(v.get('std'), '.4f')}"
    if v["name"] == "base":
        return head
    line = f"{head}  delta {_fmt(v.get('delta_bpb'), '+.4f')}  p {_fmt(v.get('p'), '.3g')}"
    return line + ("  passes the bar" if v.get("passes_bar") else "")


def register(subparsers) -> None:
    """Add ``golf ablate`` to the ``golf`` CLI."""
    p = subparsers.add_parser("ablate", help="toggle plugins, run variants with seeds, compare with a base",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipe path or shipped recipe name")
    p.add_argument("--toggle", required=True, metavar="A,B,...",
                   help="comma-separated plugins to toggle")
    p.add_argument("--mode", choices=["one-at-a-time", "leave-one-out", "grid"], default="one-at-a-time",
                   help="how variants are made (default one-at-a-time; see above)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="runs per variant, seeds train.seed .. train.seed+N-1 (default 1; the bar needs >= 2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value in every variant, TOML-typed (repeatable)")
    p.add_argument("--tiny", action="store_true", help="shrink sizes so every run fits a CPU in minutes")
    p.add_argument("--out", required=True, metavar="DIR", help="ablation folder (reuse it to resume)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the variants, run nothing")
    p.add_argument("--verbose", action="store_true", help="show every run's log lines on the terminal")
    p.set_defaults(func=cmd_ablate)
