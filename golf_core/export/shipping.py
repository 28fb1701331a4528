"""A run's code bytes: the size of the ``train_gpt.py`` that ``golf export`` writes for it.

``ship_run(ctx)`` builds that script from the modules the run used (``bundle.modules_used``),
the resolved recipe and the active plugins; ``result.json`` records ``code_bytes`` and a
``code`` record (modules, plugins, sha256) from which ``golf export`` rebuilds the very same
script later. Inside an exported script the code is that script itself: its own size.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .bundle import PluginRef, collect_sources, missing_roots, modules_used, plugin_refs, tree_for
from .script import build_script, is_compressed

#: Version of the ``code`` record in ``result.json``.
CODE_RECORD_VERSION = 1


@dataclass(frozen=True)
class ShippedCode:
    """The script that carries a run's code, and what it holds (``modules``: name -> short
    sha256 of its source, so that ``golf export`` can name a module changed since the run)."""

    script: str
    modules: dict[str, str]
    plugins: list[PluginRef]
    compressed: bool
    missing: tuple[str, ...] = ()

    @property
    def code_bytes(self) -> int:
        """UTF-8 size of the script: the run's code bytes."""
        return len(self.script.encode("utf-8"))

    @property
    def sha256(self) -> str:
        """Hash of the script text."""
        return hashlib.sha256(self.script.encode("utf-8")).hexdigest()

    @property
    def exportable(self) -> bool:
        """True when every plugin can be registered by module name (no in-process objects)."""
        return not self.missing and all(p.exportable for p in self.plugins)

    def record(self) -> dict[str, Any]:
        """What ``result.json["code"]`` holds (``golf export`` rebuilds the script from it)."""
        return {
            "version": CODE_RECORD_VERSION,
            "code_bytes": self.code_bytes,
            "sha256": self.sha256,
            "compressed": self.compressed,
            "exportable": self.exportable,
            "missing": list(self.missing),
            "modules": dict(sorted(self.modules.items())),
            "plugins": [[p.name, p.module, p.version, p.source_module] for p in self.plugins],
        }


def source_hash(source: str) -> str:
    """Short sha256 of a module's source (12 hex digits)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def bundle_finder() -> Optional[Any]:
    """The finder of the exported script this process runs in, or ``None``."""
    return next((f for f in sys.meta_path if getattr(f, "golf_bundle", False)), None)


def ship_run(ctx: Any, compress: bool = True) -> ShippedCode:
    """The script for the run in progress (call it once the run has imported what it uses:
    after the final evaluation). Inside an exported script: that script, as it is on disk."""
    plugins = plugin_refs(ctx.plugins)
    finder = bundle_finder()
    if finder is not None:
        script = Path(finder.script).read_text("utf-8")
        modules = {name: source_hash(finder.sources[path]) for name, (path, _) in finder.index.items()}
        return ShippedCode(script, modules, plugins, is_compressed(script))
    tree = tree_for(plugins, sys.modules)
    missing = missing_roots(plugins, tree)
    mods = collect_sources(modules_used(plugins, sys.modules, tree, strict=False), tree)
    script = build_script(mods, ctx.recipe.to_toml(), plugins, compress)
    return ShippedCode(script, {m.name: source_hash(m.source) for m in mods}, plugins, compress, tuple(missing))


def ship_recipe(recipe: Any, active: Any, compress: bool = True) -> ShippedCode:
    """Before a run: the script carrying every module a run of ``recipe`` could import (all
    lazy imports followed), i.e. an upper bound on its code bytes (e.g. to choose a cap).

    :param active: the recipe's ``ActivePlugins`` (``golf_core.plugins.activate(recipe)``).
    """
    plugins = plugin_refs(active)
    tree = tree_for(plugins, {})
    everything = dict.fromkeys(tree.modules, True)
    mods = collect_sources(modules_used(plugins, everything, tree, strict=False), tree)
    script = build_script(mods, recipe.to_toml(), plugins, compress)
    return ShippedCode(script, {m.name: source_hash(m.source) for m in mods}, plugins, compress,
                       tuple(missing_roots(plugins, tree)))

