"""The contract every bundled (and every installed) plugin passes: it imports, declares its
metadata and an Options model whose defaults validate, ships a method card, and runs inside a
tiny recipe on the CPU."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from golf_core import Options
from golf_core import plugins as P
from golf_core.technique import LEGALITY_TRACKS

REPO = Path(__file__).resolve().parent.parent
BUNDLED = sorted(p.name.removeprefix("golf-") for p in (REPO / "plugins").glob("golf-*") if (p / "pyproject.toml").is_file())


def test_every_bundled_plugin_is_installed_and_loads():
    reg = P.PluginRegistry.discover()
    missing = [n for n in BUNDLED if n not in reg.plugins]
    assert not missing, f"not installed (run scripts/setup.sh): {missing}"
    broken = {n: reg.plugins[n].error for n in BUNDLED if reg.plugins[n].error}
    assert not broken


@pytest.mark.parametrize("name", BUNDLED)
def test_plugin_declares_metadata_and_options(name):
    reg = P.PluginRegistry.discover()
    p = reg.get(name)
    info = p.info
    assert info.name == name and info.summary
    assert info.legality in LEGALITY_TRACKS
    assert isinstance(info.lineage, list)
    assert issubclass(info.options, Options)
    opts = info.options()  # every default validates
    assert info.track_for(opts) in LEGALITY_TRACKS
    for fname, f in info.options.model_fields.items():
        assert f.description, f"{name}: option {fname!r} has no description"
    assert [h for h in p.hooks if h != "golf_register"], f"{name} implements no hook"
    card = (REPO / "plugins" / f"golf-{name}" / "README.md")
    assert card.is_file(), f"{name} has no method card"
    text = card.read_text().lower()
    for word in ("lineage", "legal", "default"):
        assert word in text, f"{name}'s README.md lacks a {word!r} section"
    tests = list((REPO / "plugins" / f"golf-{name}" / "tests").glob("test_*.py"))
    assert tests, f"{name} has no tests"


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_plugin_runs_inside_a_tiny_recipe(name, tmp_path):
    from golf_core.run import run_recipe
    from golf_core.tiny import apply_tiny
    from golf_core.recipe import apply_override, validate_recipe_data

    data = apply_tiny({"plugins": [name], "eval": {"stride": 64}})
    for o in ("train.iterations=3", "train.warmup_steps=1", "train.train_batch_tokens=1024",
              "eval.max_tokens=1025", "train.log_every=0"):
        apply_override(data, o)
    recipe = validate_recipe_data(data, f"contract-{name}.toml")
    recipe.tiny = True
    result = run_recipe(recipe, tmp_path / name, echo=False, progress=False)
    assert result["plugins"] == [name]
    assert math.isfinite(result["val_bpb"]) and 0 < result["val_bpb"] < 20
    assert result["legality"]["checks"]["coverage_exactly_once"]
    assert (tmp_path / name / "artifact.bin").stat().st_size == result["model_bytes"]
