"""A run's code bytes: the size of the compact ``train_gpt.py`` that ``golf export`` writes for it.

``ship_run(ctx)`` builds that script (``golf_core.export.compact``: the definitions the run
reaches, minified, self-extracting) from the installed sources, the resolved recipe and the
active plugins; ``result.json`` records ``code_bytes`` and a ``code`` record (modules,
plugins, codec, sha256) from which ``golf export`` rebuilds the very same script later.
Inside an exported script the code is that script itself: its own size.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..scripted import IN_SCRIPT
from .bundle import PluginRef, collect_sources, missing_roots, modules_used, plugin_refs, tree_for
from .script import build_script

#: Version of the ``code`` record in ``result.json``.
CODE_RECORD_VERSION = 2


@dataclass(frozen=True)
class ShippedCode:
    """The script that carries a run's code, and what it holds (``modules``: name -> short
    sha256 of its source, so that ``golf export`` can name a module changed since the run)."""

    script: str
    modules: dict[str, str]
    plugins: list[PluginRef]
    compressed: bool
    missing: tuple[str, ...] = ()
    codec: str = "lzma"
    compact: bool = False
    exporter: str = ""

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
            "codec": self.codec,
            "compact": self.compact,
            "exporter": self.exporter,
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
    """The compact script for the run in progress (``compress=False``: the readable bundle of
    every module it imported). Inside an exported script: that script, as it is on disk."""
    plugins = plugin_refs(ctx.plugins)
    finder = bundle_finder()
    if IN_SCRIPT or finder is not None:
        script = Path(finder.script).read_text("utf-8")
        return ShippedCode(script, {k: source_hash(v) for k, v in finder.sources.items()}, plugins, True,
                           codec="brotli" if script.startswith("import brotli") else "lzma",
                           compact=bool(getattr(finder, "golf_compact", False)))
    else:
        if not compress:
            return ship_readable(plugins, ctx.recipe.to_toml(), sys.modules, compress)
        return ship_compact(plugins, ctx.recipe.to_toml())


def ship_compact(plugins: list[PluginRef], recipe_toml: str) -> ShippedCode:
    """The compact script (``golf_core.export.compact``) of a run with these plugins."""
    from .compact import build_compact, exporter_hash

    tree = tree_for(plugins, sys.modules)
    missing = missing_roots(plugins, tree)
    ok = [p for p in plugins if tree.has(p.source_module)]
    c = build_compact(tree, recipe_toml, ok)
    return ShippedCode(c.script, {m: source_hash(tree.source(m)) for m in c.modules}, plugins, True, tuple(missing),
                       codec=c.codec, compact=True, exporter=exporter_hash())


def ship_readable(plugins: list[PluginRef], recipe_toml: str, loaded: Any, compress: bool = True) -> ShippedCode:
    """The readable bundle: every module the run imported, whole (``golf export --readable``)."""
    tree = tree_for(plugins, loaded)
    missing = missing_roots(plugins, tree)
    mods = collect_sources(modules_used(plugins, loaded, tree, strict=False), tree)
    script = build_script(mods, recipe_toml, plugins, compress)
    return ShippedCode(script, {m.name: source_hash(m.source) for m in mods}, plugins, compress, tuple(missing),
                       codec="lzma" if compress else "none")


def ship_recipe(recipe: Any, active: Any, compress: bool = True) -> ShippedCode:
    """Before a run: the compact script a run of ``recipe`` ships (it depends on the code and
    the recipe only), e.g. to choose a cap. ``compress=False``: the readable bundle of every
    module such a run could import.

    :param active: the recipe's ``ActivePlugins`` (``golf_core.plugins.activate(recipe)``).
    """
    plugins = plugin_refs(active)
    if compress:
        return ship_compact(plugins, recipe.to_toml())
    return ship_readable(plugins, recipe.to_toml(), dict.fromkeys(tree_for(plugins, {}).modules, True), False)
