"""The text of an exported ``train_gpt.py``: one self-contained script per run.

It holds the run's resolved recipe (``RECIPE``), its plugins (``PLUGINS``: name, module,
version), the source of every module the run used (``SOURCES``: script path -> source, in
path order) and a ``sys.meta_path`` finder that imports them. The finder goes first on
``sys.meta_path``, so an installed golf is never used, and it refuses a module of an embedded
package that is not embedded (an editable install's finder would otherwise supply it).
``python train_gpt.py`` then calls
``golf_core.export.runtime.main``. The text depends only on its inputs (no time, no paths),
so the same run always gives the same script. By default it is wrapped, like the records, in
the two-line lzma (raw LZMA2) + base85 self-extractor of ``golf_core.quant.accounting``.
"""
from __future__ import annotations

import ast
from typing import Iterable, Sequence

from .. import __version__, tomlio
from ..quant.accounting import ship_code
from .bundle import ModuleSource, PluginRef

#: First line of a compressed script (the records' self-extractor).
WRAPPER_PREFIX = "import lzma,base64\n"

_BOOTSTRAP = '''

class GolfBundle(_abc.MetaPathFinder, _abc.InspectLoader):
    """Imports the modules embedded in SOURCES, ahead of anything installed."""

    golf_bundle = True

    def __init__(self, sources, script):
        self.sources, self.script, self.index = sources, script, {}
        for path in sources:
            parts = path[:-3].split("/")
            package = parts[-1] == "__init__"
            self.index[".".join(parts[:-1] if package else parts)] = (path, package)
        self.tops = {name.partition(".")[0] for name in self.index}

    def find_spec(self, fullname, path=None, target=None):
        hit = self.index.get(fullname)
        if hit is None:
            if fullname.partition(".")[0] in self.tops:  # never fall through to an installed copy
                raise ModuleNotFoundError(f"No module named {fullname!r} in {self.script}", name=fullname)
            return None
        spec = _util.spec_from_loader(fullname, self, origin=_os.path.join(self.script, hit[0]), is_package=hit[1])
        spec.has_location = True
        return spec

    def is_package(self, fullname):
        return self.index[fullname][1]

    def get_source(self, fullname):
        return self.sources[self.index[fullname][0]]

    def get_code(self, fullname):
        origin = _os.path.join(self.script, self.index[fullname][0])
        return compile(self.get_source(fullname), origin, "exec", dont_inherit=True)


def _excepthook(kind, value, tb):  # the traceback module shows embedded source lines
    import traceback

    traceback.print_exception(kind, value, tb)


_sys.meta_path.insert(0, GolfBundle(SOURCES, _os.path.abspath(__file__)))
_sys.excepthook = _excepthook

if __name__ == "__main__":
    from golf_core.export.runtime import main

    _sys.exit(main(RECIPE, PLUGINS))
'''


def literal(text: str) -> str:
    """A Python literal for ``text``: a raw triple-quoted string when that reads back exactly
    (readable sources), else ``repr``."""
    if "'''" not in text and not text.endswith(("\\", "'")) and "\r" not in text and "\x00" not in text:
        lit = "r'''" + text + "'''"
        try:
            if ast.literal_eval(lit) == text:
                return lit
        except (SyntaxError, ValueError):
            pass
    return repr(text)


def _comment(text: str) -> str:
    return " ".join(text.split())


def script_source(modules: Iterable[ModuleSource], recipe_toml: str, plugins: Sequence[PluginRef]) -> str:
    """The uncompressed script (deterministic: modules in path order, no time or paths)."""
    mods = sorted(modules, key=lambda m: m.path)
    meta = _comment(str(tomlio.loads(recipe_toml).get("meta", {}).get("source", "")))
    lines = [
        f"# train_gpt.py exported by golf {__version__}" + (f": {meta}" if meta else ""),
        "# plugins: " + (", ".join(f"{p.name} {p.version}" for p in plugins) or "(none: the baseline)"),
        "# usage: python train_gpt.py [--seed N] [--set KEY=VALUE ...] [--data DIR] [--out DIR]",
        "# The golf_core modules this run used and the plugins' code are embedded in SOURCES and",
        "# imported from there first; nothing of golf needs to be installed.",
        "import importlib.abc as _abc",
        "import importlib.util as _util",
        "import os as _os",
        "import sys as _sys",
        "",
        f"RECIPE = {literal(recipe_toml)}",
        "PLUGINS = [",
        *[f"    ({p.name!r}, {p.module!r}, {p.version!r})," for p in plugins],
        "]",
        "SOURCES = {",
    ]
    for m in mods:
        lines.append(f"{m.path!r}: {literal(m.source)},")
    lines.append("}")
    return "\n".join(lines) + _BOOTSTRAP


def build_script(modules: Iterable[ModuleSource], recipe_toml: str, plugins: Sequence[PluginRef],
                 compress: bool = True) -> str:
    """The exported ``train_gpt.py`` text; with ``compress`` the lzma+base85 self-extractor."""
    src = script_source(modules, recipe_toml, plugins)
    return ship_code(src) if compress else src


def is_compressed(script: str) -> bool:
    """True for a self-extracting script: :func:`build_script` with ``compress``, or a compact
    script (lzma or brotli, ``golf_core.export.compact``)."""
    from .compact import BROTLI_PREFIX, LZMA_PREFIX

    return script.startswith((WRAPPER_PREFIX, BROTLI_PREFIX, LZMA_PREFIX))


def unwrap(script: str) -> str:
    """The uncompressed source of a (possibly compressed) exported script, without running it."""
    from .compact import unwrap as unwrap_compact

    return unwrap_compact(script) if is_compressed(script) else script
