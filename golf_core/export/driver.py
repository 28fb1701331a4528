"""The compact script's driver, specialized to one resolved recipe when the script is written.

Everything a script used to do before its first phase (parse its command line, validate the
recipe with pydantic, discover and register the plugins with pluggy, validate their options,
find the hook implementations) depends only on the resolved recipe and the plugins, so
:func:`bake` does it here, once, exactly as ``golf_core.export.runtime.main`` would inside the
script, and returns the outcome as constants: the recipe's tables, each plugin's options, and
for every hook the implementations the run calls, in the order the core calls them (recipe
order; the built-in ``golf_core.defaults`` for an exclusive hook no active plugin implements).
The script then runs ``golf_core.export.lean`` (:data:`LEAN_STUBS`: what stands in for what),
whose hook calls are ``golf_core.hookcalls``' (the same rules as a ``golf run``).

:func:`bake` returns ``None`` (the script keeps the validating driver) where the constants
would not read back as the objects they replace (a value that is not plain JSON, an
``Options`` model with methods or properties, an implementation found under another name), or
where the script could not run at all (a plugin that does not import, a recipe it refuses).
"""
from __future__ import annotations

import importlib
from typing import Any, Optional, Sequence

from .. import defaults, tomlio
from ..errors import GolfError
from .bundle import PluginRef
from .shake import Symbol

#: Definitions a baked script replaces by ``golf_core.export.lean``'s.
LEAN_STUBS: dict[Symbol, Symbol] = {
    ("golf_core.export.runtime", "main"): ("golf_core.export.lean", "main"),
    ("golf_core.export.runtime", "prepare_main"): ("golf_core.export.lean", "prepare_main"),
    ("golf_core.plugins", "activate"): ("golf_core.export.lean", "activate"),
    ("golf_core.recipe", "Recipe"): ("golf_core.export.lean", "Recipe"),
    ("golf_core.hookspecs", "hookimpl"): ("golf_core.export.lean", "hookimpl"),
    ("golf_core.run.result", "Result"): ("golf_core.export.lean", "Result"),
    ("golf_core.run.result", "Legality"): ("golf_core.export.lean", "Legality"),
}
#: Where the script name stands in (error messages, ``manifest.json``'s ``source``).
SCRIPT_NAME = "train_gpt.py"


def _plain(value: Any) -> bool:
    """True for a value that is its own JSON form (so a literal of it reads back equal, typed)."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _fields(model: Any) -> Optional[dict[str, Any]]:
    """A pydantic model's field values when they are plain JSON and equal its JSON dump and
    the model has no methods or properties of its own; else ``None``."""
    cls = type(model)
    own = {k for c in cls.__mro__[:cls.__mro__.index(_pydantic_base())] for k in vars(c)}
    if any(not k.startswith(("_", "model_")) and k not in cls.model_fields for k in own):
        return None
    values = {f: getattr(model, f) for f in cls.model_fields}
    if not _plain(values) or model.model_dump(mode="json") != values:
        return None
    return values


def _pydantic_base() -> type:
    from pydantic import BaseModel

    return BaseModel


def bake(recipe_toml: str, plugins: Sequence[PluginRef]) -> Optional[dict[str, Any]]:
    """The constants of a script of this resolved recipe with these plugins (``None``: not
    bakeable, see the module docstring)."""
    from ..plugins import ALL_HOOKS, REGISTRATION_HOOKS, PluginRegistry, activate
    from ..recipe import validate_recipe_data

    if any(not p.exportable for p in plugins):
        return None
    reg = PluginRegistry()  # as golf_core.export.runtime.register_plugins does inside a script
    try:
        for p in plugins:
            reg.add(p.name, importlib.import_module(p.module), version=p.version)
        recipe = validate_recipe_data(tomlio.loads(recipe_toml), SCRIPT_NAME)
        ap = activate(recipe, reg)
    except (GolfError, ImportError):  # a script that could not run either: it keeps the validating driver
        return None
    # as golf_core.run.setup.make_context: the validated options written back
    recipe.options = {**recipe.options, **{n: o.model_dump(mode="json") for n, o in ap.options.items()}}
    tables = {name: _fields(getattr(recipe, name)) for name in type(recipe).model_fields
              if isinstance(getattr(recipe, name), _pydantic_base())}
    options = {n: _fields(o) for n, o in ap.options.items()}
    as_dict = recipe.to_dict()
    if None in tables.values() or None in options.values() or not _plain(as_dict):
        return None
    if list(as_dict) != ["plugins", *tables, "options"] or any(
            {k: v for k, v in t.items() if v is not None} != as_dict[n] for n, t in tables.items()):
        return None  # lean.Recipe.to_dict would not give pydantic's
    hooks: dict[str, list] = {}
    for hook in ALL_HOOKS:
        if hook in REGISTRATION_HOOKS:
            continue
        names = ap.providers(hook)
        if not names and hasattr(defaults, hook):
            names = [defaults.NAME]
        rows = []
        for name in names:
            fn, args = ap.function(hook, name)
            module = defaults.__name__ if name == defaults.NAME else ap.entries[name].module.__name__
            if getattr(importlib.import_module(module), hook, None) is not fn:
                return None
            rows.append([name, module, hook, list(args)])
        if rows:
            hooks[hook] = rows
    entries = {n: {"module": e.module.__name__, "version": e.version, "dist": e.dist, "hooks": list(e.hooks),
                   "required_on_load": ap.info(n).required_on_load} for n, e in ap.entries.items()}
    baked = {"plugins": as_dict["plugins"], "tables": tables, "options": as_dict["options"],
             "active": {"order": ap.order, "hooks": hooks, "entries": entries, "legality": ap.legality(),
                        # each plugin's options are the recipe's [options.<name>], but where these differ
                        "options": {n: v for n, v in options.items() if as_dict["options"].get(n) != v}}}
    return baked if _plain(baked) else None


def lean_roots(baked: dict[str, Any]) -> dict[str, list[Symbol]]:
    """The definitions a baked script may call as hooks, by hook (no other hook of a plugin is
    reached; a hook's are kept once the kept code names the hook: ``shake``'s ``named_roots``)."""
    return {hook: sorted({(m, f) for _, m, f, _ in rows}) for hook, rows in baked["active"]["hooks"].items()}


def called_only(baked: dict[str, Any], names_read: set[str]) -> dict[str, Any]:
    """``baked`` with only the hooks the kept code calls (names among ``names_read``): the
    implementations of the others are not in the script (a run without checkpoints never calls
    ``golf_state_dict``)."""
    hooks = {h: rows for h, rows in baked["active"]["hooks"].items() if h in names_read}
    return {**baked, "active": {**baked["active"], "hooks": hooks}}
