"""ARCHITECTURE.md cannot drift: its hook table is what scripts/hook_table.py generates from
golf_core/hookspecs.py, every path it names exists, and every hook it lists is implemented by a
plugin under test somewhere in the suite."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "ARCHITECTURE.md"


def _generator():
    spec = importlib.util.spec_from_file_location("hook_table", REPO / "scripts" / "hook_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _hook_names() -> list[str]:
    return [f.__name__ for f in _generator().hookspecs()]


def test_the_hook_table_is_what_the_generator_prints():
    gen = _generator()
    text = DOC.read_text()
    assert gen.render() in text, "ARCHITECTURE.md's hook table is stale: run python scripts/hook_table.py"
    assert gen.main(["--check"]) == 0


def test_the_generator_check_fails_on_a_stale_table(tmp_path, monkeypatch, capsys):
    gen = _generator()
    stale = tmp_path / "ARCHITECTURE.md"
    stale.write_text(DOC.read_text().replace("`golf_summary` | observer", "`golf_summary` | transform"))
    monkeypatch.setattr(gen, "DOC", stale)
    assert gen.main(["--check"]) == 1
    assert "hook table is stale" in capsys.readouterr().err
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0  # regenerating fixes it
    assert stale.read_text() == DOC.read_text()


def test_the_generator_reads_every_hookspec():
    import pluggy

    from golf_core import hookspecs

    pm = pluggy.PluginManager("golf")  # pluggy's own reading of the specs is the reference
    pm.add_hookspecs(hookspecs)
    declared = {n for n in vars(pm.hook) if n.startswith("golf_")}
    assert set(_hook_names()) == declared and len(declared) >= 19
    rows = [line for line in DOC.read_text().splitlines() if re.match(r"\| \d+ \| `golf_", line)]
    assert [re.search(r"`(golf_\w+)`", r).group(1) for r in rows] == _hook_names()
    for r in rows:  # kind, arguments and a sentence in every row
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[2] in ("registration", "transform", "exclusive", "observer") and cells[4].endswith("."), r


def test_every_path_the_doc_names_exists():
    named = set(re.findall(r"`((?:golf_core|tests|scripts|plugins)/[\w./-]*)`", DOC.read_text()))
    assert len(named) > 10
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def _test_files() -> list[Path]:
    return sorted([*(REPO / "tests").glob("test_*.py"), *(REPO / "plugins").glob("golf-*/tests/test_*.py")])


def _hookimpls_in(path: Path) -> set[str]:
    """Names of the ``@hookimpl``-decorated functions defined in a test file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("golf_"):
            for d in node.decorator_list:
                d = d.func if isinstance(d, ast.Call) else d
                if (isinstance(d, ast.Name) and d.id == "hookimpl") or (isinstance(d, ast.Attribute) and d.attr == "hookimpl"):
                    out.add(node.name)
    return out


@pytest.mark.parametrize("hook", _hook_names())
def test_every_hook_is_implemented_by_a_plugin_under_test(hook):
    """Some test defines a plugin implementing ``hook`` (and so drives the core's call of it)."""
    files = [p.relative_to(REPO).as_posix() for p in _test_files() if hook in _hookimpls_in(p)]
    assert files, f"no test implements {hook} in a plugin under test; add one (tests/test_hooks.py shows how)"
