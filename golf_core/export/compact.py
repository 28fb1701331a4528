"""The compact ``train_gpt.py``: what a run's ``code_bytes`` counts.

Only the definitions the run reaches (``golf_core.export.shake`` from the script's entry,
``runtime.main``, and the hook implementations of the active plugins), each module's kept
code stripped of prose (``golf_core.export.strip``) and minified with python-minifier
(docstrings, comments and annotations removed, locals renamed), the modules held in one dict and imported by a small finder ahead of anything
installed, wrapped in the smaller of the two self-extractors the records use: lzma (raw
LZMA2) + base85 or brotli + base85. Data preparation (the demo corpus, tokenizer training,
downloads: ``PREP_ENTRIES``) is replaced by a stub naming ``prepare_data.py``, the second
script of an export folder, which carries it (``prepare_script``).
"""
from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata as md
import lzma
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import brotli

from .bundle import PluginRef, SourceTree
from .script import literal
from .shake import Shaker, Symbol, hook_roots, shake
from .strip import strip_prose

#: The entry of a training script, and of the data preparation script.
TRAIN_ENTRY: Symbol = ("golf_core.export.runtime", "main")
PREP_ENTRY: Symbol = ("golf_core.export.runtime", "prepare_main")
#: Definitions that prepare data (not counted: the records' download and tokenize scripts sit
#: beside their train_gpt.py): the training script raises, naming prepare_data.py, instead,
#: or (a ``(module, name)``) uses what prepare_data.py built without checking it again.
PREP_ENTRIES: dict[Symbol, object] = {
    ("golf_core.data.build", "build_dataset"): None,
    ("golf_core.data.download", "download"): None,
    ("golf_core.data.build", "cached_dataset"): ("golf_core.export.prepared", "prepared_dataset"),
}
PREP_MESSAGE = "the dataset is not prepared: run `python prepare_data.py` first"
#: Names whose value is known inside an exported script (their dead branches are dropped).
SCRIPT_CONSTANTS = {"IN_SCRIPT": True}
#: First line of each self-extractor.
LZMA_PREFIX = "import lzma,base64\n"
BROTLI_PREFIX = "import brotli,base64\n"
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
#: python-minifier settings: class attribute annotations stay (dataclasses and pydantic read
#: them), asserts stay (they are checks), module-level names stay (other modules import them).
_MINIFY = dict(remove_literal_statements=True, rename_locals=True, rename_globals=False, hoist_literals=False,
               remove_debug=True, remove_asserts=False, combine_imports=True, remove_pass=True,
               remove_explicit_return_none=True, constant_folding=True)

_FINDER = '''import sys,os,importlib.abc as A,importlib.util as U
class B(A.MetaPathFinder,A.InspectLoader):
 golf_bundle=golf_compact=1
 def __init__(s,f):s.script=f;s.sources={n:c for n,(c,p) in S.items()};s.index={n:(n,p) for n,(c,p) in S.items()}
 def find_spec(s,n,p=None,t=None):
  if n in S:r=U.spec_from_loader(n,s,origin=s.script+'/'+n,is_package=S[n][1]);r.has_location=1;return r
  if n.split('.')[0] in{k.split('.')[0] for k in S}:raise ModuleNotFoundError(n,name=n)
 def is_package(s,n):return S[n][1]
 def get_source(s,n):return S[n][0]
 def get_code(s,n):return compile(S[n][0],s.script+'/'+n,'exec',dont_inherit=1)
sys.meta_path.insert(0,B(os.path.abspath(__file__)))
if __name__=='__main__':
 from golf_core.export.runtime import {entry}
 sys.exit({entry}(R,P))
'''


@dataclass(frozen=True)
class CompactScript:
    """A compact script and what it holds."""

    script: str
    source: str
    modules: dict[str, str]  # name -> its minified code
    codec: str  # "lzma" or "brotli"

    @property
    def code_bytes(self) -> int:
        """UTF-8 size of the script."""
        return len(self.script.encode("utf-8"))


def minify(source: str, private: Optional[set[str]] = None) -> str:
    """``source`` minified by python-minifier (docstrings, comments, annotations, local names;
    and the module-level names in ``private``, which no other module uses). A pure function
    of its inputs, so results are cached on disk (``minify_cache_dir``)."""
    if not source.strip():
        return ""
    import python_minifier  # only where scripts are built, never inside one

    settings = (sorted(_MINIFY.items()), md.version("python-minifier"))
    key = hashlib.sha256(repr((source, sorted(private or ()), settings)).encode()).hexdigest()
    cached = _cache_read(key)
    if cached is not None:
        return cached
    keep_class_annotations = python_minifier.RemoveAnnotationsOptions(remove_class_attribute_annotations=False)
    options = dict(_MINIFY)
    if private:
        tree = ast.parse(source)
        defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        options.update(rename_globals=True, preserve_globals=sorted(defined - set(private)))
    out = python_minifier.minify(source, remove_annotations=keep_class_annotations, **options)
    _cache_write(key, out)
    return out


def minify_cache_dir() -> Path:
    """Where minified modules are cached: ``$GOLF_CACHE_DIR/minify`` (default ``~/.cache/golf``)."""
    return Path(os.environ.get("GOLF_CACHE_DIR") or Path.home() / ".cache" / "golf").expanduser() / "minify"


def _cache_read(key: str) -> Optional[str]:
    try:
        return (minify_cache_dir() / f"{key}.py").read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _cache_write(key: str, text: str) -> None:
    d = minify_cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(text, "utf-8")
        os.replace(tmp, d / f"{key}.py")
    except OSError:
        pass  # a cache only


def exporter_hash() -> str:
    """Short sha256 of the code that writes compact scripts and of the minifier's version (a
    script depends on them as well as on the modules it carries)."""
    here = Path(__file__).parent
    text = "".join((here / f).read_text("utf-8") for f in ("compact.py", "shake.py", "strip.py"))
    return hashlib.sha256((text + md.version("python-minifier")).encode()).hexdigest()[:12]


def is_hook_name(name: str) -> bool:
    """True for a name a plugin manager looks up on a plugin module (``golf_*``)."""
    return name.startswith("golf_")


def shake_run(tree: SourceTree, plugins: Sequence[PluginRef], entry: Symbol = TRAIN_ENTRY,
              stubs: Iterable[Symbol] = PREP_ENTRIES) -> Shaker:
    """The reachability walk for a script: from ``entry`` and each plugin's hooks."""
    roots = [r for p in plugins if tree.has(p.source_module) for r in hook_roots(tree, p.source_module, is_hook_name)]
    table = stubs if isinstance(stubs, dict) else dict.fromkeys(stubs)
    present = {s: v or PREP_MESSAGE for s, v in table.items() if tree.has(s[0])}
    return shake(tree, [entry], roots=roots, constants=SCRIPT_CONSTANTS, stubs=present)


def compact_source(shaker: Shaker, recipe_toml: str, plugins: Sequence[PluginRef],
                   entry: Symbol = TRAIN_ENTRY) -> tuple[str, dict[str, str]]:
    """The uncompressed compact script and its minified modules (deterministic)."""
    mods: dict[str, str] = {}
    for name in shaker.modules():
        mods[name] = minify(strip_prose(shaker.source(name)), shaker.private_names(name))
    lines = [f"R={literal(recipe_toml)}", f"P={[(p.name, p.module, p.version) for p in plugins]!r}", "S={"]
    for name, code in mods.items():
        pkg = bool(shaker.tree.modules[name][2])
        lines.append(f"{name!r}:({code!r},{int(pkg)}),")
    lines.append("}")
    return "\n".join(lines) + "\n" + _FINDER.replace("{entry}", entry[1]), mods


def wrap_lzma(source: str) -> str:
    """The records' lzma (raw LZMA2) + base85 self-extractor."""
    blob = base64.b85encode(lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)).decode()
    return (LZMA_PREFIX + f'exec(lzma.decompress(base64.b85decode("{blob}"),format=lzma.FORMAT_RAW,'
            'filters=[{"id":lzma.FILTER_LZMA2}]))\n')


def wrap_brotli(source: str) -> str:
    """The brotli + base85 self-extractor."""
    blob = base64.b85encode(brotli.compress(source.encode(), quality=11, lgwin=24)).decode()
    return BROTLI_PREFIX + f'exec(brotli.decompress(base64.b85decode("{blob}")))\n'


def wrap_smallest(source: str) -> tuple[str, str]:
    """``(codec, script)``: the smaller self-extractor (lzma on a tie)."""
    a, b = wrap_lzma(source), wrap_brotli(source)
    return ("brotli", b) if len(b) < len(a) else ("lzma", a)


def unwrap(script: str) -> str:
    """The source inside a compact script (either wrapper), without running it."""
    start = script.index('b85decode("') + len('b85decode("')
    blob = base64.b85decode(script[start:script.index('"', start)])
    if script.startswith(BROTLI_PREFIX):
        return brotli.decompress(blob).decode()
    return lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]).decode()


def is_compact(script: str) -> bool:
    """True for a script written by :func:`build_compact`."""
    return script.startswith((LZMA_PREFIX, BROTLI_PREFIX)) and "S={" in unwrap(script)[:1_000_000]


def build_compact(tree: SourceTree, recipe_toml: str, plugins: Sequence[PluginRef],
                  entry: Symbol = TRAIN_ENTRY, stubs: Iterable[Symbol] = PREP_ENTRIES) -> CompactScript:
    """The compact script for a run with these plugins and this resolved recipe."""
    shaker = shake_run(tree, plugins, entry, stubs)
    src, mods = compact_source(shaker, recipe_toml, plugins, entry)
    codec, script = wrap_smallest(src)
    return CompactScript(script, src, mods, codec)
