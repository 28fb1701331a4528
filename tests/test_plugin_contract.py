"""The contract every bundled plugin passes, checked with the test kit (``golf_core.testkit``)
on the *installed* plugins, exactly as a third-party plugin checks itself; plus what only a
bundled plugin owes: a folder with its method card and its own tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from golf_core import plugins as P
from golf_core import tomlio
from golf_core.testkit import CARD_SECTIONS, plugin_problems, tiny_run_problems

REPO = Path(__file__).resolve().parent.parent
BUNDLED = sorted(p.name.removeprefix("golf-") for p in (REPO / "plugins").glob("golf-*") if (p / "pyproject.toml").is_file())


def test_every_bundled_plugin_is_installed_and_loads():
    reg = P.PluginRegistry.discover()
    missing = [n for n in BUNDLED if n not in reg.plugins]
    assert not missing, f"not installed (run scripts/setup.sh): {missing}"
    broken = {n: reg.plugins[n].error for n in BUNDLED if reg.plugins[n].error}
    assert not broken


@pytest.mark.parametrize("name", BUNDLED)
def test_plugin_passes_the_static_contract(name):
    assert plugin_problems(name) == []


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_plugin_ships_its_card_and_tests(name):
    folder = REPO / "plugins" / f"golf-{name}"
    card = folder / "README.md"
    assert card.is_file(), f"{name} has no method card"
    # the installed card (what the kit checks) is this file; an editable install's copy may lag it
    assert tomlio.load_file(folder / "pyproject.toml")["project"].get("readme") == "README.md", \
        f"{name}: pyproject.toml lacks readme = \"README.md\", so the method card is not installed"
    text = card.read_text().lower()
    assert all(w in text for w in CARD_SECTIONS), f"{name}: README.md lacks one of {CARD_SECTIONS}"
    assert list((folder / "tests").glob("test_*.py")), f"{name} has no tests"


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_plugin_runs_inside_a_tiny_recipe(name, tmp_path, demo_data):
    assert tiny_run_problems(name, tmp_path / name) == []
