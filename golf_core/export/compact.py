"""The compact ``train_gpt.py``: what a run's ``code_bytes`` counts.

Only the definitions the run reaches (``golf_core.export.shake`` from the script's entry,
``runtime.main``, and the hook implementations of the active plugins), each module's kept
code stripped of prose (``golf_core.export.strip``) and minified with python-minifier
(docstrings, comments and annotations removed, locals renamed), the modules held in one dict and imported by a small finder ahead of anything
installed, wrapped in the smaller of the two self-extractors the records use: lzma (raw
LZMA2) or brotli, the compressed blob written as text of 7 bits per character (``pack7``: one
UTF-8 byte per character but for 4 escaped digits, about 1.18 bytes per byte where the
records' base85 takes 1.25). Data preparation (the demo corpus, tokenizer training,
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
from typing import Any, Iterable, Optional, Sequence

import brotli

from .. import tomlio
from .bundle import PluginRef, SourceTree
from .driver import LEAN_STUBS, bake, called_only, lean_roots
from .script import literal
from .fold import fold_tree
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
#: Names whose value is known inside every exported script (``golf_core.scripted``; their
#: dead branches are dropped).
SCRIPT_CONSTANTS = {"IN_SCRIPT": True, "AUDITED": False}


def script_constants(recipe_toml: str) -> dict[str, bool]:
    """The ``golf_core.scripted`` switches for a script of this resolved recipe."""
    train = tomlio.loads(recipe_toml).get("train", {})
    return {**SCRIPT_CONSTANTS, "SCRIPT_CHECKPOINTS": int(train.get("checkpoint_every", 0)) > 0}
#: First line of each self-extractor.
LZMA_PREFIX = "import lzma\n"
BROTLI_PREFIX = "import brotli\n"
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
    text = "".join((here / f).read_text("utf-8") for f in ("compact.py", "fold.py", "shake.py", "strip.py", "driver.py"))
    return hashlib.sha256((text + md.version("python-minifier")).encode()).hexdigest()[:12]


def is_hook_name(name: str) -> bool:
    """True for a name a plugin manager looks up on a plugin module (``golf_*``)."""
    return name.startswith("golf_")


def shake_run(tree: SourceTree, plugins: Sequence[PluginRef], entry: Symbol = TRAIN_ENTRY,
              stubs: Iterable[Symbol] = PREP_ENTRIES, recipe_toml: str = "", baked: Any = "auto") -> Shaker:
    """The reachability walk for a script of ``recipe_toml``: from ``entry`` and each plugin's hooks
    (``baked``, :func:`baked_for`'s: from the hooks the run calls, its driver baked)."""
    baked = baked_for(entry, recipe_toml, plugins) if baked == "auto" else baked
    roots = [r for p in plugins if tree.has(p.source_module) for r in hook_roots(tree, p.source_module, is_hook_name)]
    table = stubs if isinstance(stubs, dict) else dict.fromkeys(stubs)
    present = {s: v or PREP_MESSAGE for s, v in table.items() if tree.has(s[0])}
    named: dict[str, list[Symbol]] = {}
    if baked is not None:  # a hook's implementations are kept where the kept code calls it
        roots, named, present = [], lean_roots(baked), {**present, **LEAN_STUBS}
    walk = dict(entries=[entry], roots=roots, constants=script_constants(recipe_toml), stubs=present, named_roots=named)
    first = shake(tree, **walk)
    folded = fold_tree(tree, first, recipe_toml, plugins)  # the recipe's values folded in, shaken again
    return shake(folded, **walk)


def baked_for(entry: Symbol, recipe_toml: str, plugins: Sequence[PluginRef]) -> Optional[dict[str, Any]]:
    """The baked driver (``golf_core.export.driver``) of a training or data script, else ``None``."""
    return bake(recipe_toml, plugins) if entry in (TRAIN_ENTRY, PREP_ENTRY) and recipe_toml else None


def compact_source(shaker: Shaker, recipe_toml: str, plugins: Sequence[PluginRef],
                   entry: Symbol = TRAIN_ENTRY, baked: Optional[dict[str, Any]] = None) -> tuple[str, dict[str, str]]:
    """The uncompressed compact script and its minified modules (deterministic; ``R`` is the
    ``baked`` driver's constants where there is one, else the recipe's TOML)."""
    mods: dict[str, str] = {}
    for name in shaker.modules():
        mods[name] = minify(strip_prose(shaker.source(name)), shaker.private_names(name))
    lines = [f"R={baked!r}" if baked is not None else f"R={literal(recipe_toml)}", f"P={[(p.name, p.module, p.version) for p in plugins]!r}", "S={"]
    for name, code in mods.items():
        pkg = bool(shaker.tree.modules[name][2])
        lines.append(f"{name!r}:({code!r},{int(pkg)}),")
    lines.append("}")
    return "\n".join(lines) + "\n" + _FINDER.replace("{entry}", entry[1]), mods


#: 7-bit digits that cannot stand for themselves inside a ``"""`` literal (NUL, CR, quote,
#: backslash): written as the 2-byte character ``chr(256 + d)`` (``ord(c) & 127`` is ``d``).
_ESCAPED = {0, 13, 34, 92}


def pack7(blob: bytes) -> str:
    """``blob`` as text of 7 bits per character: one UTF-8 byte each but for the 4 escaped
    digits (about 1.18 bytes per byte; base85 takes 1.25)."""
    k = -(-8 * len(blob) // 7)
    bits = bin(int.from_bytes(blob, "big"))[2:].zfill(7 * k) if blob else ""
    digits = (int(bits[i:i + 7], 2) for i in range(0, len(bits), 7))
    return "".join(chr(256 + d) if d in _ESCAPED else chr(d) for d in digits)


def unpack7(text: str, size: int) -> bytes:
    """The inverse of :func:`pack7` (``size``: the blob's length); what a script runs."""
    return int("".join(f"{ord(c) & 127:07b}" for c in text) or "0", 2).to_bytes(size, "big")


def _wrap(module: str, call: str, blob: bytes) -> str:
    return (f"import {module}\nexec({call}(int(''.join(f'{{ord(c)&127:07b}}'for c in\"\"\"{pack7(blob)}\"\"\"),2)"
            f".to_bytes({len(blob)},'big'){_LZMA_TAIL if module == 'lzma' else ''}))\n")


_LZMA_TAIL = ",format=lzma.FORMAT_RAW,filters=[{'id':lzma.FILTER_LZMA2}]"


def wrap_lzma(source: str) -> str:
    """The lzma (raw LZMA2, as the records) self-extractor, its blob as 7-bit text."""
    return _wrap("lzma", "lzma.decompress", lzma.compress(source.encode(), format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS))


def wrap_brotli(source: str) -> str:
    """The brotli (quality 11) self-extractor, its blob as 7-bit text."""
    return _wrap("brotli", "brotli.decompress", brotli.compress(source.encode(), quality=11, lgwin=24))


def wrap_smallest(source: str) -> tuple[str, str]:
    """``(codec, script)``: the smaller self-extractor (lzma on a tie)."""
    a, b = wrap_lzma(source), wrap_brotli(source)
    return ("brotli", b) if len(b.encode()) < len(a.encode()) else ("lzma", a)


def unwrap(script: str) -> str:
    """The source inside a self-extracting script (a compact one, or the readable bundle's
    lzma+base85 one), without running it."""
    if 'b85decode("' in script[:200]:
        start = script.index('b85decode("') + len('b85decode("')
        blob = base64.b85decode(script[start:script.index('"', start)])
    else:
        start = script.index('"""') + 3
        end = script.index('"""', start)
        size = int(script[end:].split(".to_bytes(", 1)[1].split(",", 1)[0])
        blob = unpack7(script[start:end], size)
    if script.startswith(BROTLI_PREFIX):
        return brotli.decompress(blob).decode()
    return lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]).decode()


def is_compact(script: str) -> bool:
    """True for a script written by :func:`build_compact`."""
    return script.startswith((LZMA_PREFIX, BROTLI_PREFIX)) and "S={" in unwrap(script)[:1_000_000]


def build_compact(tree: SourceTree, recipe_toml: str, plugins: Sequence[PluginRef],
                  entry: Symbol = TRAIN_ENTRY, stubs: Iterable[Symbol] = PREP_ENTRIES) -> CompactScript:
    """The compact script for a run with these plugins and this resolved recipe."""
    baked = baked_for(entry, recipe_toml, plugins)
    shaker = shake_run(tree, plugins, entry, stubs, recipe_toml, baked)
    if baked is not None:
        baked = called_only(baked, shaker.names_read)
    src, mods = compact_source(shaker, recipe_toml, plugins, entry, baked)
    codec, script = wrap_smallest(src)
    return CompactScript(script, src, mods, codec)
