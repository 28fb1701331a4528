"""golf_core.export.bundle: which modules a run used. The reference for the eager part is
Python's own import system (a fresh interpreter importing the entry modules)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from golf_core.export.bundle import (
    SCRIPT_ROOTS, PluginRef, SourceTree, collect_sources, modules_used, plugin_refs, third_party_imports, tree_for,
)
from golf_core.export.shipping import ship_run

QK = PluginRef("qk-gain", "golf_qk_gain.plugin", "0.1.0", "golf_qk_gain.plugin")


def _installed(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod.partition(".")[0]) is not None


needs_qk = pytest.mark.skipif(not _installed("golf_qk_gain"), reason="golf-qk-gain not installed")


def _loaded_by_python(modules: list[str]) -> set[str]:
    """golf modules a fresh interpreter has loaded after importing ``modules``."""
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for m in {modules!r}:
            importlib.import_module(m)
        print(json.dumps(sorted(n for n in sys.modules if n.startswith("golf"))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def _everything(tree: SourceTree) -> dict[str, object]:
    return {m: object() for m in tree.modules}


@needs_qk
def test_eager_closure_is_what_python_imports():
    roots = [*SCRIPT_ROOTS, QK.module]
    assert set(modules_used([QK], loaded={})) == _loaded_by_python(roots)
    assert set(modules_used([], loaded={})) == _loaded_by_python(list(SCRIPT_ROOTS))


@needs_qk
def test_lazy_core_imports_follow_what_the_run_imported():
    base = set(modules_used([QK], loaded={}))
    data = {"golf_core.data", "golf_core.data.paths", "golf_core.data.build"}
    assert not (data | {"golf_core.data.download"}) & base  # the pipeline reads data lazily
    used = set(modules_used([QK], loaded={m: object() for m in base | data}))
    assert data <= used and "golf_core.data.demo_corpus" in used  # build's eager imports come with it
    assert "golf_core.data.download" not in used  # never imported by this "run"
    used = set(modules_used([QK], loaded={m: object() for m in base | data | {"golf_core.data.download"}}))
    assert "golf_core.data.download" in used  # data/__init__ names it in its lazy table


@needs_qk
def test_unreachable_modules_are_never_shipped_even_when_loaded():
    tree = tree_for([QK], {})
    used = set(modules_used([QK], loaded=_everything(tree), tree=tree))
    for name in tree.modules:
        unused = (name.startswith(("golf_core.commands", "golf_core.check")) or name in {
            "golf_core.cli", "golf_core.__main__", "golf_core.ablate", "golf_core.ablate_report", "golf_core.stats",
            "golf_core.export.folder", "golf_core.export.readme", "golf_core.export.submission",
            "golf_core.export.rebuild", "golf_core.export.requirements", "golf_core.export.runs"})
        if unused:
            assert name not in used, name
    # no other plugin's package
    assert {m.partition(".")[0] for m in used} == {"golf_core", "golf_qk_gain"}


@pytest.mark.skipif(not _installed("golf_gptq"), reason="gptq not installed")
def test_a_plugin_ships_its_package_and_the_api_it_imports():
    gptq = PluginRef("gptq", "golf_gptq.plugin", "0.1.0", "golf_gptq.plugin")
    used = set(modules_used([gptq], loaded={}))
    assert {"golf_gptq.plugin", "golf_gptq.flow", "golf_gptq.options", "golf_gptq.hadamard"} <= used
    # what golf_core.api imports is followed (the helpers it re-exports live in deeper modules)
    assert {"golf_core.api", "golf_core.train.freeze", "golf_core.model.head"} <= used
    assert {m.partition(".")[0] for m in used} == {"golf_core", "golf_gptq"}


def test_sources_are_the_files_and_sorted_by_path():
    tree = SourceTree.for_packages(["golf_core"])
    mods = collect_sources(["golf_core.recipe", "golf_core", "golf_core.data.paths"], tree)
    assert [m.path for m in mods] == ["golf_core/__init__.py", "golf_core/data/paths.py", "golf_core/recipe.py"]
    import golf_core.recipe

    assert mods[2].source == open(golf_core.recipe.__file__, encoding="utf-8").read()
    assert mods[0].is_package and not mods[2].is_package


def test_third_party_imports_exclude_stdlib_and_golf():
    tree = SourceTree.for_packages(["golf_core"])
    mods = collect_sources(modules_used([], loaded=_everything(tree), tree=tree), tree)
    tops = third_party_imports(mods, tree)
    assert {"torch", "numpy", "pydantic", "pluggy", "sentencepiece", "brotli"} <= set(tops)
    assert not {"os", "json", "typing", "golf_core", "_thread", "__future__"} & set(tops)
    assert "golf_core.quant.compress" in tops["brotli"]


class _InProcess:
    """An in-process plugin object (not a module)."""


def test_in_process_plugin_objects_are_counted_but_not_exportable():
    ref = PluginRef("obj", None, "0", __name__)
    assert not ref.exportable
    tree = tree_for([ref], sys.modules)
    assert tree.has(__name__)
    used = modules_used([ref], loaded={}, tree=tree)
    assert __name__ in used


def test_plugin_refs_of_active_plugins(fresh_registry):
    from golf_core.plugins import activate
    from golf_core.recipe import Recipe
    from golf_core import TechniqueInfo, hookimpl

    class Obj:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="obj"))

    fresh_registry.add("obj", Obj(), version="1.2")
    refs = plugin_refs(activate(Recipe(plugins=["obj"])))
    assert refs == [PluginRef("obj", None, "1.2", __name__)]


def test_ship_run_never_fails_on_a_plugin_without_source(fresh_registry):
    import types

    from golf_core import TechniqueInfo, hookimpl
    from golf_core.plugins import activate
    from golf_core.recipe import Recipe

    mod = types.ModuleType("golf_nowhere_plugin")

    @hookimpl
    def golf_register(register):
        register(TechniqueInfo(name="nowhere"))

    mod.golf_register = golf_register
    fresh_registry.add("nowhere", mod)
    ctx = types.SimpleNamespace(plugins=activate(Recipe(plugins=["nowhere"])), recipe=Recipe(plugins=["nowhere"]))
    code = ship_run(ctx)
    assert code.missing == ("golf_nowhere_plugin",) and not code.exportable
    assert code.code_bytes == len(code.script.encode()) and "golf_core.run.driver" in code.modules
