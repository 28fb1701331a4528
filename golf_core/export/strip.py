"""Prose the compact script drops: text for people that the run never reads.

An ``ast`` pass over a module's kept code, before the minifier (which already drops
docstrings, comments and annotations):

* docstrings and other string statements (the minifier keeps them in a module that reads
  ``__doc__``; golf's hook specs only copy them into other docstrings);
* the ``description``/``title``/``examples`` of a pydantic ``Field(...)`` (they feed ``golf
  plugins`` and schemas, never a run);
* the ``summary`` and ``reported_delta`` of a ``TechniqueInfo(...)`` (``golf plugins`` only);
* the English of an error message: in a call of a class named ``*Error``/``*Exception``/
  ``*Warning``, a string argument becomes ``""`` and an f-string keeps only its values, so the
  message still names the culprit (``f"unknown plugin {name!r}"`` -> ``f"{name!r}"``).
  ``SystemExit`` keeps its text (the script's own messages to its user, e.g. the data stub).

The readable bundle (``golf export --readable``) keeps every word.
"""
from __future__ import annotations

import ast

#: Keyword arguments dropped from calls of these names.
DROPPED_KEYWORDS = {
    "Field": {"description", "title", "examples"},
    "TechniqueInfo": {"summary", "reported_delta"},
}
_ERROR_SUFFIXES = ("Error", "Exception", "Warning")


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _terse(arg: ast.expr) -> ast.expr:
    """A message argument without its prose (other arguments unchanged)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return ast.Constant("")
    if isinstance(arg, ast.JoinedStr):
        values: list[ast.expr] = []
        for v in arg.values:
            if isinstance(v, ast.FormattedValue):
                if values:
                    values.append(ast.Constant(" "))
                values.append(v)
        return ast.JoinedStr(values) if values else ast.Constant("")
    return arg


def _is_string_statement(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _Strip(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            stmts = getattr(node, name, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                kept = [s for s in stmts if not _is_string_statement(s)]
                setattr(node, name, kept or ([] if isinstance(node, ast.Module) else [ast.Pass()]))
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        name = _call_name(node)
        dropped = DROPPED_KEYWORDS.get(name)
        if dropped:
            node.keywords = [k for k in node.keywords if k.arg not in dropped]
        if name.endswith(_ERROR_SUFFIXES):
            node.args = [_terse(a) for a in node.args]
        return node


def strip_prose(source: str) -> str:
    """``source`` without the prose listed in the module docstring (``ast`` round trip)."""
    if not source.strip():
        return source
    return ast.unparse(ast.fix_missing_locations(_Strip().visit(ast.parse(source))))
