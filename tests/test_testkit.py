"""The test kit from outside the repo: two plugins written to a temporary directory (found
through a ``.dist-info`` on ``sys.path``, as pip would leave them), each checked in its own
pytest session with ``--golf-contract``. The good one passes, its own tests using the kit's
functions and fixtures; the broken one fails with one line per problem."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from golf_core.testkit import plugin_problems
from golf_core.plugins import PluginRegistry

CARD = """# golf-{name}

Scales the initial token embedding.

## Lineage
None (a test plugin).

## Legality
fixed-predictor: it changes only the initialization.

## Defaults
factor = 2.0
"""
PLUGIN = '''
"""golf hooks of the {name} test plugin."""
from pydantic import Field
import torch

from golf_core import Options, TechniqueInfo, hookimpl


class ScaleOptions(Options):
    factor: float = Field(2.0, gt=0{description})


@hookimpl
def golf_register(register):
    register(TechniqueInfo(name="{name}", options=ScaleOptions, summary="scale the token embedding",
                           lineage=[], legality="fixed-predictor"))


@hookimpl
def golf_build_model(model, opts):
    with torch.no_grad():
        model.tok_emb.weight.mul_(opts.factor)
    return model
'''
BROKEN_EVAL = '''

@hookimpl
def golf_eval_adapt(model, session):
    return True  # scores nothing
'''
OWN_TESTS = '''
from golf_core.testkit import plugin_problems


def test_my_plugin_keeps_the_contract():
    assert plugin_problems("ext-scale") == []


def test_tiny_recipe_fixture(golf_tiny_recipe):
    recipe = golf_tiny_recipe(["ext-scale"], options={"ext-scale": {"factor": 3.0}})
    assert recipe.plugins == ["ext-scale"] and recipe.tiny and recipe.options["ext-scale"] == {"factor": 3.0}


def test_registry_fixture(golf_registry):
    from golf_ext_scale import plugin
    from golf_core.plugins import registry
    golf_registry.add("ext-scale", plugin)
    assert registry() is golf_registry and golf_registry.names() == ["ext-scale"]
'''


def _write_plugin(site: Path, name: str, broken: bool) -> None:
    mod = "golf_" + name.replace("-", "_")
    (site / mod).mkdir(parents=True)
    (site / mod / "__init__.py").write_text(f'"""The {name} test plugin."""\n')
    desc = "" if broken else ', description="multiplier for the initial token embedding"'
    code = PLUGIN.format(name=name, description=desc) + (BROKEN_EVAL if broken else "")
    (site / mod / "plugin.py").write_text(code)
    card = CARD.format(name=name)
    if broken:
        card = card.replace("## Legality\nfixed-predictor: it changes only the initialization.\n", "")
    info = site / f"{mod}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: golf-{name}\nVersion: 0.1.0\n"
                                   f"Description-Content-Type: text/markdown\n\n{card}")
    (info / "entry_points.txt").write_text(f"[golf]\n{name} = {mod}.plugin\n")


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """(site, env): the two plugins on a sys.path entry outside the repo, and an environment
    that finds them and only them."""
    root = tmp_path_factory.mktemp("outside")
    site = root / "site"
    _write_plugin(site, "ext-scale", broken=False)
    _write_plugin(site, "ext-broken", broken=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(site), GOLF_LOAD_PLUGINS="ext-scale,ext-broken", PYTHONDONTWRITEBYTECODE="1")
    return site, env


def _pytest(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_kit_reports_each_problem_in_process(outside, monkeypatch):
    site, _ = outside
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("GOLF_LOAD_PLUGINS", "ext-scale,ext-broken")
    reg = PluginRegistry.discover()
    assert reg.names() == ["ext-broken", "ext-scale"]
    assert plugin_problems("ext-scale", reg) == []
    assert plugin_problems("ext-broken", reg) == [
        "ext-broken: option 'factor' has no description (Field(..., description=...))",
        "ext-broken: method card (README.md) lacks a 'legal' section",
    ]
    assert plugin_problems("ext-missing", reg)[0].startswith("ext-missing: not installed")


@pytest.mark.slow  # ~25 s idle: two pytest sessions (torch import each) and two tiny CPU runs; the only test of --golf-contract
def test_a_plugin_outside_the_repo_runs_the_contract_in_its_own_pytest(outside, tmp_path, demo_data):
    _, env = outside
    project = tmp_path / "golf-ext-scale"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_own.py").write_text(textwrap.dedent(OWN_TESTS))

    good = _pytest(["-v", "--golf-contract=ext-scale"], cwd=project, env=env)
    assert good.returncode == 0, good.stdout[-4000:] + good.stderr[-2000:]
    for item in ("golf-contract[ext-scale-static] PASSED", "golf-contract[ext-scale-tiny-run] PASSED",
                 "test_own.py::test_my_plugin_keeps_the_contract PASSED"):
        assert item in good.stdout, good.stdout[-4000:]
    assert re.search(r"\b5 passed", good.stdout)

    empty = tmp_path / "empty"
    empty.mkdir()
    bad = _pytest(["-q", "--golf-contract=ext-broken"], cwd=empty, env=env)
    assert bad.returncode == 1, bad.stdout[-4000:] + bad.stderr[-2000:]
    assert re.search(r"\b2 failed", bad.stdout)
    assert re.search(r"golf contract: ext-broken static _+\n"
                     r"ext-broken: option 'factor' has no description \(Field\(\.\.\., description=\.\.\.\)\)\n",
                     bad.stdout), bad.stdout[-4000:]
    assert "FAILED ::golf-contract[ext-broken-static] - ext-broken: option 'factor'" in bad.stdout
    assert "ext-broken: method card (README.md) lacks a 'legal' section" in bad.stdout
    assert "ext-broken: not every validation target was scored exactly once" in bad.stdout
