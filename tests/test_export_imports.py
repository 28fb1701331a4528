"""golf_core.export.imports: static import edges, checked against hand-written expectations."""
from __future__ import annotations

import textwrap

from golf_core.export.imports import import_edges

KNOWN = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d", "pkg.lazy_target", "other", "other.x"}


def edges(source: str, module: str = "pkg.sub.c", is_package: bool = False):
    return import_edges(module, textwrap.dedent(source), is_package, KNOWN.__contains__)


def test_absolute_imports_add_parents_and_are_eager_at_top_level():
    e = edges("""
        import other.x
        import numpy as np
        from pkg import a, not_a_module
    """)
    assert e.eager == {"other", "other.x", "numpy", "pkg", "pkg.a"}
    assert e.lazy == set()


def test_relative_imports_resolve_against_the_package():
    e = edges("""
        from . import d
        from .. import b
        from ..a import thing
        from ...other import x
    """)
    # pkg.sub.c: "." is pkg.sub, ".." is pkg; "..." leaves the tree (pkg has no parent) -> ignored
    assert e.eager == {"pkg", "pkg.sub", "pkg.sub.d", "pkg.b", "pkg.a"}


def test_relative_import_inside_a_package_init():
    e = edges("from .c import f\nfrom . import d\n", module="pkg.sub", is_package=True)
    assert e.eager == {"pkg", "pkg.sub.c", "pkg.sub.d"}


def test_function_bodies_are_lazy_class_bodies_and_blocks_are_eager():
    e = edges("""
        try:
            import other
        except ImportError:
            pass
        if True:
            from pkg import b
        class K:
            from pkg import a
            def method(self):
                from pkg.sub import d
        def f():
            import pkg.lazy_target
            g = lambda: __import__("x")
    """)
    assert e.eager == {"other", "pkg", "pkg.b", "pkg.a"}
    assert e.lazy == {"pkg.sub", "pkg.sub.d", "pkg.lazy_target"}


def test_type_checking_blocks_are_skipped_but_their_else_runs():
    e = edges("""
        from typing import TYPE_CHECKING
        import typing
        if TYPE_CHECKING:
            from pkg import a
        else:
            from pkg import b
        if typing.TYPE_CHECKING:
            import other
    """)
    assert "pkg.a" not in e.eager | e.lazy and "other" not in e.eager | e.lazy
    assert {"pkg", "pkg.b", "typing"} <= e.eager


def test_string_constants_naming_known_modules_are_lazy_edges():
    e = edges("""
        _LAZY = {"thing": "pkg.lazy_target", "nope": "not.a.module", "text": "pkg is nice"}
    """)
    assert e.lazy == {"pkg", "pkg.lazy_target"}
    assert e.eager == set()


def test_future_and_self_imports_are_ignored():
    e = edges("from __future__ import annotations\nimport pkg.sub.c\n")
    assert e.eager == {"pkg", "pkg.sub"}
