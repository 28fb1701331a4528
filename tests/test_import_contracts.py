"""The layering contracts of ``.importlinter`` hold (``lint-imports``), they cover every bundled
plugin, and ``golf_core.api`` documents every name it exports."""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"

pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e .[test]")


def _plugin_packages() -> set[str]:
    return {p.name for p in ROOT.glob("plugins/golf-*/golf_*") if (p / "__init__.py").is_file()}


def _lines(value: str) -> set[str]:
    return {x.strip() for x in value.splitlines() if x.strip() and not x.strip().startswith("#")}


def test_lint_imports_keeps_every_contract():
    run = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
           "sys.exit(lint_imports_command())", "--no-cache", str(CONFIG)]
    out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", report)
    assert kept and kept.group(2) == "0" and int(kept.group(1)) >= 5, report


def test_every_plugin_is_under_contract():
    cfg = configparser.ConfigParser()
    cfg.read(CONFIG)
    plugins = _plugin_packages()
    assert plugins, "no plugin packages found under plugins/"
    assert plugins <= _lines(cfg["importlinter"]["root_packages"])
    assert _lines(cfg["importlinter:contract:core-imports-no-plugin"]["forbidden_modules"]) == plugins
    assert _lines(cfg["importlinter:contract:plugins-independent"]["modules"]) == plugins
    for name in ("plugins-never-reach-driver-or-tooling", "plugins-import-only-the-api"):
        assert _lines(cfg[f"importlinter:contract:{name}"]["source_modules"]) == plugins, name


def test_only_api_modules_are_open_to_plugins():
    """Every golf_core module except ``golf_core`` itself and ``golf_core.api`` is closed to plugins
    by one of the two plugin contracts (a new core module must be added to one of them)."""
    cfg = configparser.ConfigParser()
    cfg.read(CONFIG)
    closed = (_lines(cfg["importlinter:contract:plugins-import-only-the-api"]["forbidden_modules"])
              | _lines(cfg["importlinter:contract:plugins-never-reach-driver-or-tooling"]["forbidden_modules"]))
    top = {f"golf_core.{p.stem if p.is_file() else p.name}" for p in (ROOT / "golf_core").iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())}
    assert top - closed == {"golf_core.api"}


def test_api_documents_every_export():
    import golf_core.api as api

    doc = api.__doc__ or ""
    missing = [n for n in api.__all__ if f"``{n}``" not in doc]
    assert not missing, f"golf_core.api exports without a line in its docstring: {missing}"
    for n in api.__all__:
        assert hasattr(api, n), n
