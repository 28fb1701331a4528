"""The baked driver of a compact script (``golf_core.export.driver`` at export time,
``golf_core.export.lean`` inside the script) against the validating one it replaces: the same
recipe text and hash, tables, options, hook implementations in the same order, legality."""
from __future__ import annotations

import importlib
import sys

import pytest

from golf_core import plugins as P
from golf_core import tomlio
from golf_core.export import lean
from golf_core.export.bundle import PluginRef, plugin_refs, tree_for
from golf_core.export.compact import build_compact
from golf_core.export.driver import _fields, bake
from golf_core.options import Options
from golf_core.recipe import load_recipe, validate_recipe_data


def _validating(name: str, tiny: bool = True):
    """What the validating script did: recipe from its TOML, plugins registered, options written back."""
    recipe = load_recipe(name, tiny=tiny)
    refs = plugin_refs(P.activate(recipe))
    ap0 = P.activate(recipe)
    recipe.options = {**recipe.options, **{n: o.model_dump(mode="json") for n, o in ap0.options.items()}}
    toml = recipe.to_toml()
    reg = P.PluginRegistry()
    for r in refs:
        reg.add(r.name, importlib.import_module(r.module), version=r.version)
    again = validate_recipe_data(tomlio.loads(toml), "train_gpt.py")
    ap = P.activate(again, reg)
    again.options = {**again.options, **{n: o.model_dump(mode="json") for n, o in ap.options.items()}}
    return toml, refs, again, ap


@pytest.mark.parametrize("name", ["demo", "pr1394", "pr1413"])
def test_baked_recipe_and_plugins_are_the_validated_ones(name):
    toml, refs, recipe, ap = _validating(name)
    baked = bake(toml, refs)
    assert baked is not None
    r = lean.Recipe(baked, "train_gpt.py")
    assert r.to_toml() == recipe.to_toml() and r.sha256() == recipe.sha256() and r.to_dict() == recipe.to_dict()
    for table in ("meta", "data", "model", "train", "eval", "artifact", "check"):
        want = getattr(recipe, table)
        for f in type(want).model_fields:
            assert getattr(getattr(r, table), f) == getattr(want, f), (table, f)
        assert getattr(r, table).model_dump(mode="json") == want.model_dump(mode="json")
    bp = lean.activate(r)
    assert bp.order == ap.order and bp.legality() == ap.legality()
    for n in ap.order:
        assert bp.options[n].model_dump(mode="json") == ap.options[n].model_dump(mode="json")
        assert {f: getattr(bp.options[n], f) for f in type(ap.options[n]).model_fields} == dict(ap.options[n])
        assert bp.entries[n].module is ap.entries[n].module and bp.entries[n].version == ap.entries[n].version
        assert bp.entries[n].hooks == ap.entries[n].hooks and bp.entries[n].dist == ap.entries[n].dist
        assert bp.info(n).required_on_load == ap.info(n).required_on_load
    for hook in P.ALL_HOOKS:
        if hook in P.REGISTRATION_HOOKS:
            continue
        assert bp.providers(hook) == ap.providers(hook), hook
        for n in ap.providers(hook):
            assert bp.function(hook, n) == ap.function(hook, n)
        if hook in P.EXCLUSIVE_HOOKS and not ap.providers(hook):
            assert bp.function(hook, "golf-core") == ap.function(hook, "golf-core")


def test_the_script_carries_no_pydantic_pluggy_or_argparse():
    recipe = load_recipe("pr1394", tiny=True)
    refs = plugin_refs(P.activate(recipe))
    c = build_compact(tree_for(refs, {}), recipe.to_toml(), refs)
    assert c.source.startswith("R={'plugins':")
    for module, code in c.modules.items():
        for lib in ("pydantic", "pluggy", "argparse"):
            assert lib not in code, (module, lib)
    # only the hooks the run calls: no registration, no Options models, no --tiny scaling
    assert "def golf_register" not in c.source and "golf_core.options" not in c.modules
    assert "golf_core.config" not in c.modules and "golf_core.export.lean" in c.modules


def test_options_that_would_not_read_back_keep_the_validating_driver():
    class WithMethod(Options):
        k: int = 1

        def twice(self) -> int:
            return 2 * self.k

    class WithTuple(Options):
        dims: tuple[int, int] = (1, 2)

    class Plain(Options):
        k: int = 1
        name: str = "x"

    assert _fields(WithMethod()) is None and _fields(WithTuple()) is None
    assert _fields(Plain()) == {"k": 1, "name": "x"}
    # a plugin that does not import: the script could not run either; nothing is baked
    assert bake('plugins = ["nowhere"]\n', [PluginRef("nowhere", "golf_no_such_module", "0", "golf_no_such_module")]) is None


@pytest.mark.parametrize("flags", [{"--seed": "42"}, {"--data": "/data/x"}, {"--seed": "7", "--data": "d"}])
def test_seed_and_data_flags_are_the_validating_overrides(flags):
    from golf_core.export import runtime

    toml, refs, _, _ = _validating("pr1394")
    got = lean._recipe(bake(toml, refs), "train_gpt.py", flags)
    sets = [f"train.seed={flags['--seed']}"] if "--seed" in flags else []
    want = runtime.embedded_recipe(toml, sets, flags.get("--data"))
    reg = P.PluginRegistry()
    for r in refs:
        reg.add(r.name, importlib.import_module(r.module), version=r.version)
    ap = P.activate(want, reg)
    want.options = {**want.options, **{n: o.model_dump(mode="json") for n, o in ap.options.items()}}  # make_context
    assert got.to_toml() == want.to_toml() and got.sha256() == want.sha256() and got.to_dict() == want.to_dict()
    assert (got.train.seed, got.data.root, got.data.dataset_dir) == (want.train.seed, want.data.root, want.data.dataset_dir)


def test_lean_main_refuses_what_it_does_not_know(monkeypatch, capsys):
    toml, refs, _, _ = _validating("demo")
    monkeypatch.setattr(sys, "argv", ["train_gpt.py", "--set", "train.seed=1"])
    assert lean.main(bake(toml, refs)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "usage" in err[0] and "[--seed N]" in err[0] and "[--data DIR]" in err[0]
    monkeypatch.setattr(sys, "argv", ["prepare_data.py", "--seed", "1"])
    assert lean.prepare_main(bake(toml, refs)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[--data DIR]" in err[0] and "--seed" not in err[0]
