"""The built wheel is self-contained: recipes and ``py.typed`` ship inside ``golf_core``, and an
install with no checkout on ``sys.path`` lists the recipes and validates ``demo.toml`` (and a
recipe that ``extends = "demo.toml"`` by bare name).

The wheels (golf-core and the six plugins ``demo.toml`` names) are built offline with
``pip wheel --no-build-isolation`` from a copy of the sources, and installed into a fresh
``venv --system-site-packages`` (torch, pydantic ... come from the base interpreter, which has no
golf), so the test never touches the network or the developer's environment.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from golf_core import tomlio

REPO = Path(__file__).resolve().parent.parent
DEMO_PLUGINS = tomlio.load_file(REPO / "golf_core" / "recipes" / "demo.toml")["plugins"]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "tests", "*.pyc")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def test_recipes_and_py_typed_are_package_data():
    """The source layout the wheel test relies on: recipes live in the package; the checkout's
    ``recipes/`` path still reaches them."""
    from golf_core.recipe import RECIPES_DIR, find_recipe

    assert RECIPES_DIR == REPO / "golf_core" / "recipes"
    assert (REPO / "golf_core" / "py.typed").is_file()
    assert (REPO / "recipes" / "pr1394.toml").resolve() == RECIPES_DIR / "pr1394.toml"
    assert find_recipe("demo") == RECIPES_DIR / "demo.toml"
    assert {"demo", "pr1394", "baseline"} <= {p.stem for p in RECIPES_DIR.glob("*.toml")}


@pytest.mark.slow  # ~30 s idle: 7 offline wheel builds, a venv, two CLI calls; the only test of what users install
def test_wheel_installs_into_a_fresh_venv_and_finds_its_recipes(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "golf_core", src / "golf-core" / "golf_core", ignore=_IGNORE)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / "golf-core" / f)
    for name in DEMO_PLUGINS:
        shutil.copytree(REPO / "plugins" / f"golf-{name}", src / f"golf-{name}", ignore=_IGNORE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")

    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels),
          *[str(p) for p in sorted(src.iterdir())]], cwd=tmp_path, env=env)
    core = next(wheels.glob("golf_core-*.whl"))
    listed = set(zipfile.ZipFile(core).namelist())
    assert {"golf_core/py.typed", "golf_core/recipes/demo.toml", "golf_core/recipes/pr1394.toml"} <= listed

    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    py, golf = venv / "bin" / "python", venv / "bin" / "golf"
    _run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", *[str(w) for w in sorted(wheels.glob("*.whl"))]],
         cwd=tmp_path, env=env)

    work = tmp_path / "work"  # no checkout here or on sys.path
    work.mkdir()
    where = _run([str(py), "-c", "import golf_core; print(golf_core.__file__)"], cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"golf_core imported from {where}, not the fresh venv"

    rows = json.loads(_run([str(golf), "recipes", "--json"], cwd=work, env=env).stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"demo", "pr1394", "pr1413", "baseline"} <= set(by_name)
    assert Path(by_name["demo"]["path"]).is_relative_to(venv)

    out = _run([str(golf), "validate", "demo.toml"], cwd=work, env=env).stdout
    assert "plugins: " + " -> ".join(DEMO_PLUGINS) in out and "params: " in out
    (work / "mine.toml").write_text('extends = "demo.toml"\nplugins = ["qk-gain"]\n')
    out = _run([str(golf), "validate", "mine.toml"], cwd=work, env=env).stdout
    assert "plugins: qk-gain\n" in out
