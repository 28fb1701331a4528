"""golf_core.export.script: literals, determinism, the self-extractor, and the embedded finder
(run in a fresh interpreter where the real golf is installed: the embedded one must win)."""
from __future__ import annotations

import ast
import base64
import json
import lzma
import subprocess
import sys
import textwrap

import pytest

from golf_core.export.bundle import ModuleSource, PluginRef
from golf_core.export.script import build_script, is_compressed, literal, script_source, unwrap

TRICKY = [
    "", "plain\n", "ends with backslash \\", "ends with quote '", "has ''' triple", 'has """ double triple\n',
    "raw \\n escapes \\t and \\\\ stay\n", "unicode: ▁ é 𝔘\n", "cr\r\nlf\n", "nul \x00 byte", "'starts with quote",
    "\\'''", "x = r'''a'''\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_literal_reads_back_exactly(text):
    assert ast.literal_eval(literal(text)) == text


def test_readable_sources_stay_raw_triple_quoted():
    src = 'def f():\n    """Doc with \\n in it."""\n    return "x"\n'
    assert literal(src).startswith("r'''")


def _fake_sources(marker: str = "embedded") -> list[ModuleSource]:
    files = {
        "golf_core/__init__.py": f"MARKER = {marker!r}\n",
        "golf_core/sub/__init__.py": "from .mod import answer\n",
        "golf_core/sub/mod.py": "from .. import MARKER\n\ndef answer():\n    '''The answer.'''\n    return 42\n",
        "golf_core/export/__init__.py": "",
        "golf_core/export/runtime.py": textwrap.dedent('''
            import importlib, inspect, json, sys
            import golf_core
            from golf_core.sub import mod

            def main(recipe, plugins, argv=None):
                try:
                    importlib.import_module("golf_core.run")
                    leaked = True
                except ModuleNotFoundError:
                    leaked = False
                try:
                    mod.answer(None)
                except TypeError as e:
                    tb = e.__traceback__
                    while tb.tb_next:
                        tb = tb.tb_next
                print(json.dumps({
                    "marker": golf_core.MARKER, "answer": mod.answer(), "leaked": leaked,
                    "file": mod.__file__, "source": inspect.getsource(mod.answer),
                    "recipe": recipe, "plugins": plugins, "argv": sys.argv[1:],
                    "first_finder": type(sys.meta_path[0]).__name__,
                }))
                return 0
        '''),
    }
    out = []
    for path, src in files.items():
        parts = path[:-3].split("/")
        pkg = parts[-1] == "__init__"
        out.append(ModuleSource(".".join(parts[:-1] if pkg else parts), path, src, pkg))
    return out


PLUG = [PluginRef("demo-plugin", "golf_core.sub", "0.3", "golf_core.sub")]


def test_script_text_is_deterministic_and_sorted():
    mods = _fake_sources()
    a = script_source(mods, "plugins = []\n", PLUG)
    b = script_source(list(reversed(mods)), "plugins = []\n", PLUG)
    assert a == b
    assert a.index("'golf_core/__init__.py'") < a.index("'golf_core/export/__init__.py'") < a.index("'golf_core/sub/mod.py'")
    assert build_script(mods, "plugins = []\n", PLUG) == build_script(mods, "plugins = []\n", PLUG)


def test_compressed_script_is_the_two_line_raw_lzma2_base85_extractor():
    mods = _fake_sources()
    src = script_source(mods, "plugins = []\n", PLUG)
    packed = build_script(mods, "plugins = []\n", PLUG, compress=True)
    assert is_compressed(packed) and not is_compressed(src)
    lines = packed.splitlines()
    assert len(lines) == 2 and lines[0] == "import lzma,base64"
    blob = lines[1].split('b85decode("')[1].split('")')[0]
    decoded = lzma.decompress(base64.b85decode(blob), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    assert decoded.decode("utf-8") == src == unwrap(packed)
    assert len(packed.encode()) < len(src.encode()) or len(src) < 2000


@pytest.mark.parametrize("compress", [False, True])
def test_embedded_modules_win_over_the_installed_golf(tmp_path, compress):
    script = tmp_path / "train_gpt.py"
    script.write_text(build_script(_fake_sources(), "plugins = []\n# the recipe\n", PLUG, compress=compress))
    out = subprocess.run([sys.executable, str(script), "--flag"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["marker"] == "embedded" and got["answer"] == 42
    assert not got["leaked"]  # golf_core.run is installed but not embedded: not importable
    assert got["first_finder"] == "GolfBundle"
    assert got["file"] == str(script / "golf_core" / "sub" / "mod.py")
    assert "The answer." in got["source"]  # inspect works through the loader's get_source
    assert got["recipe"] == "plugins = []\n# the recipe\n"
    assert got["plugins"] == [["demo-plugin", "golf_core.sub", "0.3"]] and got["argv"] == ["--flag"]


def test_tracebacks_point_into_the_script(tmp_path):
    mods = _fake_sources()
    mods = [m if m.path != "golf_core/export/runtime.py" else
            ModuleSource(m.name, m.path, "def main(recipe, plugins):\n    raise RuntimeError('boom')\n", False)
            for m in mods]
    script = tmp_path / "train_gpt.py"
    script.write_text(build_script(mods, "", [], compress=True))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode != 0
    assert f'File "{script}/golf_core/export/runtime.py", line 2, in main' in out.stderr
    assert "raise RuntimeError('boom')" in out.stderr and "RuntimeError: boom" in out.stderr
