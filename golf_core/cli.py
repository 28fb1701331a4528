"""The ``golf`` command."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from . import __version__
from .errors import GolfError
from .launch import add_launch_args, report_worker_error

#: Sub-command modules of ``golf_core.commands`` (each has ``register(subparsers)``).
COMMAND_MODULES = ("data", "ablate", "check", "export", "eval")

EPILOG = """examples:
  golf run recipes/demo.toml                      the embedded default, on the bundled demo corpus
  golf run recipes/pr1394.toml --tiny             any recipe's whole stack on a CPU in minutes
  golf run recipes/pr1394.toml --set options.qk-gain.init=5.25 --out runs/qk525
  golf validate recipes/pr1394.toml               resolve, validate, print plugin order and params
  golf plugins --json                             installed plugins, hooks, options, legality
commands that plugins add are run as `golf <command>`; `golf plugins` lists the installed plugins
"""


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe path or shipped recipe name (e.g. pr1394)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value, TOML-typed (repeatable), e.g. --set train.seed=42")
    p.add_argument("--tiny", action="store_true",
                   help="shrink sizes so the whole stack runs on a CPU in minutes (golf_core/tiny.py)")


def _load(args: argparse.Namespace):
    from .recipe import load_recipe

    return load_recipe(args.recipe, overrides=args.overrides, tiny=args.tiny)


# ---------------------------------------------------------------------------------------------


def _checkpoint_every(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no checkpoints) or a positive number of steps, not {text!r}")
    return n


def _rank0_decides(decide: Any) -> Any:
    """``decide()`` on rank 0 only, its answer (or its GolfError) on every rank: under torchrun the
    run directory is the one rank 0 chose, from rank 0's clock."""
    from .train import distributed as D

    answer: tuple[Any, Optional[str]] = (None, None)
    if D.get_rank() == 0:
        try:
            answer = (decide(), None)
        except GolfError as e:
            answer = (None, str(e))
    answer = D.broadcast_object(answer)
    if answer[1] is not None:
        raise GolfError(answer[1])
    return answer[0]


def cmd_run(args: argparse.Namespace) -> int:
    """golf run: train, quantize, score and audit a recipe.

    Order: the recipe, its plugins and options, and every data file the run will read are checked
    first; only then is the run directory claimed (an existing run is refused unless ``--force``
    replaces it or ``--resume`` continues it) and written.
    """
    from .launch import launch, wants_launch

    if wants_launch(args):
        return launch(args, args.argv)
    from .data.preflight import preflight_run
    from .run import run_recipe
    from .rundir import load_run_recipe
    from .plugins import activate

    resume_ckpt: Optional[Path] = None
    if args.resume:
        if args.recipe or args.out or args.force:
            raise GolfError("--resume continues the run recorded in its folder: give no RECIPE, --out or --force")
        from .train.checkpoint import resolve_resume

        out, resume_ckpt = resolve_resume(args.resume, log=lambda m: print(f"golf: {m}", file=sys.stderr))
        recipe = load_run_recipe(out)
        if args.overrides:
            raise GolfError("--resume repeats the recorded recipe: --set is not accepted")
    else:
        if not args.recipe:
            raise GolfError("golf run needs a RECIPE (or --resume DIR)")
        recipe = _load(args)
        out = None
    if args.checkpoint_every is not None:
        recipe.train.checkpoint_every = args.checkpoint_every
    activate(recipe)  # plugin names and options: a recipe error leaves nothing behind
    preflight_run(recipe)  # every shard, the tokenizer and the byte tables, before any compute
    from .train.distributed import init_distributed

    init_distributed(recipe.train.device)  # under torchrun: the group that agrees on the run dir
    if out is None:
        out = _rank0_decides(lambda: _claim(args))
    result = run_recipe(recipe, out, resume=resume_ckpt, echo=not args.quiet)
    from .train.distributed import destroy_distributed

    destroy_distributed()  # under torchrun: every rank leaves together
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"val_bpb:{result['val_bpb']:.8f} artifact_bytes:{result['artifact_bytes']} "
              f"under_cap:{result['under_cap']} run_dir:{out}")
    return 0


def _claim(args: argparse.Namespace) -> Path:
    from .rundir import claim_run_dir, default_run_dir

    out = Path(args.out) if args.out else default_run_dir(args.recipe)
    claim_run_dir(out, force=args.force)
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    """golf validate: resolve and validate a recipe, print plugin order and parameter count."""
    from .run import count_params
    from .plugins import ALL_HOOKS, activate, hook_kind
    from .technique import by_severity

    recipe = _load(args)
    ap = activate(recipe)
    print(f"recipe: {recipe.source_path}")
    print(f"plugins: {' -> '.join(ap.order) if ap.order else '(none: the baseline)'}")
    for hook in ALL_HOOKS:
        if hook_kind(hook) == "registration":
            continue
        names = ap.providers(hook)
        if names:
            print(f"  {hook} [{hook_kind(hook)}]: {', '.join(names)}")
    tracks = by_severity(ap.legality().values()) or ["fixed-predictor"]
    print(f"legality: {', '.join(tracks)} (declared: {recipe.meta.legality})")
    n_params = count_params(recipe, ap)
    print(f"params: {n_params}")
    logged = recipe.meta.model_params
    if logged is not None:
        verdict = "equal" if logged == n_params else f"golf {n_params - logged:+d}"
        print(f"record model_params: {logged} ({verdict})")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """golf plugins: list installed plugins."""
    from .plugins import registry

    rows = registry().describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no golf plugins installed")
    for r in rows:
        if "error" in r:
            print(f"{r['name']} {r['version']}  BROKEN: {r['error']}")
            continue
        print(f"{r['name']} {r['version']}  [{r['legality']}]  {r['summary']}")
        print(f"    hooks: {', '.join(r['hooks'])}")
        for o in r["options"]:
            print(f"    --set options.{r['name']}.{o['name']}={o['default']!r}  {o['description']}")
    return 0


def leaderboard_order(rows: list[dict]) -> list[dict]:
    """Recipes as the leaderboard reads: records (a reported score and a date in their own
    ``[meta]``) first, newest first, the lower score first on the same date; then the rest by name."""
    records = [r for r in rows if r.get("reported_val_bpb") is not None and r.get("date")]
    rest = [r for r in rows if r not in records]
    records.sort(key=lambda r: (-int(str(r["date"]).replace("-", "")), float(r["reported_val_bpb"]), r["name"]))
    return records + sorted(rest, key=lambda r: r["name"])


def cmd_recipes(args: argparse.Namespace) -> int:
    """golf recipes: the shipped recipes with their meta, records first as the leaderboard reads."""
    from . import tomlio
    from .recipe import RECIPES_DIR

    rows = []
    for p in sorted(RECIPES_DIR.glob("*.toml")):
        meta = tomlio.load_file(p).get("meta", {})
        rows.append({"name": p.stem, "path": str(p), **meta})
    rows = leaderboard_order(rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'recipe':<18} {'val_bpb':>8}  {'legality':<16} {'date':<10}  source")
    for r in rows:
        bpb = r.get("reported_val_bpb")
        print(f"{r['name']:<18} {('%.5f' % bpb) if bpb else '-':>8}  {r.get('legality', ''):<16} "
              f"{r.get('date') or '-':<10}  {r.get('source', '')}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """golf config show: the resolved recipe as TOML."""
    recipe = _load(args)
    if args.validate:
        from .plugins import activate

        activate(recipe)
    sys.stdout.write(recipe.to_toml())
    return 0


# ---------------------------------------------------------------------------------------------


#: Commands of the core: running one of them never imports the plugins' modules (nor torch).
CORE_COMMANDS = ("run", "validate", "plugins", "recipes", "config", *COMMAND_MODULES)


def needs_plugin_commands(argv: Sequence[str]) -> bool:
    """False when ``argv`` names a core command or only asks for help/version: the plugins'
    ``golf_register_commands`` (and the torch import their modules do) are then skipped, so
    ``golf --help`` or ``golf recipes`` answer at once."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None:
        return False
    return first not in CORE_COMMANDS


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The ``golf`` argument parser with every sub-command (core, command modules and, with
    ``plugin_commands``, those the installed plugins register)."""
    parser = argparse.ArgumentParser(prog="golf", description="Parameter Golf research, one plugin per technique.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"golf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="train, quantize, score and audit a recipe")
    p.add_argument("recipe", nargs="?", help="recipe path or shipped recipe name")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value, TOML-typed (repeatable)")
    p.add_argument("--tiny", action="store_true", help="shrink sizes to run on a CPU in minutes")
    p.add_argument("--out", help="run directory, new or empty (default runs/<recipe>-<time>)")
    p.add_argument("--force", action="store_true", help="replace the run already in --out")
    p.add_argument("--resume", metavar="PATH",
                   help="continue a run: its folder (newest checkpoint that loads) or one checkpoint folder")
    p.add_argument("--checkpoint-every", type=_checkpoint_every, default=None, metavar="N",
                   help="save a checkpoint every N steps (0: none)")
    add_launch_args(p)
    p.add_argument("--quiet", action="store_true", help="no log lines on the terminal")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="resolve and validate a recipe; print plugin order and params")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("recipes", help="list shipped recipes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("config", help="recipe configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    c = csub.add_parser("show", help="print the resolved recipe as TOML")
    _add_recipe_args(c)
    c.add_argument("--validate", action="store_true", help="also validate the plugins and their options")
    c.set_defaults(func=cmd_config_show)

    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"golf_core.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"golf_core.commands.{name}":
                continue
            raise
        mod.register(sub)

    if not plugin_commands:
        return parser
    from .plugins import registration_manager

    registration_manager().hook.golf_register_commands(subparsers=sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``golf`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(plugin_commands=needs_plugin_commands(argv))
        args = parser.parse_args(argv)
        args.argv = argv
        func: Any = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        rc = int(func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return rc
    except GolfError as e:
        if not report_worker_error(str(e)):  # under golf's launcher: the launcher prints it once
            print(f"golf: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("golf: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return quiet_broken_pipe()


def quiet_broken_pipe() -> int:
    """``golf ... | head``: the reader left; exit quietly (Python would print a traceback while
    flushing stdout at exit, so stdout is pointed at /dev/null first)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell tool killed by the pipe reports


if __name__ == "__main__":
    sys.exit(main())
