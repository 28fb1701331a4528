"""The run machinery of a compact ``train_gpt.py``, with the resolved recipe baked in.

``golf_core.export.driver`` validates the run's recipe and activates its plugins when the
script is written (pydantic and pluggy run there, once), and hands this module the outcome as
constants (``bake``'s dict, the script's ``R``). Inside the script these definitions stand in
for their golf counterparts, so the script carries neither pydantic nor pluggy nor a command
line parser:

* :class:`Recipe` for ``golf_core.recipe.Recipe`` (its tables are :class:`Baked` constants);
* :func:`activate` for ``golf_core.plugins.activate``: :class:`BakedPlugins`, the ordered hook
  calls of ``golf_core.hookcalls`` over the active implementations found at export time;
* :func:`hookimpl` for pluggy's marker (a plugin's hooks are called directly);
* :class:`Result` and :data:`Legality` for the pydantic ``result.json`` models (their dicts);
* :func:`main` for ``golf_core.export.runtime.main``: ``python train_gpt.py [--data DIR] [--out DIR]
  [--seed N] [--quiet]``; :func:`prepare_main` for ``runtime.prepare_main``: ``python
  prepare_data.py [--data DIR] [--quiet]`` (no ``--set``: the recipe is baked in).
"""
from __future__ import annotations

import copy
import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from .. import tomlio
from ..hookcalls import DEFAULTS_NAME, HookCalls


class Baked:
    """Constants read as attributes (a recipe table, a plugin's options), validated when the
    script was written; ``model_dump`` gives their JSON form, as pydantic's did."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)
        self._values = values

    def model_dump(self, mode: str = "json", **_: Any) -> dict[str, Any]:
        """The current values (every one JSON-typed: the exporter checked), copied."""
        return copy.deepcopy({k: getattr(self, k) for k in self._values})


class Recipe:
    """The resolved recipe of the run the script was exported from (``golf_core.recipe.Recipe``'s
    attributes and methods that a run uses)."""

    def __init__(self, baked: dict[str, Any], source_path: Optional[str] = None):
        self.baked = baked
        self.plugins = list(baked["plugins"])
        self.options = copy.deepcopy(baked["options"])
        for name, values in baked["tables"].items():
            setattr(self, name, Baked(dict(values)))
        self.source_path = source_path
        self.tiny = False

    def to_dict(self) -> dict[str, Any]:
        """What ``resolved.toml`` holds (the tables without their None values, as pydantic's ``exclude_none``)."""
        tables = {n: getattr(self, n).model_dump() for n in self.baked["tables"]}
        return {"plugins": list(self.plugins), **{n: {k: v for k, v in t.items() if v is not None}
                                                  for n, t in tables.items()}, "options": copy.deepcopy(self.options)}

    def to_toml(self) -> str:
        """The resolved recipe as TOML text."""
        return tomlio.dumps(self.to_dict())

    def sha256(self) -> str:
        """Content hash of the resolved recipe."""
        return hashlib.sha256(self.to_toml().encode()).hexdigest()


class BakedPlugins(HookCalls):
    """The active plugins, their options and implementations as the exporter resolved them
    (``hooks``: hook -> ``[(plugin, module, function, argument names)]``, providers in recipe
    order, or the core's built-in one)."""

    def __init__(self, recipe: Recipe):
        baked = recipe.baked["active"]
        options = recipe.baked["options"]
        super().__init__(baked["order"], {n: Baked(baked["options"].get(n, options.get(n))) for n in baked["order"]})
        self.hooks = {h: [(n, getattr(_module(m), f), a) for n, m, f, a in rows] for h, rows in baked["hooks"].items()}
        self.entries = {n: Baked({**e, "module": _module(e["module"])}) for n, e in baked["entries"].items()}
        self.tracks = baked["legality"]

    def providers(self, hook: str) -> list[str]:
        """Active plugins implementing ``hook``, in recipe order."""
        return [n for n, _, _ in self.hooks.get(hook, ()) if n != DEFAULTS_NAME]

    def function(self, hook: str, name: str) -> tuple[Callable[..., Any], list[str]]:
        """``name``'s implementation of ``hook`` and the arguments it takes."""
        for n, fn, args in self.hooks.get(hook, ()):
            if n == name:
                return fn, args
        raise KeyError((hook, name))

    def no_options(self) -> Baked:
        """The core's built-in implementations take no options."""
        return Baked({})

    def info(self, name: str) -> Baked:
        """What the run needs of an active plugin's TechniqueInfo."""
        return Baked({"required_on_load": self.entries[name].required_on_load})

    def legality(self) -> dict[str, str]:
        """Each active plugin's legality track under its options."""
        return dict(self.tracks)


def _module(name: str) -> Any:
    """The module ``name``, imported by the import statement's machinery (``-X importtime`` sees it)."""
    __import__(name)
    return sys.modules[name]


def activate(recipe: Recipe, reg: Any = None, where: Any = None) -> BakedPlugins:
    """The active plugins of the baked recipe."""
    return BakedPlugins(recipe)


def hookimpl(function: Callable[..., Any]) -> Callable[..., Any]:
    """A hook implementation, called directly (no plugin manager inside a script)."""
    return function


class Result(dict):
    """``result.json`` as a dict (the run the script was exported from validated its schema)."""

    def as_json(self) -> dict[str, Any]:
        """The dict written to ``result.json``."""
        return dict(self)

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> "Result":
        """``data`` itself."""
        return cls(data)


#: ``result.json["legality"]``: a dict.
Legality = dict


def _recipe(baked: dict[str, Any], prog: str, flags: dict[str, str]) -> Recipe:
    """The baked recipe, with ``--seed N`` and ``--data DIR`` (as ``golf run``'s ``--set
    train.seed=N`` and ``[data] root = DIR`` without ``dataset_dir``/``tokenizer_path``)."""
    recipe = Recipe(baked, prog)
    if "--seed" in flags:
        recipe.train.seed = int(flags["--seed"])
    if "--data" in flags:
        recipe.data.root, recipe.data.dataset_dir, recipe.data.tokenizer_path = flags["--data"], None, None
    return recipe


def _flags(prog: str, known: set[str]) -> Optional[dict[str, str]]:
    """``--flag value`` pairs of the command line (``--quiet`` aside); None (after a one-line
    usage error) for anything else."""
    args = [a for a in sys.argv[1:] if a != "--quiet"]
    flags = dict(zip(args[::2], args[1::2]))
    if len(args) % 2 or not set(flags) <= known:
        usage = " ".join(f"[{k} {'N' if k == '--seed' else 'DIR'}]" for k in sorted(known))
        print(f"{prog}: error: usage: {prog} {usage} [--quiet] (the recipe is baked in)", file=sys.stderr)
        return None
    return flags


def main(baked: dict[str, Any], plugins: Any = None) -> int:
    """``python train_gpt.py [--data DIR] [--out DIR] [--seed N] [--quiet]``: run the baked recipe
    (with another seed or data root); return the exit code."""
    from ..run.driver import run_recipe

    prog = os.path.basename(sys.argv[0]) or "train_gpt.py"
    flags = _flags(prog, {"--seed", "--out", "--data"})
    if flags is None:
        return 2
    recipe = _recipe(baked, prog, flags)
    out = Path(flags.get("--out") or f"run_seed{recipe.train.seed}")
    result = run_recipe(recipe, out, echo="--quiet" not in sys.argv, progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"val_bpb:{result['val_bpb']:.8f} val_loss:{result['val_loss']:.8f} code_bytes:{result['code_bytes']} "
              f"artifact_bytes:{result['artifact_bytes']} under_cap:{result['under_cap']} run_dir:{out}")
    return 0


def prepare_main(baked: dict[str, Any], plugins: Any = None) -> int:
    """``python prepare_data.py [--data DIR] [--quiet]``: build (demo) or check (FineWeb) the baked
    recipe's dataset."""
    from ..data.paths import resolve_data
    from ..errors import GolfError

    prog = os.path.basename(sys.argv[0]) or "prepare_data.py"
    flags = _flags(prog, {"--data"})
    if flags is None:
        return 2
    try:
        paths = resolve_data(_recipe(baked, prog, flags).data, build_missing=True,
                             log=None if "--quiet" in sys.argv else print)
    except GolfError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"data: {paths.dataset_dir} tokenizer: {paths.tokenizer_path}")
    return 0
