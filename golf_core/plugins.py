"""Plugin discovery, activation and ordered hook calls.

* Discovery: every entry point of group ``golf`` is imported (``GOLF_LOAD_PLUGINS``, a comma
  list, restricts which; empty means none). One that fails to import is kept as a broken
  entry with its error: it breaks neither ``golf plugins`` nor recipes that don't use it.
* Activation: only the plugins a recipe names are registered with pluggy, in recipe order.
* Calls (``golf_core.hookcalls``): transform and observer hooks run in the recipe's ``plugins`` order (never pluggy's
  LIFO order; ``tryfirst``/``trylast`` are refused). Exclusive hooks fall back to the core's
  built-in plugin (``golf_core.defaults``, always registered, never in a recipe's list) when no
  active plugin implements them, and fail validation when two or more do.
* ``GOLF_TRACE_PLUGINS=1`` prints every hook call with its implementations, in order.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import inspect
import os
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pluggy
from pydantic import ValidationError

from . import defaults, hookspecs
from .errors import PluginError, RecipeError
from .hookcalls import HookCalls
from .options import NoOptions, Options
from .recipe import Recipe, suggest
from .technique import TechniqueInfo

ENTRY_POINT_GROUP = "golf"

#: Hooks at most one active plugin may implement (``golf_core.defaults`` runs when none does).
EXCLUSIVE_HOOKS = hookspecs.hooks_of_kind("exclusive")
#: Hooks applied in recipe order, each receiving the previous one's value.
TRANSFORM_HOOKS = hookspecs.hooks_of_kind("transform")
#: Hooks called on every active plugin in recipe order, results collected or ignored.
OBSERVER_HOOKS = hookspecs.hooks_of_kind("observer")
#: Hooks called on every installed plugin.
REGISTRATION_HOOKS = hookspecs.hooks_of_kind("registration")
ALL_HOOKS = EXCLUSIVE_HOOKS + TRANSFORM_HOOKS + OBSERVER_HOOKS + REGISTRATION_HOOKS


def hook_names() -> list[str]:
    """Every hook declared in ``golf_core.hookspecs``."""
    return sorted(hookspecs.HOOK_KINDS)


def hook_kind(name: str) -> str:
    """``exclusive``, ``transform``, ``observer`` or ``registration`` (``hookspecs.HOOK_KINDS``)."""
    return hookspecs.HOOK_KINDS[name]


class _GolfPluginManager(pluggy.PluginManager):
    """A pluggy manager that refuses ordering markers: order comes from the recipe."""

    def parse_hookimpl_opts(self, plugin: Any, name: str):  # type: ignore[override]
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and (opts.get("tryfirst") or opts.get("trylast")):
            pname = self.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))
            raise PluginError(
                f"plugin {pname!r}: {name} uses tryfirst/trylast; golf orders hooks by the recipe's plugins list"
            )
        return opts


def _new_manager() -> pluggy.PluginManager:
    pm = _GolfPluginManager("golf")
    pm.add_hookspecs(hookspecs)
    return pm


@dataclass
class InstalledPlugin:
    """One discovered plugin: where it came from, its metadata, or why it failed."""

    name: str
    module: Any = None
    dist: str = ""
    version: str = ""
    info: Optional[TechniqueInfo] = None
    error: Optional[str] = None
    hooks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the plugin imported and registered its technique."""
        return self.error is None and self.info is not None


def _implemented_hooks(obj: Any) -> list[str]:
    out = []
    for n in hook_names():
        fn = getattr(obj, n, None)
        if fn is not None and callable(fn):
            out.append(n)
    return out


def _collect_info(name: str, obj: Any) -> TechniqueInfo:
    if not callable(getattr(obj, "golf_register", None)):
        raise PluginError(f"plugin {name!r} does not implement golf_register")
    # validate hook signatures against the specs now, not at first call
    pm = _new_manager()
    pm.register(obj, name=name)
    got: list[TechniqueInfo] = []

    def register(info: TechniqueInfo) -> None:
        if not isinstance(info, TechniqueInfo):
            raise PluginError(f"plugin {name!r}: register() expects a TechniqueInfo, got {type(info).__name__}")
        got.append(info)

    pm.hook.golf_register(register=register)
    if len(got) != 1:
        raise PluginError(f"plugin {name!r}: golf_register must register exactly one technique, got {len(got)}")
    info = got[0]
    if info.name != name:
        raise PluginError(f"plugin {name!r} registers itself as {info.name!r}; the names must match")
    if not (isinstance(info.options, type) and issubclass(info.options, Options)):
        raise PluginError(f"plugin {name!r}: options must be a golf_core.Options subclass")
    return info


class PluginRegistry:
    """Every installed plugin, discovered through entry points (plus any added in-process)."""

    def __init__(self) -> None:
        self.plugins: dict[str, InstalledPlugin] = {}

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> "PluginRegistry":
        """Import every entry point of ``group`` that ``GOLF_LOAD_PLUGINS`` allows."""
        reg = cls()
        allow_env = os.environ.get("GOLF_LOAD_PLUGINS")
        allow = None if allow_env is None else {x.strip() for x in allow_env.split(",") if x.strip()}
        for ep in sorted(md.entry_points(group=group), key=lambda e: e.name):
            if allow is not None and ep.name not in allow:
                continue
            dist = getattr(ep, "dist", None)
            entry = InstalledPlugin(
                name=ep.name,
                dist=dist.metadata["Name"] if dist is not None else "",
                version=dist.version if dist is not None else "",
            )
            try:
                entry.module = ep.load()
                entry.hooks = _implemented_hooks(entry.module)
                entry.info = _collect_info(ep.name, entry.module)
            except Exception as e:  # noqa: BLE001 - a broken plugin must not break golf
                entry.error = f"{type(e).__name__}: {e}"
            reg.plugins[ep.name] = entry
        return reg

    def add(self, name: str, obj: Any, version: str = "0") -> InstalledPlugin:
        """Add an in-process plugin object or module (tests, local experiments)."""
        entry = InstalledPlugin(name=name, module=obj, dist="(in-process)", version=version)
        entry.hooks = _implemented_hooks(obj)
        entry.info = _collect_info(name, obj)
        self.plugins[name] = entry
        return entry

    def names(self) -> list[str]:
        """Names of all discovered plugins, broken ones included."""
        return sorted(self.plugins)

    def get(self, name: str) -> InstalledPlugin:
        """The plugin called ``name``; PluginError naming the nearest installed name."""
        entry = self.plugins.get(name)
        if entry is None:
            raise PluginError(f"unknown plugin {name!r}{suggest(name, self.plugins)}")
        if entry.error is not None:
            raise PluginError(f"plugin {name!r} failed to load: {entry.error}")
        return entry

    def describe(self) -> list[dict[str, Any]]:
        """Plain data about every plugin, for ``golf plugins --json``."""
        out = []
        for name in self.names():
            p = self.plugins[name]
            row: dict[str, Any] = {"name": name, "dist": p.dist, "version": p.version}
            if not p.ok:
                row["error"] = p.error
                out.append(row)
                continue
            info = p.info
            assert info is not None
            opts = []
            for fname, f in info.options.model_fields.items():
                default = f.get_default(call_default_factory=True)
                opts.append(
                    {
                        "name": fname,
                        "type": getattr(f.annotation, "__name__", str(f.annotation)),
                        "default": default if isinstance(default, (int, float, str, bool, list, type(None))) else repr(default),
                        "description": f.description or "",
                    }
                )
            row.update(
                summary=info.summary,
                hooks=[h for h in p.hooks if h != "golf_register"],
                options=opts,
                legality=info.legality,
                lineage=list(info.lineage),
                conflicts=list(info.conflicts),
                required_on_load=info.required_on_load,
                reported_delta=info.reported_delta,
            )
            out.append(row)
        return out


_REGISTRY: Optional[PluginRegistry] = None


def registry(refresh: bool = False) -> PluginRegistry:
    """The process-wide registry of installed plugins (discovered once)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = PluginRegistry.discover()
    return _REGISTRY


def set_registry(reg: Optional[PluginRegistry]) -> None:
    """Replace the process-wide registry (tests); ``None`` forces rediscovery."""
    global _REGISTRY
    _REGISTRY = reg


def _validate_options(name: str, info: TechniqueInfo, raw: dict[str, Any], where: str) -> Options:
    try:
        return info.options.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        if first["type"] == "extra_forbidden":
            key = str(first["loc"][-1])
            raise RecipeError(
                f"{where}: unknown key 'options.{name}.{loc}'{suggest(key, info.options.model_fields)}"
            ) from None
        raise RecipeError(f"{where}: options.{name}.{loc}: {first['msg']} (got {first.get('input')!r})") from None


class ActivePlugins(HookCalls):
    """The plugins one recipe activates, with their options, and the ordered hook callers
    (``golf_core.hookcalls``) over a pluggy manager."""

    def __init__(self, order: list[str], entries: dict[str, InstalledPlugin], options: dict[str, Options]):
        super().__init__(order, options)
        self.entries = entries
        self.pm = _new_manager()
        for name in self.order:
            self.pm.register(entries[name].module, name=name)
        self.pm.register(defaults, name=defaults.NAME)  # outside ``order``: never a provider

    # -- inspection -------------------------------------------------------------------------
    def info(self, name: str) -> TechniqueInfo:
        """The TechniqueInfo of an active plugin."""
        info = self.entries[name].info
        assert info is not None
        return info

    def providers(self, hook: str) -> list[str]:
        """Active plugins implementing ``hook``, in recipe order."""
        impls = {self.pm.get_name(i.plugin) for i in getattr(self.pm.hook, hook).get_hookimpls()}
        return [n for n in self.order if n in impls]

    def function(self, hook: str, name: str) -> tuple[Callable[..., Any], list[str]]:
        """``name``'s implementation of ``hook`` (pluggy's) and the arguments it takes."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if self.pm.get_name(impl.plugin) == name:
                return impl.function, list(impl.argnames)
        raise KeyError((hook, name))

    def no_options(self) -> Options:
        """The core's built-in implementations take no options."""
        return NoOptions()

    def legality(self) -> dict[str, str]:
        """Each active plugin's legality track under its options."""
        return {n: self.info(n).track_for(self.options[n]) for n in self.order}


def _replaced_hint(reg: PluginRegistry, name: str) -> Optional[str]:
    """The hint of the installed plugin that replaced the former plugin ``name``, if any."""
    for p in reg.plugins.values():
        if p.ok and name in p.info.replaces:  # type: ignore[union-attr]
            return p.info.replaces[name]  # type: ignore[union-attr]
    return None


def activate(recipe: Recipe, reg: Optional[PluginRegistry] = None, where: Optional[str] = None) -> ActivePlugins:
    """Validate ``recipe``'s plugin list and options and return the active set.

    Fails (one line, naming the culprit) on an unknown or broken plugin, an options key or
    value its Options model rejects, an ``[options.X]`` table for a plugin that is not
    installed, a declared conflict, or two active providers of an exclusive hook. With
    ``recipe.tiny``, each plugin's ``TechniqueInfo.tiny`` scales its options.
    """
    reg = reg or registry()
    where = where or (os.path.basename(recipe.source_path) if recipe.source_path else "recipe")
    entries: dict[str, InstalledPlugin] = {}
    for name in recipe.plugins:
        if name not in reg.plugins:
            hint = _replaced_hint(reg, name)
            raise PluginError(f"{where}: {hint}" if hint else
                              f"{where}: unknown plugin {name!r}{suggest(name, reg.plugins)}")
        entries[name] = reg.get(name)
    for name in recipe.options:
        if name not in reg.plugins:
            hint = _replaced_hint(reg, name)
            raise RecipeError(f"{where}: [options.{name}]: {hint}" if hint else
                              f"{where}: [options.{name}] names an unknown plugin{suggest(name, reg.plugins)}")
    options: dict[str, Options] = {}
    for name, entry in entries.items():
        info = entry.info
        assert info is not None
        opts = _validate_options(name, info, recipe.options.get(name, {}), where)
        if recipe.tiny and info.tiny is not None:
            opts = info.tiny(opts, recipe)
        options[name] = opts
    active = set(recipe.plugins)
    for name in recipe.plugins:
        for other in entries[name].info.conflicts:  # type: ignore[union-attr]
            if other in active:
                raise PluginError(f"{where}: plugins {name!r} and {other!r} conflict; remove one of them")
    ap = ActivePlugins(recipe.plugins, entries, options)
    for hook in EXCLUSIVE_HOOKS:
        names = ap.providers(hook)
        if len(names) > 1:
            raise PluginError(f"{where}: {hook} is exclusive but provided by {', '.join(names)}; keep one of them")
    return ap


def plugin_source_roots(ap: ActivePlugins) -> list[str]:
    """Folders (or files) holding the code of the active plugins, for code-byte accounting."""
    roots = []
    for name in ap.order:
        mod = ap.entries[name].module
        if isinstance(mod, types.ModuleType):
            pkg = mod.__name__.split(".")[0]
            top = importlib.import_module(pkg)
            path = getattr(top, "__file__", None)
            if path:
                roots.append(os.path.dirname(path) if path.endswith("__init__.py") else path)
        else:
            src = inspect.getsourcefile(type(mod))
            if src:
                roots.append(src)
    return roots


def registration_manager(reg: Optional[PluginRegistry] = None) -> pluggy.PluginManager:
    """A pluggy manager holding every installed plugin that loaded, for the registration hooks
    (``pm.hook.golf_register_commands(subparsers=...)``); implementations run in name order."""
    reg = reg or registry()
    pm = _new_manager()
    for name in reversed(reg.names()):  # pluggy calls the last registered first
        p = reg.plugins[name]
        if p.module is not None and p.error is None:
            pm.register(p.module, name=name)
    return pm
