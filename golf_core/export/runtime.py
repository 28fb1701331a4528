"""What an exported ``train_gpt.py`` runs once its embedded modules are importable.

``python train_gpt.py [--set KEY=VALUE ...] [--seed N] [--data DIR] [--out DIR]`` registers
the run's plugins in-process (no entry points, no golf installation needed), applies the
overrides to the embedded resolved recipe and runs it (``golf_core.run``), like ``golf run`` on the
run's ``resolved.toml``. Under ``torchrun`` every rank runs it.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .. import tomlio
from ..errors import GolfError
from ..run.driver import run_recipe
from ..plugins import PluginRegistry, set_registry
from ..recipe import Recipe, apply_override, validate_recipe_data
from ..scripted import refused_override


def embedded(name: str) -> bool:
    """True when module ``name`` can be imported: embedded in this script (inside one), or
    importable at all (outside)."""
    finder = next((f for f in sys.meta_path if getattr(f, "golf_bundle", False)), None)
    if finder is not None:
        return name in finder.index
    return importlib.util.find_spec(name) is not None


def register_plugins(plugins: Sequence[Sequence[str]]) -> PluginRegistry:
    """A registry holding exactly the embedded plugins ``(name, module, version)``, installed
    as the process-wide one."""
    reg = PluginRegistry()
    for name, module, version in plugins:
        reg.add(name, importlib.import_module(module), version=version)
    set_registry(reg)
    return reg


def embedded_recipe(recipe_toml: str, overrides: Sequence[str] = (), data_root: Optional[str] = None,
                    where: str = "train_gpt.py") -> Recipe:
    """The embedded resolved recipe with ``--set`` overrides (and ``--data``) applied."""
    data = tomlio.loads(recipe_toml)
    if data_root:
        data.setdefault("data", {})["root"] = data_root
        for k in ("dataset_dir", "tokenizer_path"):
            data["data"].pop(k, None)
    refused = refused_override(overrides)
    if refused:
        raise GolfError(f"--set {refused}: this script was specialized to the recipe's value of it; export the run again")
    for o in overrides:
        apply_override(data, o)
    recipe = validate_recipe_data(data, where)
    recipe.source_path = where
    return recipe


def parse_args(argv: Optional[Sequence[str]], prog: str) -> argparse.Namespace:
    """The script's command line."""
    p = argparse.ArgumentParser(prog=prog, description="Train, quantize, score and audit the embedded golf recipe.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, TOML-typed (repeatable), e.g. --set train.seed=42")
    p.add_argument("--seed", type=int, default=None, help="shortcut for --set train.seed=N")
    p.add_argument("--data", metavar="DIR", help="data root holding datasets/ and tokenizers/")
    p.add_argument("--out", metavar="DIR", help="run directory (default: ./run_seed<seed>)")
    p.add_argument("--quiet", action="store_true", help="no log lines on the terminal")
    p.add_argument("--print-recipe", action="store_true", help="print the embedded recipe (TOML) and exit")
    return p.parse_args(argv)


def main(recipe_toml: str, plugins: Sequence[Sequence[str]], argv: Optional[Sequence[str]] = None) -> int:
    """Run the embedded recipe; return the exit code."""
    prog = os.path.basename(sys.argv[0]) or "train_gpt.py"
    args = parse_args(argv, prog)
    if args.print_recipe:
        sys.stdout.write(recipe_toml)
        return 0
    try:
        overrides = list(args.overrides) + ([f"train.seed={args.seed}"] if args.seed is not None else [])
        recipe = embedded_recipe(recipe_toml, overrides, args.data, prog)
        reg = register_plugins(plugins)
        out = Path(args.out or f"run_seed{recipe.train.seed}")
        progress = embedded("golf_core.progress")  # shipped only when the exported run used it
        result = run_recipe(recipe, out, reg=reg, echo=not args.quiet, progress=progress)
    except GolfError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"val_bpb:{result['val_bpb']:.8f} val_loss:{result['val_loss']:.8f} code_bytes:{result['code_bytes']} "
              f"artifact_bytes:{result['artifact_bytes']} under_cap:{result['under_cap']} run_dir:{out}")
    return 0


def prepare_main(recipe_toml: str, plugins: Sequence[Sequence[str]], argv: Optional[Sequence[str]] = None) -> int:
    """``prepare_data.py``: build (demo) or check (FineWeb) the embedded recipe's dataset."""
    from ..data.paths import resolve_data

    prog = os.path.basename(sys.argv[0]) or "prepare_data.py"
    args = parse_args(argv, prog)
    try:
        recipe = embedded_recipe(recipe_toml, list(args.overrides), args.data, prog)
        paths = resolve_data(recipe.data, build_missing=True, log=None if args.quiet else print)
    except GolfError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"data: {paths.dataset_dir} tokenizer: {paths.tokenizer_path}")
    return 0
