"""golf_core.export.runtime: the exported script's command line, recipe and plugin registry."""
from __future__ import annotations

import pytest

from golf_core import plugins as P
from golf_core.errors import RecipeError
from golf_core.export import runtime
from golf_core.recipe import Recipe

RECIPE = Recipe(plugins=[]).to_toml()


def test_embedded_recipe_with_overrides_and_data_root():
    r = runtime.embedded_recipe(RECIPE, ["train.seed=42", "eval.stride=64"], data_root="/data/x")
    assert (r.train.seed, r.eval.stride, r.data.root) == (42, 64, "/data/x")
    assert r.source_path == "train_gpt.py" and not r.tiny
    with pytest.raises(RecipeError, match="train.seedd"):
        runtime.embedded_recipe(RECIPE, ["train.seedd=1"])


def test_print_recipe_and_errors(capsys):
    assert runtime.main(RECIPE, [], ["--print-recipe"]) == 0
    assert capsys.readouterr().out == RECIPE
    assert runtime.main(RECIPE, [], ["--set", "model.num_heads=7", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "num_heads" in err[0]


def test_register_plugins_installs_exactly_the_embedded_ones():
    pytest.importorskip("golf_qk_gain")
    old = P._REGISTRY
    try:
        reg = runtime.register_plugins([("qk-gain", "golf_qk_gain.plugin", "7.7")])
        assert P.registry() is reg and reg.names() == ["qk-gain"]
        assert reg.plugins["qk-gain"].version == "7.7" and reg.plugins["qk-gain"].ok
    finally:
        P.set_registry(old)


def test_embedded_outside_a_script_means_importable():
    assert runtime.embedded("golf_core.run.driver") and not runtime.embedded("golf_core.no_such_module")
