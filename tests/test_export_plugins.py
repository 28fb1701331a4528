"""Every installed plugin can be exported: one script carries all of them (every module any of
them can reach), and inside it (no golf on the path) each plugin imports, registers, activates
and builds its model, in the largest compatible stack and, for the others, alone."""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from golf_core import plugins as P
from golf_core.errors import GolfError
from golf_core.export.bundle import PluginRef, collect_sources, modules_used, tree_for
from golf_core.export.isolate import build_isolated_site, isolated_env, isolated_python
from golf_core.export.requirements import BASE_REQUIREMENTS
from golf_core.export.script import build_script
from golf_core.recipe import Recipe

PROBE = textwrap.dedent('''
    import importlib, json, runpy, sys
    script, others = sys.argv[1], json.loads(sys.argv[2])
    g = runpy.run_path(script, run_name="golf_probe")   # installs the finder, does not run main
    finder = sys.meta_path[0]
    for name in sorted(finder.index):
        importlib.import_module(name)
    from golf_core.export.runtime import embedded_recipe, register_plugins
    from golf_core.run import count_params
    from golf_core.plugins import activate
    from golf_core.recipe import Recipe
    reg = register_plugins(g["PLUGINS"])
    stack = embedded_recipe(g["RECIPE"])
    params = {"+".join(stack.plugins): count_params(stack, activate(stack, reg))}
    for name in others:
        alone = Recipe(plugins=[name])
        params[name] = count_params(alone, activate(alone, reg))
    print(json.dumps({
        "registered": sorted(reg.plugins),
        "params": params,
        "foreign": sorted(n for n, m in sys.modules.items()
                          if n.startswith("golf") and not str(getattr(m, "__file__", "")).startswith(script)),
    }))
''')


def _installed_refs() -> list[PluginRef]:
    reg = P.PluginRegistry.discover()
    refs = []
    for name in reg.names():
        entry = reg.plugins[name]
        if entry.ok and getattr(entry.module, "__name__", None):
            refs.append(PluginRef(name, entry.module.__name__, entry.version, entry.module.__name__))
    return refs


def _compatible_stack(names: list[str]) -> list[str]:
    """Greedily the largest prefix-ordered stack of plugins that activates together."""
    reg = P.PluginRegistry.discover()
    stack: list[str] = []
    for n in names:
        try:
            P.activate(Recipe(plugins=stack + [n]), reg)
        except GolfError:
            continue
        stack.append(n)
    return stack


def test_every_installed_plugin_bundles_and_runs_inside_the_script(tmp_path):
    refs = _installed_refs()
    if not refs:
        pytest.skip("no golf plugins installed")
    tree = tree_for(refs, {})
    names = modules_used(refs, loaded={m: object() for m in tree.modules}, tree=tree)  # every reachable module
    stack = _compatible_stack([r.name for r in refs])
    others = [r.name for r in refs if r.name not in stack]
    script = tmp_path / "train_gpt.py"
    script.write_text(build_script(collect_sources(names, tree), Recipe(plugins=stack).to_toml(), refs, compress=True))
    site = tmp_path / "site"
    build_isolated_site(BASE_REQUIREMENTS, site)
    out = subprocess.run([*isolated_python(), "-c", PROBE, str(script), json.dumps(others)], cwd=tmp_path,
                         env=isolated_env(site), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["registered"] == sorted(r.name for r in refs)
    assert got["foreign"] == []  # every golf module came out of the script
    assert len(got["params"]) == 1 + len(others) and all(v > 0 for v in got["params"].values())
    assert len(stack) >= len(refs) // 2, stack
