"""Rebuild, after the fact, the exact script whose size a run counted as its code bytes.

A run records in ``result.json["code"]`` the modules its compact script carries (with a hash
of each source), its plugins and the script's sha256. From the installed sources and
``resolved.toml`` the same compact script comes out again; when a source changed since the
run, the export refuses (naming the module) unless told to ship the current code. The
readable bundle (``golf export --readable``) carries every module the run could have
imported, whole, for review; it is not what the run counted.
"""
from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass, field
from typing import Any, Optional

from . import ExportError
from .bundle import PluginRef, SourceTree, collect_sources, modules_used, tree_for
from .compact import CompactScript, build_compact, exporter_hash
from .runs import RunRecord
from .script import build_script
from .shipping import source_hash


@dataclass
class RebuiltScript:
    """The script of a run, and how it compares with what the run counted."""

    script: str
    modules: list[str]
    plugins: list[PluginRef]
    compressed: bool
    recorded_bytes: Optional[int]
    exact: bool
    warnings: list[str] = field(default_factory=list)
    tree: Optional[SourceTree] = None
    codec: str = "lzma"
    compact: Optional[CompactScript] = None

    @property
    def code_bytes(self) -> int:
        """UTF-8 size of the script."""
        return len(self.script.encode("utf-8"))


def _plugins_from_registry(run: RunRecord) -> list[PluginRef]:
    from ..plugins import registry

    reg = registry()
    refs = []
    recorded = {p.get("name"): p.get("version", "") for p in run.manifest.get("plugins", [])}
    for name in run.result.get("plugins", []):
        entry = reg.get(name)
        mod = entry.module
        if not isinstance(mod, types.ModuleType):
            raise ExportError(f"plugin {name!r} is not an importable module; it cannot be exported")
        refs.append(PluginRef(name, mod.__name__, recorded.get(name) or entry.version or "0", mod.__name__))
    return refs


def rebuild_script(run: RunRecord, compress: bool = True, allow_changed_code: bool = False,
                   readable: bool = False) -> RebuiltScript:
    """The script for ``run``: the compact one its code bytes counted, or (``readable``) the
    bundle of every module it could import, whole; ExportError when its code changed (unless
    ``allow_changed_code``) or a module or plugin it used is not installed."""
    code = run.code
    warnings: list[str] = []
    changed: list[str] = []
    if code is not None:
        plugins = [PluginRef(*p) for p in code.get("plugins", [])]
        for p in plugins:
            if not p.exportable:
                raise ExportError(f"{run.run_dir}: plugin {p.name!r} was an in-process object ({p.source_module}); "
                                  f"it cannot be exported")
        if code.get("missing"):
            raise ExportError(f"{run.run_dir}: module {code['missing'][0]!r} had no source file; it cannot be exported")
        recorded: dict[str, str] = code.get("modules", {})
        if isinstance(recorded, list):
            recorded = {m: "" for m in recorded}
        tree = tree_for(plugins, {})
        absent = [m for m in recorded if not tree.has(m)]
        if absent:
            raise ExportError(f"{run.run_dir}: module {absent[0]!r} used by the run is not installed here")
        changed = [m for m, h in recorded.items() if h and source_hash(tree.source(m)) != h]
        if changed:
            msg = f"{run.run_dir}: {changed[0]} changed since the run" + (
                f" (and {len(changed) - 1} more module(s))" if len(changed) > 1 else "")
            if not allow_changed_code:
                raise ExportError(msg + "; rerun it, or pass --allow-changed-code to ship the current code")
            warnings.append(msg + "; shipping the current code")
    else:
        plugins = _plugins_from_registry(run)
        tree = tree_for(plugins, {})
        warnings.append(f"{run.run_dir}: result.json has no code record (a run older than golf export): the script "
                        f"is built from the installed code, so its size may differ from the run's code_bytes")
    recipe_sha = hashlib.sha256(run.recipe_toml.encode()).hexdigest()
    if run.result.get("recipe_sha256") and run.result["recipe_sha256"] != recipe_sha:
        warnings.append(f"{run.run_dir}: resolved.toml does not hash to result.json's recipe_sha256")
    if readable or not compress:
        names = _all_reachable(plugins, tree)
        script = build_script(collect_sources(names, tree), run.recipe_toml, plugins, compress)
        return RebuiltScript(script, names, plugins, compress, None, False, warnings, tree, "lzma" if compress else "none")
    compact = build_compact(tree, run.recipe_toml, plugins)
    names = sorted(compact.modules)
    counted = code is not None and bool(code.get("compact"))
    exact = bool(counted) and script_sha256(compact.script) == code.get("sha256")
    if counted and not exact and not changed:
        why = ("golf's script exporter changed since the run" if code.get("exporter") not in (None, exporter_hash())
               else "resolved.toml or a plugin version edited?")
        msg = f"{run.run_dir}: the script differs from the one the run counted ({why})"
        if not allow_changed_code:
            raise ExportError(msg + "; pass --allow-changed-code to ship it anyway")
        warnings.append(msg)
    elif code is not None and not counted:
        warnings.append(f"{run.run_dir}: the run counted a readable bundle ({code.get('code_bytes')} bytes); "
                        f"the compact script is smaller")
    recorded_bytes = run.result.get("code_bytes") if code is not None else None
    return RebuiltScript(compact.script, names, plugins, True, recorded_bytes, exact, warnings, tree, compact.codec,
                         compact)


def _all_reachable(plugins: list[PluginRef], tree: SourceTree) -> list[str]:
    """Every module a run with these plugins could import (all lazy imports followed)."""

    class _Everything(dict):
        def __contains__(self, key: Any) -> bool:  # every module counts as imported
            return True

    return modules_used(plugins, _Everything(), tree)


def script_sha256(script: str) -> str:
    """sha256 of a script's text."""
    return hashlib.sha256(script.encode("utf-8")).hexdigest()
