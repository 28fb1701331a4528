"""Static import edges of one module, read from its source with ``ast`` (nothing is imported).

Each module yields two sets of absolute module names:

* ``eager``: what its top level imports when it loads (module body, class bodies, ``if`` and
  ``try`` blocks at top level), parents included (``import a.b.c`` loads ``a``, ``a.b``,
  ``a.b.c``); ``if TYPE_CHECKING:`` blocks are skipped because they never run;
* ``lazy``: imports inside function bodies, plus string constants that name a known module
  (``importlib.import_module("golf_core.data.loaders")`` in a lazy ``__getattr__`` table).

``from pkg import name`` adds an edge to ``pkg.name`` only when ``pkg.name`` is a known module.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class ImportEdges:
    """The modules one module imports when it loads (``eager``) or later (``lazy``)."""

    eager: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _resolve_relative(module: str, is_package: bool, target: str | None, level: int) -> str | None:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".") if package else []
    if level > len(parts):  # beyond the top-level package: Python refuses it too
        return None
    base = parts[: len(parts) - (level - 1)]
    if target:
        base += target.split(".")
    return ".".join(base) or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_edges(module: str, source: str, is_package: bool, is_module: Callable[[str], bool]) -> ImportEdges:
    """The eager and lazy import edges of ``module`` (given its ``source``).

    :param is_module: tells whether a dotted name is a module of the known universe (used
        for ``from pkg import name`` and for string constants).
    """
    edges = ImportEdges()
    tree = ast.parse(source, filename=module)

    def add(names: list[str], lazy: bool) -> None:
        (edges.lazy if lazy else edges.eager).update(names)

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_with_parents(alias.name), lazy)
            return
        if isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, is_package, node.module, node.level)
            if base is None or base == "__future__":
                return
            names = _with_parents(base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if alias.name != "*" and is_module(sub):
                    names.append(sub)
            add(names, lazy)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, lazy)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lazy = True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and is_module(node.value):
            add(_with_parents(node.value), True)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, lazy)

    visit(tree, False)
    edges.eager.discard(module)
    edges.lazy.discard(module)
    edges.lazy -= edges.eager
    return edges
