"""Tree-shaking (golf_core.export.shake) on small synthetic packages: what is kept, what is
dropped, and that the shaken (and minified) modules compute what the originals compute."""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import textwrap

import pytest

from golf_core.export.compact import (compact_source, minify, pack7, unpack7, unwrap, wrap_brotli, wrap_lzma,
                                      wrap_smallest)
from golf_core.export.shake import shake


class FakeTree:
    """A SourceTree stand-in over in-memory sources."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = {k: textwrap.dedent(v) for k, v in sources.items()}
        self.modules: dict = {}
        for name in sources:  # a module with submodules is a package
            self.modules[name] = (name, None, any(m.startswith(name + ".") for m in sources))

    def has(self, name: str) -> bool:
        return name in self.modules

    def source(self, name: str) -> str:
        return self.sources[name]


PKG = {
    "pk": '''
        """A package."""
        from .util import helper, UNUSED_CONST
        from . import maths
        VERSION = "1"
    ''',
    "pk.util": '''
        from __future__ import annotations
        import os
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from .never import Nothing
        UNUSED_CONST = 3
        SCALE = 10
        def helper(x: "Annotated") -> int:
            """Doc."""
            return x * SCALE
        def unused(x):
            return os.getcwd()
        class Annotated:
            pass
    ''',
    "pk.maths": '''
        from dataclasses import dataclass
        from .util import SCALE
        @dataclass
        class Point:
            x: Scalar
            def norm(self):
                return abs(self.x) * SCALE
        Scalar = float
        def square(x):
            return x * x
        def cube(x):
            return x * x * x
        IN_SCRIPT = False
        def where():
            if IN_SCRIPT:
                return "script"
            else:
                return cube(2)
    ''',
    "pk.entry": '''
        import pk.maths
        from pk import helper
        from . import registry
        def main():
            from .lazy import late
            import pk.plain as pp
            reg = registry
            return helper(2) + pk.maths.square(3) + late() + pk.maths.Point(-4).norm() + len(reg.TABLE) + pp.five()
        def golf_hook():
            return pk.maths.where()
        def not_a_hook():
            return pk.maths.cube(9)
    ''',
    "pk.registry": '''
        TABLE = {"a": 1}
        def listed():
            return 1
    ''',
    "pk.lazy": '''
        def late():
            return 100
        def later():
            return 1000
    ''',
    "pk.plain": '''
        def five():
            return 5
    ''',
    "pk.unreached": '''
        def x():
            return 1
    ''',
}


def _kept(s, module):
    return {label.split(":", 1)[1] for label, _ in s.unit_sources(module)}


def test_only_reached_definitions_are_kept():
    tree = FakeTree(PKG)
    s = shake(tree, [("pk.entry", "main")], roots=[("pk.entry", "golf_hook")], constants={"IN_SCRIPT": True})
    assert "pk.unreached" not in s.modules()
    assert _kept(s, "pk.util") >= {"helper", "SCALE"} and not _kept(s, "pk.util") & {"unused", "UNUSED_CONST", "os"}
    # only in a function annotation: not needed once annotations are removed
    assert "Annotated" not in _kept(s, "pk.util")
    # TYPE_CHECKING blocks never run
    assert "never" not in s.source("pk.util") and "TYPE_CHECKING" not in s.source("pk.util")
    # class attribute annotations count (dataclasses read them)
    assert {"Point", "Scalar", "square", "dataclass"} <= _kept(s, "pk.maths")
    # IN_SCRIPT is True in the script: the else branch (cube) is dead
    assert "cube" not in _kept(s, "pk.maths") and "IN_SCRIPT" not in _kept(s, "pk.maths")
    # a module used as a value keeps everything; attribute uses keep only what they name
    assert _kept(s, "pk.registry") == {"TABLE", "listed"}
    assert _kept(s, "pk.lazy") == {"late"} and _kept(s, "pk.plain") == {"five"}
    assert "not_a_hook" not in _kept(s, "pk.entry")
    # the package's re-export of helper is followed; its unused names are not
    assert "UNUSED_CONST" not in s.source("pk") and "VERSION" not in s.source("pk")
    assert "helper" in s.source("pk")


def test_why_names_the_chain():
    s = shake(FakeTree(PKG), [("pk.entry", "main")])
    chain = s.why("pk.util", "SCALE")
    assert chain[0] == "pk.entry:main" and chain[-1] == "pk.util:SCALE"


def test_stubs_replace_or_raise():
    tree = FakeTree(PKG)
    s = shake(tree, [("pk.entry", "main")], stubs={("pk.lazy", "late"): ("pk.plain", "five"),
                                                   ("pk.maths", "square"): "not here"})
    assert "from pk.plain import five as late" in s.source("pk.lazy")
    assert "raise SystemExit('not here')" in s.source("pk.maths")


class _DictFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, sources, packages):
        self.sources, self.packages = sources, packages

    def find_spec(self, name, path=None, target=None):
        if name in self.sources:
            return importlib.util.spec_from_loader(name, self, is_package=name in self.packages)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.sources[module.__name__], module.__name__, "exec"), module.__dict__)


def _run(sources, packages, calls):
    finder = _DictFinder(sources, packages)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("pk", "ob", "dd")}
    for k in saved:
        del sys.modules[k]
    sys.meta_path.insert(0, finder)
    try:
        out = []
        for mod, fn in calls:
            out.append(getattr(importlib.import_module(mod), fn)())
        return out
    finally:
        sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if k.split(".")[0] in ("pk", "ob", "dd")]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_shaken_and_minified_modules_compute_what_the_originals_compute():
    tree = FakeTree(PKG)
    packages = {m for m, (_, _, pkg) in tree.modules.items() if pkg}
    want = _run(tree.sources, packages, [("pk.entry", "main"), ("pk.entry", "golf_hook")])
    assert want == [20 + 9 + 100 + 40.0 + 1 + 5, 8]
    s = shake(tree, [("pk.entry", "main")], roots=[("pk.entry", "golf_hook")])
    shaken = {m: minify(s.source(m)) for m in s.modules()}
    assert "Doc." not in shaken["pk.util"]  # docstrings go
    assert _run(shaken, packages, [("pk.entry", "main"), ("pk.entry", "golf_hook")]) == want


def test_wrappers_round_trip_and_the_smaller_wins():
    src = "print('x')\n" + "\n".join(f"v{i} = {i * i}" for i in range(300))
    a, b = wrap_lzma(src), wrap_brotli(src)
    assert unwrap(a) == src == unwrap(b)
    codec, best = wrap_smallest(src)
    size = lambda t: len(t.encode())  # noqa: E731
    assert best == min(a, b, key=size) and codec == ("brotli" if size(b) < size(a) else "lzma")
    ns: dict = {}
    exec(b.replace("print('x')", "pass"), ns)  # the brotli wrapper runs as it is
    assert ns["v17"] == 289


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8, 255, 4096])
def test_7bit_text_round_trips_every_byte_in_fewer_bytes_than_base85(n):
    import base64
    import random

    rng = random.Random(n)
    blob = bytes([0, 13, 34, 92, 10, 127, 255]) * (n // 7) + bytes(rng.randrange(256) for _ in range(n % 7))
    text = pack7(blob)
    assert unpack7(text, len(blob)) == blob
    assert not set(text) & {"\0", "\r", '"', "\\"}  # nothing a triple-quoted literal would change
    noise = bytes(rng.randrange(256) for _ in range(n))  # compressed data looks like noise
    assert unpack7(pack7(noise), n) == noise
    if n >= 255:
        assert len(pack7(noise).encode()) < 0.96 * len(base64.b85encode(noise))


def test_wrapped_script_runs_from_a_file(tmp_path):
    import subprocess

    src = "import sys\nprint('ran', sum(range(10)))\n" + "".join(f"v{i}={i}*{i}\n" for i in range(400))
    for wrap in (wrap_lzma, wrap_brotli):
        path = tmp_path / f"{wrap.__name__}.py"
        path.write_bytes(wrap(src).encode())
        out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout == "ran 45\n", out.stderr


def test_compact_source_is_deterministic():
    tree = FakeTree(PKG)
    s1 = shake(tree, [("pk.entry", "main")])
    s2 = shake(FakeTree(PKG), [("pk.entry", "main")])
    assert compact_source(s1, "a = 1\n", []) == compact_source(s2, "a = 1\n", [])


@pytest.mark.parametrize("bad", ["def f(:\n"])
def test_minify_refuses_bad_source(bad):
    with pytest.raises(SyntaxError):
        minify(bad)


def test_minify_cache_returns_what_the_minifier_returns(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLF_CACHE_DIR", str(tmp_path))
    src = "def f(long_name):\n    '''doc'''\n    return long_name + 1\n"
    first = minify(src)
    files = list((tmp_path / "minify").glob("*.py"))
    assert len(files) == 1 and files[0].read_text() == first and "doc" not in first
    files[0].write_text("poisoned = 1\n")  # the second call reads the cache, not the minifier
    assert minify(src) == "poisoned = 1\n"
    assert minify(src, {"f"}) != "poisoned = 1\n"  # other inputs, other key


OBJS = {
    "ob": "",
    "ob.entry": '''
        import json
        import functools
        def helper_only_dead_method_uses():
            return 1
        class Enc(json.JSONEncoder):
            def default(self, o):  # json calls it: a library name
                return sorted(o)
            def never(self):
                return helper_only_dead_method_uses()
        class Box:
            def __init__(self, v):
                self.v = v
            @property
            def twice(self):
                return self.v * 2
            def by_string(self):
                return self.v + 1
            @functools.lru_cache
            def decorated(self):
                return 0
            def unused(self):
                return helper_only_dead_method_uses()
        def main():
            b = Box(3)
            return [b.twice, getattr(b, "by_string")(), json.dumps({1}, cls=Enc)]
    ''',
}


def test_methods_nothing_names_are_dropped():
    tree = FakeTree(OBJS)
    s = shake(tree, [("ob.entry", "main")])
    src = s.source("ob.entry")
    assert "def unused" not in src and "def never" not in src
    assert "helper_only_dead_method_uses" not in _kept(s, "ob.entry")
    # read as an attribute, a string, called by the library, or under a decorator: kept
    for name in ("twice", "by_string", "default", "decorated", "__init__"):
        assert f"def {name}(" in src, name
    packages = {"ob"}
    want = _run(tree.sources, packages, [("ob.entry", "main")])
    assert want == [[6, 4, "[1]"]]
    shaken = {m: minify(s.source(m)) for m in s.modules()}
    assert _run(shaken, packages, [("ob.entry", "main")]) == want


DEAD = {
    "dd": "",
    "dd.entry": '''
        IN_SCRIPT = False
        def helper():
            return 1
        def bar(enabled):
            if IN_SCRIPT or not enabled:
                return None
            return helper()
        class Run:
            def resume(self):
                """The checkpoint to resume from."""
                return helper()
            def step(self):
                resume = 2  # a local of the same name
                return resume
        def main(resume=None):
            r = Run()
            "resume is mentioned in a sentence"
            return [bar(True), r.step(), None if resume is None else "resumed"]
    ''',
}


def test_pruned_branch_ends_its_block_and_sentences_keep_no_method():
    tree = FakeTree(DEAD)
    s = shake(tree, [("dd.entry", "main")], constants={"IN_SCRIPT": True})
    src = s.source("dd.entry")
    # ``if IN_SCRIPT or ...: return None`` is the whole function in a script
    assert "helper" not in _kept(s, "dd.entry") and "return helper()" not in src
    # a local, a parameter, a docstring and a sentence naming ``resume`` do not keep the method
    assert "def step" in src and "def resume" not in src
    want = _run(tree.sources, {"dd"}, [("dd.entry", "main")])
    assert want == [[1, 2, None]]
    shaken = {m: minify(s.source(m)) for m in s.modules()}
    assert _run(shaken, {"dd"}, [("dd.entry", "main")]) == [[None, 2, None]]  # the script's branch


def test_named_roots_are_kept_only_once_their_name_is_read():
    tree = FakeTree({
        "hk": '''
            def caller(plugins):
                return plugins.observe("golf_called", x=1)
            def golf_called(x):
                return helper(x)
            def golf_never(x):
                return other(x)
            def helper(x):
                return x
            def other(x):
                return x
        ''',
    })
    named = {"golf_called": [("hk", "golf_called")], "golf_never": [("hk", "golf_never")]}
    src = shake(tree, [("hk", "caller")], named_roots=named).source("hk")
    assert "def golf_called" in src and "def helper" in src
    assert "golf_never" not in src and "def other" not in src
