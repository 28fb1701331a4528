"""Which modules a run used, and their sources: what an exported script carries.

The universe is ``golf_core`` plus the packages of golf plugins (every installed ``golf``
entry point and every active plugin), read from their files. A run used:

* the script's entry modules (``SCRIPT_ROOTS``) and every active plugin's module;
* everything these import when they load (eager edges, see ``golf_core.export.imports``);
* a lazy import (inside a function) of a ``golf_core`` module when the run actually imported
  it, i.e. it is in ``sys.modules`` at the end of the run; lazy imports made by plugin code
  are always followed (a plugin's code is shipped whole as far as it can reach);

repeated until nothing new is reached. Modules that the process loaded for other reasons
(``golf_core.cli``, ``golf_core.commands.*``, plugins that were discovered but are not
active) are never reached from the roots, so they are not shipped.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from . import ExportError
from .imports import ImportEdges, import_edges

CORE = "golf_core"
#: Entry modules of an exported script (its ``main`` and the run driver it runs).
SCRIPT_ROOTS = ("golf_core.run.driver", "golf_core.export.runtime")
ENTRY_POINT_GROUP = "golf"


@dataclass(frozen=True)
class ModuleSource:
    """One module's source, with the path it has inside the script (``golf_core/x/y.py``)."""

    name: str
    path: str
    source: str
    is_package: bool


@dataclass(frozen=True)
class PluginRef:
    """An active plugin as the script registers it: ``PluginRegistry.add(name, module, version)``.

    ``module`` is ``None`` for an in-process plugin object (not a module): such a run's code
    is counted (``source_module`` holds the object's class) but it cannot be exported.
    """

    name: str
    module: Optional[str]
    version: str
    source_module: str

    @property
    def exportable(self) -> bool:
        """True when the script can import and register this plugin by module name."""
        return self.module is not None


def plugin_refs(active: Any) -> list[PluginRef]:
    """The active plugins of an ``ActivePlugins``, in recipe order."""
    refs = []
    for name in active.order:
        entry = active.entries[name]
        obj = entry.module
        if isinstance(obj, types.ModuleType):
            refs.append(PluginRef(name, obj.__name__, entry.version or "0", obj.__name__))
        else:
            refs.append(PluginRef(name, None, entry.version or "0", type(obj).__module__))
    return refs


def _top(name: str) -> str:
    return name.partition(".")[0]


def installed_plugin_packages() -> list[str]:
    """Top-level packages of every installed ``golf`` entry point (read, not imported)."""
    return sorted({_top(ep.value.partition(":")[0].strip()) for ep in md.entry_points(group=ENTRY_POINT_GROUP)})


class SourceTree:
    """The ``.py`` sources of some top-level packages (and single-file modules), by module name."""

    def __init__(self) -> None:
        self.modules: dict[str, tuple[str, Path, bool]] = {}  # name -> (script path, file, is_package)
        self.tops: set[str] = set()
        self._edges: dict[str, ImportEdges] = {}
        self._sources: dict[str, str] = {}

    @classmethod
    def for_packages(cls, tops: Iterable[str]) -> "SourceTree":
        """A tree over the given top-level packages (those not importable are skipped)."""
        tree = cls()
        for top in sorted(set(tops)):
            tree.add_package(top)
        return tree

    def add_package(self, top: str) -> bool:
        """Add every module of the importable top-level package or module ``top``."""
        if top in self.tops:
            return True
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return False
        if spec.submodule_search_locations:
            found = False
            for loc in spec.submodule_search_locations:
                root = Path(loc)
                if (root / "__init__.py").is_file():
                    self._walk(top, root)
                    found = True
            if not found:
                return False
        elif spec.origin and spec.origin.endswith(".py"):
            self.modules[top] = (f"{top}.py", Path(spec.origin), False)
        else:
            return False
        self.tops.add(top)
        return True

    def add_file_module(self, name: str, file: Path) -> None:
        """Add a single-file module (e.g. a test module holding an in-process plugin)."""
        self.modules[name] = (name.replace(".", "/") + ".py", Path(file), False)
        self.tops.add(name)

    def _walk(self, prefix: str, root: Path) -> None:
        for f in sorted(root.iterdir()):
            if f.is_dir():
                if (f / "__init__.py").is_file() and f.name.isidentifier():
                    self._walk(f"{prefix}.{f.name}", f)
            elif f.suffix == ".py" and f.stem.isidentifier():
                pkg = f.name == "__init__.py"
                name = prefix if pkg else f"{prefix}.{f.stem}"
                path = prefix.replace(".", "/") + ("/__init__.py" if pkg else f"/{f.name}")
                self.modules[name] = (path, f, pkg)

    def has(self, name: str) -> bool:
        """True when ``name`` is a module of the tree."""
        return name in self.modules

    def source(self, name: str) -> str:
        """The module's source text."""
        if name not in self._sources:
            self._sources[name] = self.modules[name][1].read_text("utf-8")
        return self._sources[name]

    def get(self, name: str) -> ModuleSource:
        """The module with its script path and source."""
        path, _, pkg = self.modules[name]
        return ModuleSource(name, path, self.source(name), pkg)

    def edges(self, name: str) -> ImportEdges:
        """The module's import edges (cached)."""
        if name not in self._edges:
            self._edges[name] = import_edges(name, self.source(name), self.modules[name][2], self.has)
        return self._edges[name]


def tree_for(plugins: Iterable[PluginRef], loaded: Mapping[str, Any]) -> SourceTree:
    """The universe for a run: golf_core, every installed golf plugin package and the active
    plugins' packages (or, for in-process plugin objects, their module's file)."""
    tree = SourceTree.for_packages([CORE, *installed_plugin_packages()])
    for p in plugins:
        if tree.has(p.source_module):
            continue
        if tree.add_package(_top(p.source_module)) and tree.has(p.source_module):
            continue
        mod = loaded.get(p.source_module)
        file = getattr(mod, "__file__", None)
        if file and str(file).endswith(".py"):
            tree.add_file_module(p.source_module, Path(file))
    return tree


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def missing_roots(plugins: Iterable[PluginRef], tree: SourceTree) -> list[str]:
    """Entry modules (script roots, plugin modules) whose source the tree does not hold."""
    return [r for r in [*SCRIPT_ROOTS, *(p.source_module for p in plugins)] if not tree.has(r)]


def modules_used(plugins: Iterable[PluginRef], loaded: Optional[Mapping[str, Any]] = None,
                 tree: Optional[SourceTree] = None, strict: bool = True) -> list[str]:
    """Sorted names of the modules a run used (see the module docstring for the rule).

    :param plugins: the active plugins (``plugin_refs(ctx.plugins)``).
    :param loaded: the modules imported so far (default ``sys.modules``), which decides the
        lazy imports of ``golf_core`` code.
    :param strict: raise ExportError when an entry module has no source file; otherwise it
        is left out (``missing_roots`` names it).
    """
    plugins = list(plugins)
    loaded = sys.modules if loaded is None else loaded
    tree = tree or tree_for(plugins, loaded)
    roots = [*SCRIPT_ROOTS, *(p.source_module for p in plugins)]
    missing = missing_roots(plugins, tree)
    if missing and strict:
        raise ExportError(f"module {missing[0]!r} has no source file to ship (an in-process plugin?)")
    roots = [r for r in roots if r not in missing]
    seen: set[str] = set()
    queue: list[str] = []

    def reach(name: str) -> None:
        for n in [*_parents(name), name]:
            if n not in seen and tree.has(n):
                seen.add(n)
                queue.append(n)

    for r in roots:
        reach(r)
    while queue:
        name = queue.pop()
        edges = tree.edges(name)
        for dep in edges.eager:
            reach(dep)
        plugin_code = _top(name) != CORE
        for dep in edges.lazy:
            if plugin_code or dep in loaded:
                reach(dep)
    return sorted(seen)


def collect_sources(names: Iterable[str], tree: SourceTree) -> list[ModuleSource]:
    """The sources of ``names``, sorted by their script path."""
    return sorted((tree.get(n) for n in names), key=lambda m: m.path)


def third_party_imports(mods: Iterable[ModuleSource], tree: SourceTree, as_given: bool = False) -> dict[str, list[str]]:
    """Top-level names outside the tree and the standard library that the modules import
    (eagerly or lazily), each with the modules importing it (``as_given``: what each
    ``ModuleSource.source`` imports, e.g. a compact script's shaken code; else the tree's module)."""
    out: dict[str, set[str]] = {}
    std = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    for m in mods:
        e = import_edges(m.name, m.source, m.is_package, tree.has) if as_given else tree.edges(m.name)
        for dep in e.eager | e.lazy:
            top = _top(dep)
            if top in tree.tops or top in std or top.startswith("_") and top[1:] in std or top == "__future__":
                continue
            if tree.has(dep):
                continue
            out.setdefault(top, set()).add(m.name)
    return {k: sorted(v) for k, v in sorted(out.items())}
