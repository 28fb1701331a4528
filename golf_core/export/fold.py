"""Folding: a compact script specialized to the VALUES of its resolved recipe.

Before the tree-shaker walks a script's modules (``golf_core.export.shake``), every read of a
recipe or plugin-option value that is fixed for the run is replaced by that value, the tests it
decides are evaluated, and the branches they rule out are dropped (``if opts.lqer_top_k:`` with
0, ``if opts.rotation == "none":``, ``x if cfg.fit else y``); the shaker then no longer reaches
what only those branches used. Nothing is imported from the modules: a pass over their ``ast``.

The known objects (``Facts``): the run context ``CTX`` (its ``recipe``), the recipe (its
sections ``train``, ``model``, ``eval``, ``artifact`` and ``tiny``) and each active plugin's
options (``OPTS[name]``, as ``activate`` validates them, ``--tiny`` included), with the
values the script itself computes from its embedded recipe. Never known: the device and what
follows it (``train.device``, ``compile``, ``cpu_threads``, ``model.dtype``,
``attention_backend``, ``fused_kernels``), ``train.seed`` (``--seed``) and ``[data]``
(``--data``): a script keeps running on a GPU and on a CPU, for any seed and data folder.

The rule: a read ``E.f`` (a load, not a store) is folded to ``v`` only when ``E`` provably is a
known object whose field ``f`` holds the literal ``v`` (None, bool, int, str, finite float),
and no code of the tree stores an attribute named ``f`` (``x.f = ...``, ``del x.f``,
``setattr(x, "f", ...)``; a ``setattr`` with a computed name, or a ``__dict__``, of anything
but a method's own ``self`` turns folding off). ``E`` provably is a known object when it is

* the ``opts`` parameter of a hook implementation (``golf_*``) of an active plugin's module:
  the plugin manager passes that plugin's options (``golf_core.hookspecs``); the ``ctx``
  parameter of a hook (of a plugin or of ``golf_core.defaults``): the run context; a hook
  named anywhere in the tree's code (a direct call) is not trusted;
* a parameter ``p`` of a function (or of a class's ``__init__``, or of a method called as
  ``x.m(...)``), without decorators, every reference to whose name in the tree (any function,
  class or method of that name) is a call that passes, for ``p``, an expression that provably
  is the same object (no ``*args``/``**kwargs`` at the call, no default used; ``isinstance``
  and annotations do not count as references); a class subclassed in the tree, or named
  other than in calls, never binds;
* a local name assigned once, at the top level of its function's body, from such an
  expression (folded only in the statements after it);
* ``self.a`` in a method of a class without bases, decorators or subclasses, where the only
  store of an attribute ``a`` in the tree's code is ``self.a = E`` at the top level of that
  class's ``__init__`` with such an ``E`` (stores to ``self.a`` of other classes' methods
  excepted);
* ``E.f`` where ``E`` is a known object and ``f`` is one of its known objects (``ctx.recipe``,
  ``recipe.train``);
* ``E.a`` for any ``E`` when every store of an attribute ``a`` in the code (``x.a = V``, a
  keyword ``a=V`` of any call; and every construction of a class declaring a field ``a``
  passes it by keyword) is the same known object: ``ctx.recipe`` wherever ``ctx`` comes from
  (no library object a script touches has a ``recipe`` attribute);
* the run's recipe itself: ``embedded_recipe(...)`` called by the entry,
  ``golf_core.export.runtime.main`` (``RECIPE_SOURCES``; the facts are that same call's);
* ``K(f=V, ...)``, ``K`` a ``@dataclass`` of the code without bases, subclasses, ``__init__``,
  ``__post_init__`` or ``__setattr__``, every argument a keyword: a new object whose fields
  are the arguments that are literals or known objects, and the literal defaults;
* ``f(...)``, ``f`` a module-level function defined once, undecorated, whose body is one
  ``return E`` with ``E`` a known object;
* ``self`` of a method ``m`` when every call ``x.m(...)`` has such an ``x``;

and the parameter or local name is never rebound (stored, deleted, ``global``/``nonlocal``,
or a parameter or target of a nested scope) in its function. Names of the enclosing functions
are read through closures. The facts are a least fixed point from the hooks (a recursive
function's own call does not vouch for itself). A local name assigned once, at the top level
of its function, from a literal (or a folded read) is that literal after the assignment.

Only constants decide: a comparison or ``not`` of literals, ``and``/``or`` with Python's own
short-circuit values (``False and x`` is False, ``True and x`` is ``x``; ``x and False`` keeps
``x``); in an ``if`` or a ternary test only the truth counts (``x and True`` tests as ``x``),
and a test that a constant decides keeps, as a statement, what runs before the constant.

A script with folded values refuses ``--set`` of any key but those never folded
(``golf_core.scripted.FOLDED``, ``NEVER_FOLDED``): its code may no longer read the value.
"""
from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from ..scripted import NEVER_FOLDED

#: Recipe sections whose literal fields are known.
SECTIONS = ("train", "model", "eval", "artifact")
CTX, RECIPE = "ctx", "recipe"
#: The module of the core's built-in hook implementations (its ``ctx`` is the run's).
DEFAULTS_MODULE = "golf_core.defaults"
#: Calls whose value is the run's recipe: ``(module, function, callee)``. The script's entry
#: validates its embedded recipe with ``embedded_recipe`` (the facts are that same call's).
RECIPE_SOURCES = frozenset({("golf_core.export.runtime", "main", "embedded_recipe"),
                            ("golf_core.export.lean", "main", "_recipe")})  # a baked driver's entry
#: The module whose ``FOLDED = False`` the fold sets to True.
SCRIPTED_MODULE = "golf_core.scripted"


@dataclass(frozen=True)
class _Lit:
    """A local name's literal value."""

    value: Any


@dataclass(frozen=True)
class Obj:
    """A reference to another known object."""

    key: str


@dataclass
class Facts:
    """Known objects: ``key -> {attribute: literal | Obj}``; ``paths[key]`` is the dotted
    recipe path of an object's fields (``options.gptq``, ``train``); ``hook_modules`` maps a
    plugin's module to its options' key."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[str, Optional[str]] = field(default_factory=dict)
    hook_modules: dict[str, str] = field(default_factory=dict)
    #: ``key -> names of the classes of the object's type (its MRO)``: a store to ``self.f``
    #: in a method of another class cannot change the object.
    classes: dict[str, frozenset] = field(default_factory=dict)

    def add(self, key: str, obj: Any, values: dict[str, Any], path: str = "") -> None:
        """Record a known object."""
        self.objects[key] = values
        self.paths[key] = path
        self.classes[key] = frozenset(c.__name__ for c in type(obj).__mro__)


def _is_literal(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return type(v) in (type(None), bool, int, str)
    return type(v) is float and math.isfinite(v)


def _fields(model: Any, path: str) -> dict[str, Any]:
    out = {}
    for name in type(model).model_fields:
        v = getattr(model, name)
        key = f"{path}.{name}"
        if _is_literal(v) and not any(key == k or (k.endswith(".") and key.startswith(k)) for k in NEVER_FOLDED):
            out[name] = v
    return out


def facts_from(recipe: Any, options: Mapping[str, Any], modules: Mapping[str, str], context: Any = None) -> Facts:
    """The known objects of a run: ``recipe`` (a validated Recipe), ``options`` (plugin name ->
    its activated Options), ``modules`` (plugin name -> the module holding its hooks),
    ``context``: an object of the run context's class (default ``RunContext``'s)."""
    if context is None:
        from ..context import RunContext

        context = RunContext.__new__(RunContext)
    f = Facts()
    f.add(CTX, context, {"recipe": Obj(RECIPE)})
    f.add(RECIPE, recipe, {**{s: Obj(f"{RECIPE}.{s}") for s in SECTIONS}, "tiny": bool(recipe.tiny)})
    for s in SECTIONS:
        f.add(f"{RECIPE}.{s}", getattr(recipe, s), _fields(getattr(recipe, s), s), s)
    owners: dict[str, list[str]] = {}
    for name, module in modules.items():
        owners.setdefault(module, []).append(name)
    for name, opts in options.items():
        key = f"opts:{name}"
        f.add(key, opts, _fields(opts, f"options.{name}"), f"options.{name}")
        module = modules.get(name)
        if module and len(owners[module]) == 1:  # a module registered twice has no single options
            f.hook_modules[module] = key
    return f


def run_facts(recipe_toml: str, plugins: Sequence[Any]) -> Optional[Facts]:
    """The facts of a script of ``recipe_toml`` with these ``PluginRef``s, computed as the script
    computes them (embedded recipe, then ``activate``); None when they cannot be (nothing is
    folded then)."""
    if not recipe_toml:
        return None
    from ..errors import GolfError
    from ..plugins import activate
    from .runtime import embedded_recipe

    try:
        recipe = embedded_recipe(recipe_toml)
        active = activate(recipe)
    except (GolfError, KeyError, ValueError):
        return None
    modules = {p.name: p.source_module for p in plugins}
    return facts_from(recipe, {n: active.options[n] for n in active.order}, modules)


# -- the analysis ------------------------------------------------------------------------------

_Func = Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda]
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _params(fn: _Func) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs,
            *([a.kwarg] if a.kwarg else [])]


def _annotations(node: ast.AST) -> set[int]:
    """``id()`` of every node inside an annotation (they are not references)."""
    out: set[int] = set()
    for n in ast.walk(node):
        anns: list[Optional[ast.expr]] = []
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            anns = [n.returns] + [a.annotation for a in _params(n)]
        elif isinstance(n, ast.AnnAssign):
            anns = [n.annotation]
        for a in anns:
            if a is not None:
                out |= {id(x) for x in ast.walk(a)}
    return out


class _Program:
    """Every module of the tree parsed once, with the facts the rule needs."""

    def __init__(self, sources: Mapping[str, str]):
        self.trees = {m: ast.parse(src) for m, src in sources.items()}
        self.parent: dict[int, ast.AST] = {}
        self.scope_of: dict[int, list[ast.AST]] = {}  # id(node) -> enclosing scopes, innermost last
        self.module_of: dict[int, str] = {}
        self.skip: set[int] = set()
        self.funcs: list[tuple[str, _Func, Optional[ast.ClassDef]]] = []
        self.classes: dict[str, list[ast.ClassDef]] = {}
        self.stored_attrs: dict[str, list[ast.Attribute]] = {}
        self.refs: dict[str, list[ast.AST]] = {}  # name -> Name/Attribute loads
        self.dynamic_setattr = False
        self.based_on: set[str] = set()  # class names used as a base
        self.str_constants: dict[str, set[str]] = {}  # module-level NAME = "text", by NAME
        self.keywords: dict[str, list[ast.expr]] = {}  # ``f(name=value)``: the values, by name
        self.field_classes: dict[str, list[ast.ClassDef]] = {}  # classes declaring ``name: T`` in their body
        self.defs: dict[str, set[str]] = {}  # module-level function name -> modules defining it
        for tree in self.trees.values():
            for stmt in tree.body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant) \
                        and isinstance(stmt.value.value, str):
                    for t in stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]:
                        if isinstance(t, ast.Name):
                            self.str_constants.setdefault(t.id, set()).add(stmt.value.value)
        for m, tree in self.trees.items():
            self.skip |= _annotations(tree)
            self._index(m, tree, [])

    def _index(self, module: str, node: ast.AST, scopes: list[ast.AST]) -> None:
        for child in ast.iter_child_nodes(node):
            self.parent[id(child)] = node
            self.scope_of[id(child)] = scopes
            self.module_of[id(child)] = module
            inner = scopes
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                cls = node if isinstance(node, ast.ClassDef) else None
                self.funcs.append((module, child, cls))
            if isinstance(child, ast.ClassDef):
                self.classes.setdefault(child.name, []).append(child)
                for st in child.body:
                    if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                        self.field_classes.setdefault(st.target.id, []).append(child)
                for b in child.bases:
                    self.based_on |= {n.id for n in ast.walk(b) if isinstance(n, ast.Name)}
                    self.based_on |= {n.attr for n in ast.walk(b) if isinstance(n, ast.Attribute)}
            if isinstance(child, ast.keyword) and child.arg:
                self.keywords.setdefault(child.arg, []).append(child.value)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and isinstance(node, ast.Module):
                self.defs.setdefault(child.name, set()).add(module)
            if isinstance(child, _SCOPES):
                inner = [*scopes, child]
            if isinstance(child, ast.Attribute) and isinstance(child.ctx, (ast.Store, ast.Del)):
                self.stored_attrs.setdefault(child.attr, []).append(child)
            if isinstance(child, ast.Attribute) and child.attr == "__dict__" and not _is_self(child.value, inner):
                self.dynamic_setattr = True  # another object's namespace: any attribute may change
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id in ("setattr", "delattr"):
                self._setattr(child, inner)
            if id(child) not in self.skip:
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                    self.refs.setdefault(child.id, []).append(child)
                elif isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Load):
                    self.refs.setdefault(child.attr, []).append(child)
            self._index(module, child, inner)

    def refs_shadowed(self, name: str) -> bool:
        """``name`` is also a function or a module-level assignment somewhere (not one class)."""
        return name in self.defs or name in self.str_constants

    def _setattr(self, call: ast.Call, scopes: list[ast.AST]) -> None:
        names: set[str] = set()
        if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
            names = {call.args[1].value}
        elif len(call.args) >= 2 and isinstance(call.args[1], ast.Name):
            names = self.str_constants.get(call.args[1].id, set())  # a module's NAME = "text"
        for name in names:
            fake = ast.Attribute(value=call.args[0], attr=name, ctx=ast.Store())
            self.parent[id(fake)] = call
            self.scope_of[id(fake)] = scopes
            self.stored_attrs.setdefault(name, []).append(fake)
        if names:
            return
        if not (call.args and _is_self(call.args[0], scopes)):
            self.dynamic_setattr = True


def _is_self(expr: ast.expr, scopes: list[ast.AST]) -> bool:
    """``expr`` is the first parameter of the innermost enclosing function, a method."""
    fns = [i for i, s in enumerate(scopes) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not fns or fns[-1] == 0 or not isinstance(scopes[fns[-1] - 1], ast.ClassDef) or not isinstance(expr, ast.Name):
        return False
    fn = scopes[fns[-1]]
    ps = [*fn.args.posonlyargs, *fn.args.args]
    return bool(ps) and ps[0].arg == expr.id


def _decorator(d: ast.expr) -> str:
    d = d.func if isinstance(d, ast.Call) else d
    return d.attr if isinstance(d, ast.Attribute) else d.id if isinstance(d, ast.Name) else ""


def _binds(scope: ast.AST, name: str) -> bool:
    """A nested scope binds ``name`` (a parameter, or a comprehension's target)."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return any(a.arg == name for a in _params(scope))
    if isinstance(scope, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return any(isinstance(n, ast.Name) and n.id == name for g in scope.generators for n in ast.walk(g.target))
    return False


def _method_class(scopes: list[ast.AST]) -> Optional[ast.ClassDef]:
    """The class whose method is the innermost enclosing function, or None."""
    fns = [i for i, s in enumerate(scopes) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if fns and fns[-1] > 0 and isinstance(scopes[fns[-1] - 1], ast.ClassDef):
        return scopes[fns[-1] - 1]
    return None


def _stores(fn: _Func) -> dict[str, int]:
    """How often each name is bound inside ``fn`` (its nested scopes included; a parameter of
    a nested scope, a ``global``/``nonlocal`` or a ``del`` counts as a binding)."""
    out: dict[str, int] = {}

    def add(n: str, k: int = 1) -> None:
        out[n] = out.get(n, 0) + k

    body = fn.body if isinstance(fn.body, list) else [fn.body]
    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                add(n.id)
            elif isinstance(n, (ast.Global, ast.Nonlocal)):
                for name in n.names:
                    add(name, 2)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for a in _params(n):
                    add(a.arg, 2)
                if not isinstance(n, ast.Lambda):
                    add(n.name)
            elif isinstance(n, ast.ClassDef):
                add(n.name)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                add(n.name, 2)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                for a in n.names:
                    add((a.asname or a.name).partition(".")[0])
            elif isinstance(n, ast.MatchAs) and n.name:
                add(n.name, 2)
    return out


class Analysis:
    """Which expressions of a program provably are known objects (see the module docstring)."""

    def __init__(self, program: _Program, facts: Facts):
        self.p = program
        self.facts = facts
        self.params: dict[tuple[int, str], str] = {}  # (id(fn), param) -> object key
        self.locals: dict[tuple[int, str], tuple[str, int]] = {}  # (id(fn), name) -> (key, after line)
        self.self_attrs: dict[tuple[int, str], str] = {}  # (id(class), attr) -> key
        self._stores: dict[int, dict[str, int]] = {}
        self.unique_attrs: dict[str, str] = {}  # attribute name -> the known object it always holds
        self._calls: dict[str, ast.Call] = {}  # constructed object -> its construction
        self.enabled = not program.dynamic_setattr
        if self.enabled:
            self._solve()

    def blocked(self, key: str, attr: str) -> bool:
        """Some code may store ``attr`` on the object ``key`` (a store to ``self.attr`` in a
        method of a class the object is not an instance of cannot)."""
        mine = self.facts.classes.get(key, frozenset())
        for st in self.p.stored_attrs.get(attr, ()):
            scopes = self.p.scope_of.get(id(st), [])
            owner = _method_class(scopes) if _is_self(st.value, scopes) else None
            if owner is None or owner.name in mine:
                return True
        return False

    def stores(self, fn: _Func) -> dict[str, int]:
        if id(fn) not in self._stores:
            self._stores[id(fn)] = _stores(fn)
        return self._stores[id(fn)]

    # -- evaluation -----------------------------------------------------------------------------
    def known(self, expr: ast.expr) -> Optional[str]:
        """The key of the known object ``expr`` provably is, or None."""
        if isinstance(expr, ast.Name):
            k = self._name(expr)
            return None if isinstance(k, _Lit) else k
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            scopes = self.p.scope_of.get(id(expr), [])
            fn = next((x for x in reversed(scopes) if isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
            where = (self.p.module_of.get(id(expr)), getattr(fn, "name", None), expr.func.id)
            if where in RECIPE_SOURCES and self.p.defs.get(expr.func.id) == {where[0]}:  # the module's own
                return RECIPE
            return self._constructed(expr) or self._returned(expr)
        if isinstance(expr, ast.Attribute) and isinstance(expr.ctx, ast.Load):
            if isinstance(expr.value, ast.Name):
                k = self._self_attr(expr)
                if k is not None:
                    return k
            base = self.known(expr.value)
            if base is not None:
                v = self.fields(base).get(expr.attr)
                if isinstance(v, Obj) and not self.blocked(base, expr.attr):
                    return v.key
            return self.unique_attrs.get(expr.attr)
        return None

    def fields(self, key: str) -> dict[str, Any]:
        """The known fields of object ``key`` (a constructed one's are evaluated again: its
        arguments may have become known since)."""
        call = self._calls.get(key)
        if call is not None:
            self._constructed(call)
        return self.facts.objects.get(key, {})

    def value(self, expr: ast.expr) -> tuple[bool, Any]:
        """``(True, v)`` when ``expr`` provably is the literal ``v`` (a constant, a known
        object's literal field) or the known object ``Obj(key)``."""
        if isinstance(expr, ast.Constant) and _is_literal(expr.value):
            return True, expr.value
        if isinstance(expr, ast.Name):
            ok, v = self.literal_local(expr)
            if ok:
                return True, v
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant) \
                and type(expr.operand.value) in (int, float) and _is_literal(expr.operand.value):
            return True, -expr.operand.value
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
            ok, v = self.value(expr.operand)
            return (True, not v) if ok and not isinstance(v, Obj) else (False, None)
        if isinstance(expr, ast.Attribute) and isinstance(expr.ctx, ast.Load):
            base = self.known(expr.value)
            if base is not None and not self.blocked(base, expr.attr):
                v = self.fields(base).get(expr.attr, Obj(""))
                if not isinstance(v, Obj):
                    return True, v
        k = self.known(expr)
        return (True, Obj(k)) if k is not None else (False, None)

    def _constructed(self, call: ast.Call) -> Optional[str]:
        """``K(f=..., ...)`` of a dataclass of the code (no bases, subclasses, ``__post_init__``
        or custom ``__init__``/``__setattr__``), every argument a keyword: a new known object
        with the literal (or known) arguments and literal defaults as its fields."""
        if not isinstance(call.func, ast.Name) or call.args or any(k.arg is None for k in call.keywords):
            return None
        classes = self.p.classes.get(call.func.id, [])
        if len(classes) != 1 or self.p.refs_shadowed(call.func.id):
            return None
        cls = classes[0]
        if cls.bases or cls.name in self.p.based_on or [_decorator(d) for d in cls.decorator_list] != ["dataclass"]:
            return None
        if any(isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name in ("__post_init__", "__init__", "__setattr__")
               for st in cls.body):
            return None
        key = f"new:{self.p.module_of.get(id(call))}:{call.lineno}:{call.col_offset}"
        fields: dict[str, Any] = {}
        for st in cls.body:
            if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None:
                ok, v = self.value(st.value) if isinstance(st.value, ast.Constant) else (False, None)
                if ok:
                    fields[st.target.id] = v
        for kw in call.keywords:
            ok, v = self.value(kw.value)
            if ok:
                fields[kw.arg] = v
            else:
                fields.pop(kw.arg, None)
        self.facts.add(key, None, fields)
        self.facts.classes[key] = frozenset({cls.name, "object"})
        self.facts.paths[key] = None  # not a recipe table: its values came from folded reads
        self._calls[key] = call
        return key

    def _returned(self, call: ast.Call) -> Optional[str]:
        """``f(...)`` of a module-level function defined once, undecorated, whose body is one
        ``return E`` (after its docstring) with ``E`` a known object."""
        if not isinstance(call.func, ast.Name) or len(self.p.defs.get(call.func.id, ())) != 1:
            return None
        fns = [fn for m, fn, c in self.p.funcs if c is None and fn.name == call.func.id and isinstance(
            self.p.parent.get(id(fn)), ast.Module)]
        if len(fns) != 1 or fns[0].decorator_list:
            return None
        body = [st for st in fns[0].body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))]
        if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
            return None
        return self.known(body[0].value)

    def _name(self, node: ast.Name) -> Any:
        scopes = self.p.scope_of.get(id(node), [])
        for s in reversed(scopes):
            if isinstance(s, ast.ClassDef):
                continue  # a class body's names are not seen by its methods
            if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if node.id in {n.id for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}:
                    return None  # a comprehension target
                continue
            if any(a.arg == node.id for a in _params(s)):
                k = self.params.get((id(s), node.id))
                return k if k is not None and self.stores(s).get(node.id, 0) == 0 else None
            n_stores = self.stores(s).get(node.id, 0)
            if n_stores:
                hit = self.locals.get((id(s), node.id))
                if hit is not None and n_stores == 1 and getattr(node, "lineno", 0) > hit[1]:
                    return hit[0]
                return None
        return None

    def literal_local(self, node: ast.Name) -> tuple[bool, Any]:
        """``(True, v)`` when ``node`` reads a local assigned once from the literal ``v``."""
        hit = self._name(node)
        return (True, hit.value) if isinstance(hit, _Lit) else (False, None)

    def _self_attr(self, expr: ast.Attribute) -> Optional[str]:
        scopes = self.p.scope_of.get(id(expr), [])
        fns = [i for i, s in enumerate(scopes) if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for i in reversed(fns):
            fn = scopes[i]
            if i == 0 or not isinstance(scopes[i - 1], ast.ClassDef):
                continue
            cls = scopes[i - 1]
            ps = [*fn.args.posonlyargs, *fn.args.args]
            if not ps or ps[0].arg != expr.value.id:
                continue
            if fn.decorator_list or self.stores(fn).get(ps[0].arg, 0):
                return None
            inner = scopes[i + 1:]
            if any(_binds(s, expr.value.id) for s in inner):
                return None
            k = self.self_attrs.get((id(cls), expr.attr))
            if k is not None and fn.name == "__init__" and getattr(expr, "lineno", 0) <= self._init_line(cls, expr.attr):
                return None
            return k
        return None

    def _init_line(self, cls: ast.ClassDef, attr: str) -> int:
        return self._init_lines.get((id(cls), attr), 0)

    # -- the fixed point ------------------------------------------------------------------------
    def _solve(self) -> None:
        self._init_lines: dict[tuple[int, str], int] = {}
        for module, fn, cls in self.p.funcs:  # roots: the hooks
            key = self.p.module_of.get(id(fn))
            if cls is not None or not fn.name.startswith("golf_") or self.p.refs.get(fn.name):
                continue
            names = {a.arg for a in _params(fn)}
            opts_key = self.facts.hook_modules.get(module)
            if opts_key and "opts" in names:
                self.params[(id(fn), "opts")] = opts_key
            if "ctx" in names and (opts_key or key == DEFAULTS_MODULE):
                self.params[(id(fn), "ctx")] = CTX
        changed = True
        while changed:
            changed = False
            for module, fn, cls in self.p.funcs:
                changed |= self._bind_params(fn, cls)
                changed |= self._bind_locals(fn)
            for classes in self.p.classes.values():
                for c in classes:
                    changed |= self._bind_self_attrs(c)
            changed |= self._bind_unique_attrs()

    def _call_sites(self, fn: _Func, cls: Optional[ast.ClassDef]) -> Optional[list[tuple[ast.Call, int]]]:
        """``(call, shift)`` for every reference that may call ``fn`` (shift: arguments the call
        does not pass, ``self``), or None when a reference is not a plain call."""
        decorators = [_decorator(d) for d in fn.decorator_list]
        if decorators and (cls is None or decorators not in (["classmethod"], ["staticmethod"])):
            return None
        if cls is None:
            name, shift = fn.name, 0
        elif fn.name == "__init__":
            if cls.decorator_list or cls.bases or cls.name in self.p.based_on:
                return None
            name, shift = cls.name, 1
        else:
            if cls.bases or cls.name in self.p.based_on or fn.name.startswith("__"):
                return None
            name, shift = fn.name, 0 if decorators == ["staticmethod"] else 1
        out = []
        for ref in self.p.refs.get(name, ()):
            par = self.p.parent.get(id(ref))
            if isinstance(par, ast.Call) and par.func is ref:
                if cls is not None and fn.name != "__init__" and isinstance(ref, ast.Name):
                    continue  # a bare name never calls a method
                out.append((par, shift))
            elif isinstance(par, ast.Call) and isinstance(par.func, ast.Name) and par.func.id in ("isinstance", "issubclass") \
                    and ref is not par.func:
                continue
            elif isinstance(ref, ast.Attribute) and self._local_root(ref):
                continue  # ``opts.calibration_batches``: an attribute of an object, not of a module
            else:
                return None
        return out or None

    def _local_root(self, ref: ast.Attribute) -> bool:
        """The chain ``x.a.b`` starts at a parameter or local name of an enclosing function (an
        object: modules reach functions as values only through the hooks the plugin manager
        looks up), not at a global (which may be an imported module)."""
        root = ref.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if not isinstance(root, ast.Name):
            return True  # ``f().x``, ``[...][0].x``: computed objects
        for s in self.p.scope_of.get(id(ref), []):
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    (a.asname or a.name).partition(".")[0] == root.id
                    for n in ast.walk(s) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names):
                return False  # a function-level import: perhaps a module
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and (
                    _binds(s, root.id) or (not isinstance(s, ast.Lambda) and self.stores(s).get(root.id))):
                return True
        return False

    def _bind_unique_attrs(self) -> bool:
        """An attribute every store of which in the code is a known object (see the rule)."""
        changed = False
        for attr in sorted({v.key and a for o in self.facts.objects.values() for a, v in o.items() if isinstance(v, Obj)}):
            if attr in self.unique_attrs:
                continue
            key = self._unique(attr)
            if key is not None:
                self.unique_attrs[attr] = key
                changed = True
        return changed

    def _unique(self, attr: str) -> Optional[str]:
        values: list[ast.expr] = []
        for st in self.p.stored_attrs.get(attr, ()):
            par = self.p.parent.get(id(st))
            if isinstance(par, ast.Assign) and st in par.targets:
                values.append(par.value)
            elif isinstance(par, ast.AnnAssign) and par.value is not None:
                values.append(par.value)
            else:
                return None  # a tuple target, ``del``, ``setattr``, an augmented assignment
        values += self.p.keywords.get(attr, [])
        for cls in self.p.field_classes.get(attr, ()):  # every construction passes it by keyword
            for ref in self.p.refs.get(cls.name, ()):
                par = self.p.parent.get(id(ref))
                if isinstance(par, ast.Call) and isinstance(par.func, ast.Name) and par.func.id in ("isinstance", "issubclass"):
                    continue
                if not (isinstance(par, ast.Call) and par.func is ref and any(k.arg == attr for k in par.keywords)):
                    return None
        keys = {self.known(v) for v in values}
        return keys.pop() if len(keys) == 1 and None not in keys else None

    def _bind_params(self, fn: _Func, cls: Optional[ast.ClassDef]) -> bool:
        a = fn.args
        positional = [*a.posonlyargs, *a.args]
        todo = [p for p in [*positional, *a.kwonlyargs] if (id(fn), p.arg) not in self.params]
        if not todo:
            return False
        sites = self._call_sites(fn, cls)
        if sites is None:
            return False
        receiver = cls is not None and fn.name != "__init__" and not fn.decorator_list  # ``x.m()``: self is x
        changed = False
        for p in todo:
            key: Optional[str] = None
            for call, shift in sites:
                if any(isinstance(x, ast.Starred) for x in call.args) or any(k.arg is None for k in call.keywords):
                    key = None
                    break
                arg = None
                if receiver and positional and p is positional[0] and isinstance(call.func, ast.Attribute):
                    arg = call.func.value
                elif p in positional and positional.index(p) - shift >= 0 and positional.index(p) - shift < len(call.args):
                    arg = call.args[positional.index(p) - shift]
                if arg is None:
                    arg = next((k.value for k in call.keywords if k.arg == p.arg), None)
                k = self.known(arg) if arg is not None else None
                if k is None or (key is not None and k != key):
                    key = None
                    break
                key = k
            if key is not None:
                self.params[(id(fn), p.arg)] = key
                changed = True
        return changed

    def _bind_locals(self, fn: _Func) -> bool:
        changed = False
        top = list(fn.body) if isinstance(fn.body, list) else []
        for stmt in list(top):  # a ``try:``/``with`` body's statements run in order too
            if isinstance(stmt, (ast.Try, ast.With)):
                top.extend(stmt.body)
        for stmt in top:
            pairs: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                t, v = stmt.targets[0], stmt.value
                if isinstance(t, ast.Tuple) and isinstance(v, ast.Tuple) and len(t.elts) == len(v.elts) \
                        and not any(isinstance(e, ast.Starred) for e in [*t.elts, *v.elts]):
                    pairs = list(zip(t.elts, v.elts))  # ``t, m = self.t, self.model``
                else:
                    pairs = [(t, v)]
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                pairs = [(stmt.target, stmt.value)]
            for t, value in pairs:
                if not isinstance(t, ast.Name):
                    continue
                target = t.id
                if (id(fn), target) in self.locals or self.stores(fn).get(target) != 1:
                    continue
                if any(p.arg == target for p in _params(fn)):
                    continue
                ok, v = self.value(value)
                if ok:
                    self.locals[(id(fn), target)] = (v.key if isinstance(v, Obj) else _Lit(v), stmt.end_lineno or stmt.lineno)
                    changed = True
        return changed

    def _bind_self_attrs(self, cls: ast.ClassDef) -> bool:
        if cls.bases or cls.decorator_list or cls.name in self.p.based_on:
            return False
        init = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
        if init is None or init.decorator_list or not init.args.args:
            return False
        me = init.args.args[0].arg
        changed = False
        for stmt in init.body:
            pairs: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                t, v = stmt.targets[0], stmt.value
                if isinstance(t, ast.Tuple) and isinstance(v, ast.Tuple) and len(t.elts) == len(v.elts) \
                        and not any(isinstance(e, ast.Starred) for e in [*t.elts, *v.elts]):
                    pairs = list(zip(t.elts, v.elts))
                else:
                    pairs = [(t, v)]
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                pairs = [(stmt.target, stmt.value)]
            for t, v in pairs:
                if not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == me):
                    continue
                if (id(cls), t.attr) in self.self_attrs or not self._only_store(cls, t):
                    continue
                k = self.known(v)
                if k is not None:
                    self.self_attrs[(id(cls), t.attr)] = k
                    self._init_lines[(id(cls), t.attr)] = stmt.end_lineno or stmt.lineno
                    changed = True
        return changed

    def _only_store(self, cls: ast.ClassDef, target: ast.Attribute) -> bool:
        """``target`` is the only store of its attribute name on this class's instances."""
        for st in self.p.stored_attrs.get(target.attr, ()):
            if st is target:
                continue
            scopes = self.p.scope_of.get(id(st), [])
            owner = _method_class(scopes) if _is_self(st.value, scopes) else None
            if owner is None or owner is cls:
                return False
        return True


# -- the rewrite --------------------------------------------------------------------------------

def _const(v: Any) -> ast.Constant:
    return ast.Constant(value=v)


_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}
_SINGLETONS = (None, True, False)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    """``(True, value)`` for a constant or a tuple/list/set of constants."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        vals = [_literal(e) for e in node.elts]
        if all(ok for ok, _ in vals):
            items = [v for _, v in vals]
            return True, tuple(items) if not isinstance(node, ast.Set) else frozenset(items)
    return False, None


def _truthiness(test: ast.expr) -> ast.expr:
    """``test`` where only its truth counts: ``x and True`` tests as ``x``, ``x or False`` too."""
    if not isinstance(test, ast.BoolOp):
        return test
    is_and = isinstance(test.op, ast.And)
    values = [v for v in test.values if not (isinstance(v, ast.Constant) and bool(v.value) == is_and)]
    if not values:
        return _const(is_and)
    if len(values) == 1:
        return values[0]
    test.values = values
    return test


def _decided(test: ast.expr) -> tuple[Optional[bool], Optional[ast.expr]]:
    """``(truth, evaluated)``: the truth of a test that a constant decides (``a and False`` is
    false), with what runs before the constant (``a``: kept as a statement), else ``(None, None)``."""
    if isinstance(test, ast.Constant):
        return bool(test.value), None
    if isinstance(test, ast.BoolOp):
        is_and = isinstance(test.op, ast.And)
        for i, v in enumerate(test.values):
            if isinstance(v, ast.Constant) and bool(v.value) != is_and:
                before = test.values[:i]
                expr = None if not before else before[0] if len(before) == 1 else ast.BoolOp(op=test.op, values=before)
                return not is_and, expr
    return None, None


class _Simplify(ast.NodeTransformer):
    """Evaluates tests made of constants and drops the branches they rule out (Python's own
    semantics: ``False and x`` is False, ``True and x`` is ``x``, ``x and False`` stays)."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and isinstance(node.operand, ast.Constant):
            return _const(not node.operand.value)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        values = list(node.values)
        is_and = isinstance(node.op, ast.And)
        while values and isinstance(values[0], ast.Constant):
            v = values[0].value
            if len(values) == 1 or (not v if is_and else bool(v)):
                return values[0]  # decides the result
            values.pop(0)
        if len(values) == 1:
            return values[0]
        node.values = values
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        lits = [_literal(o) for o in operands]
        if not all(ok for ok, _ in lits):
            return node
        vals = [v for _, v in lits]
        for op, a, b in zip(node.ops, vals, vals[1:]):
            if isinstance(op, (ast.Is, ast.IsNot)):
                if a not in _SINGLETONS and b not in _SINGLETONS:
                    return node
                r = (a is b) if isinstance(op, ast.Is) else (a is not b)
            elif type(op) in _COMPARE:
                try:
                    r = _COMPARE[type(op)](a, b)
                except TypeError:
                    return node
            else:
                return node
            if not r:
                return _const(False)
        return _const(True)

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        node.test = _truthiness(node.test)
        if isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        return node

    def visit_If(self, node: ast.If):
        self.generic_visit(node)
        node.test = _truthiness(node.test)
        truth, before = _decided(node.test)
        if truth is not None:
            kept = [ast.Expr(value=before)] if before is not None else []
            return kept + (node.body if truth else node.orelse) or None
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and not stmts and name == "body" and not isinstance(node, ast.Module):
                setattr(node, name, [ast.Pass()])
        return node


class _Fold(ast.NodeTransformer):
    def __init__(self, analysis: Analysis, folded: dict[str, Any]):
        self.a = analysis
        self.folded = folded
        self.changed = False

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load):
            ok, v = self.a.literal_local(node)
            if ok:
                self.changed = True
                return ast.copy_location(_const(v), node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.ctx, ast.Load):
            key = self.a.known(node.value)
            if key is not None and not self.a.blocked(key, node.attr):
                fields = self.a.fields(key)
                v = fields.get(node.attr, Obj(""))
                if not isinstance(v, Obj):
                    path = self.a.facts.paths.get(key, "")
                    self.changed = True
                    if path is not None:
                        self.folded[f"{path}.{node.attr}".lstrip(".")] = v
                    return ast.copy_location(_const(v), node)
        self.generic_visit(node)
        return node


def fold_sources(sources: Mapping[str, str], facts: Facts) -> tuple[dict[str, str], dict[str, Any]]:
    """``(sources with every provable read folded and the dead branches dropped, {recipe key:
    folded value})``; a module nothing was folded in keeps its source as it was."""
    program = _Program(sources)
    analysis = Analysis(program, facts)
    out = dict(sources)
    folded: dict[str, Any] = {}
    if not analysis.enabled:
        return out, folded
    for module, tree in program.trees.items():
        mine: dict[str, Any] = {}
        fold = _Fold(analysis, mine)
        tree = fold.visit(tree)
        if fold.changed:
            folded.update(mine)
            out[module] = ast.unparse(ast.fix_missing_locations(_Simplify().visit(tree)))
    if SCRIPTED_MODULE in out and folded:
        out[SCRIPTED_MODULE] = _record_folded(out[SCRIPTED_MODULE], folded)
    return out, folded


def _record_folded(source: str, folded: Mapping[str, Any]) -> str:
    tree = ast.parse(source)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and [getattr(t, "id", None) for t in stmt.targets] == ["FOLDED"]:
            stmt.value = ast.Constant(value=True)
    return ast.unparse(tree)


class FoldedTree:
    """A ``SourceTree`` whose modules are what a first walk of the shaker kept of them, folded
    (``fold_sources``: only the code a script carries is the program the rule reasons about);
    the rest of the tree is the one it wraps. ``folded``: the recipe keys folded and their
    values."""

    def __init__(self, tree: Any, shaker: Any, facts: Optional[Facts]):
        self._tree = tree
        self.modules = tree.modules
        sources = {m: shaker.source(m) for m in shaker.modules()}
        self._sources, self.folded = fold_sources(sources, facts) if facts else (sources, {})

    def has(self, name: str) -> bool:
        return self._tree.has(name)

    def source(self, name: str) -> str:
        return self._sources[name] if name in self._sources else self._tree.source(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tree, name)


def fold_tree(tree: Any, shaker: Any, recipe_toml: str, plugins: Sequence[Any]) -> FoldedTree:
    """What ``shaker`` (a finished walk of ``tree``) kept, specialized to the values of
    ``recipe_toml`` run with ``plugins``; shake it again to drop what the folded branches used."""
    return FoldedTree(tree, shaker, run_facts(recipe_toml, plugins))
