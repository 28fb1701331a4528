"""Tree-shaking: the module-level definitions a script reaches from its entry functions.

A reachability walk over the module-level statements of a source tree (``ast``; nothing is
imported). Each statement of a module defines names (a ``def``, a ``class``, an assignment,
each alias of an import); a definition is kept when something kept refers to one of its
names. References are resolved the way Python binds them: a global of the same module, an
import alias (followed across re-exports to the module that defines the name), ``mod.attr``
on an imported module (to the definition ``attr`` of ``mod``), and the imports inside a
function body. A module used as a value (not only as ``mod.attr``) keeps everything. Classes
are kept whole (their methods are reached through instances). Statements that define no
name (a module-level call, an attribute assignment) run whenever their module is imported,
so they are kept with it. ``if TYPE_CHECKING:`` blocks never run and are dropped, and so
are the branches a ``constants`` name rules out (``if IN_SCRIPT:`` ...). Names only used in
function annotations do not count (the minifier removes those annotations).

Methods are shaken by name: a method of a kept class stays when the kept code may look it up
by its name (an attribute ``x.name``, a string ``"name"``, a name its class body reads), when it is a dunder or a hook
(``golf_*``), when a decorator other than ``property``/``staticmethod``/``classmethod`` wraps
it, or when a library base class may call it (a name of ``torch.nn.Module``,
``torch.optim.Optimizer``, ``torch.autograd.Function``, ``pydantic.BaseModel``, every
``torch.nn`` class, ``pluggy.PluginManager``, ...:
``library_method_names``). The others are never called, so they are dropped.

``stubs`` replace a function by one that raises (a message), or any definition (a function,
a class, an assignment) by another definition (a ``(module, name)``), so that what lies behind
it (data preparation; the validating run machinery of ``golf_core.export.driver``) stays out
of the script.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Union

from .imports import _resolve_relative

#: A module-level definition: (module, name).
Symbol = tuple[str, str]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Prune(ast.NodeTransformer):
    """Drops ``if TYPE_CHECKING:`` blocks and the dead branch of ``if NAME:`` / ``if not NAME:``
    for names of known value, and the statements after a ``return``/``raise``/``continue``/
    ``break`` of the same block (a kept branch may end in one)."""

    def __init__(self, constants: Mapping[str, bool]) -> None:
        self.constants = constants

    def _value(self, test: ast.expr) -> Optional[bool]:
        if _is_type_checking(test):
            return False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            v = self._value(test.operand)
            return None if v is None else not v
        name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
        if name in self.constants:
            return bool(self.constants[name])
        if isinstance(test, ast.BoolOp):
            vals = [self._value(v) for v in test.values]
            if isinstance(test.op, ast.Or) and any(v is True for v in vals):
                return True
            if isinstance(test.op, ast.And) and any(v is False for v in vals):
                return False
        return None

    def visit_If(self, node: ast.If):
        v = self._value(node.test)
        if v is None:
            return self.generic_visit(node)
        body = node.body if v else node.orelse
        out = []
        for stmt in body:
            r = self.visit(stmt)
            out.extend(r if isinstance(r, list) else [r] if r is not None else [])
        return out or None

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                for i, stmt in enumerate(stmts):
                    if isinstance(stmt, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                        del stmts[i + 1:]  # unreachable once a pruned branch ends in one
                        break
        return node

    def visit_IfExp(self, node: ast.IfExp):
        v = self._value(node.test)
        if v is None:
            return self.generic_visit(node)
        return self.visit(node.body if v else node.orelse)


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Module-level names a statement binds (imports handled separately)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    out: set[str] = set()
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
        for child in ast.walk(stmt):
            if child is not stmt and isinstance(child, ast.stmt):
                out |= _bound_names(child)
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    out |= {(a.asname or a.name).partition(".")[0] for a in child.names}
            elif isinstance(child, ast.ExceptHandler) and child.name:
                out.add(child.name)
        return out
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                out.add(n.id)
    return out


#: Decorators that leave a method reachable only by its name.
_PLAIN_DECORATORS = {"property", "staticmethod", "classmethod", "cached_property", "setter", "getter", "deleter"}
_LIBRARY_METHODS: Optional[frozenset] = None


def library_method_names() -> frozenset:
    """Method names that a library base class may call on a subclass (kept by the shaker)."""
    global _LIBRARY_METHODS
    if _LIBRARY_METHODS is None:
        import collections.abc
        import contextlib
        import importlib.abc
        import io
        import json
        import logging
        import threading

        import pluggy
        import pydantic
        import torch

        bases = [object, dict, list, Exception, threading.Thread, logging.Handler, logging.Formatter, io.IOBase,
                 json.JSONEncoder, importlib.abc.MetaPathFinder, importlib.abc.InspectLoader,
                 contextlib.AbstractContextManager, collections.abc.MutableMapping, collections.abc.Iterator,
                 torch.nn.Module, torch.optim.Optimizer, torch.autograd.Function, torch.utils.data.Dataset,
                 torch.utils.data.IterableDataset, pydantic.BaseModel, pluggy.PluginManager,
                 *(c for c in vars(torch.nn).values() if isinstance(c, type))]
        _LIBRARY_METHODS = frozenset(n for b in bases for n in dir(b))
    return _LIBRARY_METHODS


def _decorator_name(d: ast.expr) -> str:
    d = d.func if isinstance(d, ast.Call) else d
    return d.attr if isinstance(d, ast.Attribute) else d.id if isinstance(d, ast.Name) else ""


def _shakeable_method(stmt: ast.stmt) -> bool:
    """True for a method that is reached only through its name."""
    if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    n = stmt.name
    if (n.startswith("__") and n.endswith("__")) or n.startswith("golf_") or n in library_method_names():
        return False
    return all(_decorator_name(d) in _PLAIN_DECORATORS for d in stmt.decorator_list)


def _names_read(stmt: ast.AST) -> set[str]:
    """The names ``stmt`` may look a method up by: attributes (``x.name``), strings that are
    a name or a dotted path (``getattr(x, "name")``; not docstrings or sentences), and the
    names a class body itself reads (``y = property(name)``)."""
    out: set[str] = set()
    docs = {id(b[0].value) for b in (getattr(n, "body", None) for n in ast.walk(stmt))
            if isinstance(b, list) and b and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant)}
    for n in ast.walk(stmt):
        if isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            parts = n.value.split(".")
            if all(p.isidentifier() for p in parts):
                out.update(parts)
    if isinstance(stmt, ast.ClassDef):
        for child in stmt.body:
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out |= {n.id for n in ast.walk(child) if isinstance(n, ast.Name)}
    return out


@dataclass
class _Binding:
    """What an import alias binds: a module (``module``) or a name of a module (``symbol``),
    or something outside the tree (both None)."""

    module: Optional[str] = None
    symbol: Optional[Symbol] = None


@dataclass
class _Unit:
    """One module-level statement (or one alias of an import) and what it needs."""

    stmt: ast.stmt
    names: set[str]
    alias: Optional[ast.alias] = None
    binding: Optional[_Binding] = None
    side_effect: bool = False
    origin: Optional[ast.stmt] = None


@dataclass
class ParsedModule:
    """A module's top-level units, by the names they define."""

    name: str
    is_package: bool
    tree: ast.Module
    units: list[_Unit] = field(default_factory=list)
    by_name: dict[str, list[int]] = field(default_factory=dict)


class Shaker:
    """The reachability walk over a source tree (``SourceTree``-like: ``has``, ``source``,
    ``modules[name][2]`` is_package)."""

    def __init__(self, tree, constants: Mapping[str, bool] = (), stubs: Mapping[Symbol, Union[str, Symbol]] = (),
                 named_roots: Mapping[str, Iterable[Symbol]] = ()) -> None:
        self.tree = tree
        self.constants = dict(constants)
        self.stubs = dict(stubs)
        self.parsed: dict[str, ParsedModule] = {}
        self.kept: dict[str, set[int]] = {}  # module -> unit indices
        self.whole: set[str] = set()
        self._queue: list[tuple[str, int]] = []
        self._done_names: set[Symbol] = set()
        #: Names each module must keep (other modules or the script's entry ask for them).
        self.external: dict[str, set[str]] = {}
        self._current: Optional[tuple[str, int]] = None
        #: For each kept unit, the unit that first reached it (None: an entry or root).
        self.reached_from: dict[tuple[str, int], Optional[tuple[str, int]]] = {}
        #: Identifiers the kept code reads; methods of kept classes waiting for their name.
        self.names_read: set[str] = set()
        self._pending: dict[str, list[tuple[str, ast.stmt]]] = {}
        self._live_methods: set[int] = set()  # id() of the method nodes kept
        #: Definitions waiting for the kept code to read a name (a hook's, which calls them).
        self._named_roots: dict[str, list[Symbol]] = {n: list(s) for n, s in dict(named_roots).items()}

    # -- parsing ---------------------------------------------------------------------------
    def _is_package(self, name: str) -> bool:
        return bool(self.tree.modules[name][2])

    def module(self, name: str) -> ParsedModule:
        """The parsed (and pruned) module."""
        if name not in self.parsed:
            src = self.tree.source(name)
            tree = _Prune(self.constants).visit(ast.parse(src, filename=name))
            pm = ParsedModule(name, self._is_package(name), tree)
            for stmt in tree.body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    continue  # a docstring
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                        pm.units.append(_Unit(stmt, set(), side_effect=True))
                        continue
                    for alias in stmt.names:
                        single = copy.copy(stmt)
                        single.names = [alias]
                        bound = (alias.asname or alias.name).partition(".")[0] if isinstance(stmt, ast.Import) \
                            else (alias.asname or alias.name)
                        pm.units.append(_Unit(single, {bound}, alias, self._bind(name, stmt, alias), origin=stmt))
                    continue
                names = _bound_names(stmt)
                key = (name, next(iter(names))) if len(names) == 1 else None
                stub = self.stubs.get(key) if key else None
                if isinstance(stub, tuple) or (stub and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))):
                    if isinstance(stub, tuple):  # another definition stands in for this one
                        imp = ast.ImportFrom(module=stub[0], names=[ast.alias(stub[1], key[1])], level=0)
                        pm.units.append(_Unit(imp, names, imp.names[0], self._bind(name, imp, imp.names[0]),
                                              origin=imp))
                        continue
                    stmt = _stub(stmt, stub)
                pm.units.append(_Unit(stmt, names, side_effect=not names))
            for i, u in enumerate(pm.units):
                for n in u.names:
                    pm.by_name.setdefault(n, []).append(i)
            self.parsed[name] = pm
        return self.parsed[name]

    def _bind(self, module: str, stmt: ast.stmt, alias: ast.alias) -> _Binding:
        if isinstance(stmt, ast.Import):
            target = alias.name if alias.asname else alias.name.partition(".")[0]
            return _Binding(module=target if self.tree.has(target) else None)
        base = _resolve_relative(module, self._is_package(module), stmt.module, stmt.level)
        if base is None or not self.tree.has(base):
            return _Binding()
        sub = f"{base}.{alias.name}"
        if self.tree.has(sub):
            return _Binding(module=sub)
        return _Binding(symbol=(base, alias.name))

    # -- walking ---------------------------------------------------------------------------
    def reach_symbol(self, module: str, name: str) -> None:
        """Keep the definition(s) of ``name`` in ``module`` (following re-exports)."""
        if (module, name) in self._done_names:
            return
        self._done_names.add((module, name))
        self.external.setdefault(module, set()).add(name)
        self.include_module(module)
        pm = self.module(module)
        hits = pm.by_name.get(name)
        if hits:
            for i in hits:
                self._keep(module, i)
            return
        if f"{module}.{name}" in self.tree.modules:
            self.include_module(f"{module}.{name}")
            return
        for i, u in enumerate(pm.units):  # a lazy ``__getattr__`` table: {"name": "pkg.module"}
            if "__getattr__" in u.names:
                self._keep(module, i)
                target = self._lazy_target(pm, name)
                if target:
                    self.reach_symbol(target, name)

    def _lazy_target(self, pm: ParsedModule, name: str) -> Optional[str]:
        for node in ast.walk(pm.tree):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values):
                    if (isinstance(k, ast.Constant) and k.value == name and isinstance(v, ast.Constant)
                            and isinstance(v.value, str) and self.tree.has(v.value)):
                        return v.value
        return None

    def include_module(self, name: str) -> None:
        """Import ``name`` (and its parents): their side-effect statements are kept."""
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            m = ".".join(parts[:i])
            if m in self.kept or not self.tree.has(m):
                continue
            self.kept[m] = set()
            for j, u in enumerate(self.module(m).units):
                if u.side_effect:
                    self._keep(m, j)

    def reach_whole(self, module: str) -> None:
        """Keep everything of ``module`` (it is used as a value)."""
        if module in self.whole:
            return
        self.whole.add(module)
        self.include_module(module)
        for j in range(len(self.module(module).units)):
            self._keep(module, j)

    def _keep(self, module: str, i: int) -> None:
        kept = self.kept.setdefault(module, set())
        if i in kept:
            return
        kept.add(i)
        self.reached_from[(module, i)] = self._current
        self._queue.append((module, i))

    def run(self) -> None:
        """Walk until nothing new is reached."""
        while self._queue:
            module, i = self._queue.pop()
            self._current = (module, i)
            unit = self.module(module).units[i]
            if unit.binding is not None:
                b = unit.binding
                if b.symbol:
                    self.reach_symbol(*b.symbol)
                elif b.module:
                    self.include_module(b.module)
                    if isinstance(unit.stmt, ast.Import) and self.tree.has(unit.alias.name):
                        self.include_module(unit.alias.name)  # ``import a.b`` imports a.b
                    if module in self.whole:
                        self.reach_whole(b.module)
                continue
            stmt = unit.stmt
            if isinstance(stmt, ast.ClassDef):
                stmt = copy.copy(stmt)
                stmt.body = []
                for child in unit.stmt.body:
                    if _shakeable_method(child) and child.name not in self.names_read:
                        self._pending.setdefault(child.name, []).append((module, child))
                    else:
                        self._live_methods.add(id(child))
                        stmt.body.append(child)
            self._walk_stmt(module, stmt)

    def _read(self, names: set[str]) -> None:
        """Record identifiers the kept code reads; walk the methods they name."""
        new = names - self.names_read
        self.names_read |= new
        for n in new:
            for symbol in self._named_roots.pop(n, ()):
                self.reach_symbol(*symbol)
            for module, method in self._pending.pop(n, ()):
                self._live_methods.add(id(method))
                self._walk_stmt(module, method)

    def _live(self, stmt: ast.stmt) -> ast.stmt:
        """``stmt`` without the methods nothing calls."""
        if not isinstance(stmt, ast.ClassDef):
            return stmt
        out = copy.copy(stmt)
        out.body = [c for c in stmt.body if not _shakeable_method(c) or id(c) in self._live_methods] or [ast.Pass()]
        return out

    def _walk_stmt(self, module: str, stmt: ast.stmt) -> None:
        self._read(_names_read(stmt))
        pm = self.module(module)
        local_imports = _local_bindings(self, module, stmt)
        for node, parent in _references(stmt):
            name = node.id
            chain = _attr_chain(parent, node)
            binding = local_imports.get(name)
            if binding is None:
                if name in pm.by_name:
                    for i in pm.by_name[name]:
                        u = pm.units[i]
                        self._keep(module, i)
                        if u.binding is not None and u.binding.module:
                            if chain:
                                self._reach_module_attr(u.binding.module, chain)
                            else:
                                self.reach_whole(u.binding.module)
                continue
            if binding.symbol:
                self.reach_symbol(*binding.symbol)
            elif binding.module:
                if chain:
                    self._reach_module_attr(binding.module, chain)
                else:
                    self.reach_whole(binding.module)

    def _reach_module_attr(self, module: str, chain: list[str]) -> None:
        self.include_module(module)
        head = chain[0]
        pm = self.module(module)
        sub = f"{module}.{head}"
        target: Optional[str] = None
        if head not in pm.by_name:
            target = sub if self.tree.has(sub) else None
        else:
            units = [pm.units[i] for i in pm.by_name[head]]
            if all(u.binding is not None and u.binding.module for u in units):  # ``from . import sub``
                for i in pm.by_name[head]:
                    self._keep(module, i)
                target = units[-1].binding.module
        if target is None:
            self.reach_symbol(module, head)
            return
        self.include_module(target)
        if len(chain) > 1:
            self._reach_module_attr(target, chain[1:])
        else:
            self.reach_whole(target)

    def private_names(self, module: str) -> Optional[set[str]]:
        """Module-level names of ``module`` that only its own code uses (safe to rename), or
        None when any name may be looked up from outside (a module used whole, or one that
        reads its own namespace)."""
        src = self.tree.source(module)
        if module in self.whole or "globals()" in src or "sys.modules" in src or "__getattr__" in src:
            return None
        pm = self.module(module)
        kept = self.kept.get(module, set())
        names: set[str] = set()
        for i in kept:
            u = pm.units[i]
            if isinstance(u.stmt, ast.ClassDef) or u.alias is not None:
                continue  # class names show in reprs and pickles; import aliases stay readable
            names |= u.names
        return {n for n in names - self.external.get(module, set()) if not n.startswith("__")}

    def label(self, key: Optional[tuple[str, int]]) -> str:
        """``module:name`` of a unit (for reports)."""
        if key is None:
            return "<entry>"
        u = self.module(key[0]).units[key[1]]
        return f"{key[0]}:{','.join(sorted(u.names)) or type(u.stmt).__name__}"

    def why(self, module: str, name: str) -> list[str]:
        """The chain of units by which ``module:name`` was reached, entry first."""
        pm = self.module(module)
        key: Optional[tuple[str, int]] = next(((module, i) for i in pm.by_name.get(name, [])
                                                if i in self.kept.get(module, ())), None)
        chain = []
        while key is not None and len(chain) < 50:
            chain.append(self.label(key))
            key = self.reached_from.get(key)
        return chain[::-1]

    def unit_sources(self, module: str) -> list[tuple[str, str]]:
        """``(name, source)`` of each kept unit of ``module`` (for size reports)."""
        pm = self.module(module)
        return [(self.label((module, i)), ast.unparse(self._live(pm.units[i].stmt)))
                for i in sorted(self.kept.get(module, ()))]

    # -- output ----------------------------------------------------------------------------
    def modules(self) -> list[str]:
        """The modules the script carries, sorted."""
        return sorted(self.kept)

    def source(self, module: str) -> str:
        """The module's kept statements, in source order (``ast.unparse``)."""
        pm = self.module(module)
        kept = self.kept.get(module, set())
        body: list[ast.stmt] = []
        last_origin = None
        for i, u in enumerate(pm.units):
            if i not in kept:
                continue
            if u.alias is not None and body and last_origin is u.origin:
                body[-1].names.append(u.alias)
                continue
            stmt = self._live(u.stmt)
            if u.alias is not None:
                stmt = copy.copy(stmt)
                stmt.names = [u.alias]
            last_origin = u.origin
            body.append(stmt)
        return ast.unparse(ast.Module(body=body, type_ignores=[]))


def _stub(fn: ast.FunctionDef, message: str) -> ast.FunctionDef:
    """``def name(*a, **k): raise SystemExit(message)``."""
    return ast.parse(f"def {fn.name}(*a, **k):\n    raise SystemExit({message!r})").body[0]


def _attr_chain(parent: Optional[ast.AST], node: ast.Name) -> list[str]:
    chain = []
    cur: ast.AST = node
    while isinstance(parent, ast.Attribute) and parent.value is cur:
        chain.append(parent.attr)
        cur = parent
        parent = getattr(parent, "_golf_parent", None)
    return chain


def _references(stmt: ast.stmt):
    """``(Name node, its parent)`` for every name loaded by ``stmt`` that the script needs:
    function signature annotations are skipped (the minifier removes them)."""
    out = []

    def visit(node: ast.AST, parent: Optional[ast.AST]) -> None:
        node._golf_parent = parent  # type: ignore[attr-defined]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                visit(d, node)
            args = node.args
            for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
                visit(default, node)
            for s in node.body:
                visit(s, node)
            return
        if isinstance(node, ast.AnnAssign) and not isinstance(parent, ast.ClassDef):
            visit(node.target, node)
            if node.value is not None:
                visit(node.value, node)
            return
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            out.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child, node)

    visit(stmt, None)
    return [(n, getattr(n, "_golf_parent", None)) for n in out]


def _local_bindings(shaker: Shaker, module: str, stmt: ast.stmt) -> dict[str, _Binding]:
    """Names bound by import statements nested in a definition (function-level imports)."""
    out: dict[str, _Binding] = {}
    if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return out
    for node in ast.walk(stmt):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node is not stmt:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            for alias in node.names:
                bound = (alias.asname or alias.name).partition(".")[0] if isinstance(node, ast.Import) \
                    else (alias.asname or alias.name)
                b = shaker._bind(module, node, alias)
                if isinstance(node, ast.Import) and b.module:
                    shaker.include_module(alias.name)  # ``import a.b`` imports a.b
                out[bound] = b
                if b.symbol:
                    shaker.include_module(b.symbol[0])
                elif b.module:
                    shaker.include_module(b.module)
    return out


def shake(tree, entries: Iterable[Symbol], whole: Iterable[str] = (), roots: Iterable[Symbol] = (),
          constants: Mapping[str, bool] = (), stubs: Mapping[Symbol, Union[str, Symbol]] = (),
          named_roots: Mapping[str, Iterable[Symbol]] = ()) -> Shaker:
    """Walk ``tree`` from ``entries`` (and ``roots``: more definitions to keep; ``named_roots``:
    definitions kept once the kept code reads the name they are filed under, as a hook's
    implementations once something calls the hook by its name; ``whole``: modules kept
    entirely); return the finished Shaker (``modules()``, ``source(m)``)."""
    s = Shaker(tree, constants, stubs, named_roots)
    for m, n in [*entries, *roots]:
        s.reach_symbol(m, n)
    for m in whole:
        s.reach_whole(m)
    s.run()
    return s


def hook_roots(tree, module: str, is_hook: Callable[[str], bool]) -> list[Symbol]:
    """The definitions of a plugin module that its plugin manager looks up by name."""
    s = Shaker(tree)
    return [(module, n) for n in s.module(module).by_name if is_hook(n)]
