"""The bundled demo corpus: real English text from this Python interpreter's own documentation.

No download: the documents come from the standard library's source files, read with ``ast`` and
``tokenize``-free line scanning (nothing is imported, so neither installed packages nor the
environment can change them):

* the language-reference topics of ``pydoc_data/topics.py`` (what ``help("assert")`` shows);
* module, class, function and method docstrings, grouped pydoc-style (a module's overview with
  its functions; one document per class with its methods);
* the prose comment blocks of each module.

Files are visited in sorted order; parts that distributions commonly split off or patch
(``test``, ``tkinter``, ``idlelib``, ``site.py``, ...) and everything under ``site-packages`` are
skipped. Documents longer than ``MAX_DOC_CHARS`` are split at paragraph breaks (SentencePiece's
trainer skips sentences over 4192 bytes). Units are then put in a fixed pseudo-random order
(sha256 of their name) and the first ``NUM_VAL_DOCS`` documents are the validation split, like the
challenge's first 50,000 FineWeb documents. The same Python version gives the same documents on
any machine; ``corpus_sha256()`` identifies them.
"""
from __future__ import annotations

import ast
import hashlib
import os
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

from golf_core.errors import DataError

#: Bump when the extraction rules change (part of the dataset cache key).
DEMO_CORPUS_VERSION = 1
#: The first this-many documents (after the fixed shuffle) are the validation split.
NUM_VAL_DOCS = 300
MAX_DOC_CHARS = 4000
MIN_DOC_CHARS = 80

_SKIP_DIRS = frozenset({
    "site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test", "idlelib",
    "tkinter", "turtledemo", "lib2to3", "distutils", "ensurepip", "venv", "__phello__",
    "lib-dynload", "Tools",
})
_SKIP_FILES = frozenset({
    "turtle.py", "site.py", "sysconfig.py", "sitecustomize.py", "usercustomize.py",
    "_distutils_system_mod.py", "this.py", "antigravity.py", "__phello__.foo.py",
})
_COMMENT_RE = re.compile(r"^[ \t]*#(.*)$")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")


def stdlib_dir() -> Path:
    """The directory holding this interpreter's pure-Python standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def _source_files(root: Path) -> list[str]:
    """Relative POSIX paths of the stdlib ``.py`` files used, sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _SKIP_DIRS and not d.startswith("config-") and not d.startswith(".")
        )
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            if (not name.endswith(".py") or name in _SKIP_FILES or name.startswith("_sysconfigdata")
                    or name.startswith("test_")):
                continue
            out.append((rel / name).as_posix())
    out.sort()
    return out


def _module_name(relpath: str) -> str:
    """``email/mime/text.py`` -> ``email.mime.text``; ``json/__init__.py`` -> ``json``."""
    parts = relpath[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _split_long(text: str, limit: int = MAX_DOC_CHARS) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters at blank lines (else at line
    breaks, else hard), keeping the order."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for para in text.split("\n\n"):
        chunks = [para]
        if len(para) > limit:  # a huge paragraph: fall back to lines, then hard cuts
            chunks, line_buf = [], ""
            for line in para.split("\n"):
                while len(line) > limit:
                    chunks.append(line[:limit])
                    line = line[limit:]
                if line_buf and len(line_buf) + 1 + len(line) > limit:
                    chunks.append(line_buf)
                    line_buf = line
                else:
                    line_buf = f"{line_buf}\n{line}" if line_buf else line
            if line_buf:
                chunks.append(line_buf)
        for chunk in chunks:
            if current and len(current) + 2 + len(chunk) > limit:
                pieces.append(current)
                current = chunk
            else:
                current = f"{current}\n\n{chunk}" if current else chunk
    if current:
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def _signature(node: ast.AST) -> str:
    """``name(args)`` of a function node, as ``ast.unparse`` writes it."""
    return f"{node.name}({ast.unparse(node.args)})"


def _entry(title: str, doc: Optional[str]) -> str:
    """A pydoc-like entry: a title line, then the indented docstring."""
    if not doc:
        return title
    body = "\n".join(("    " + line) if line else "" for line in doc.split("\n"))
    return f"{title}\n{body}"


def _class_text(node: ast.ClassDef, prefix: str = "") -> str:
    """A class, its docstring and its methods' (and nested classes') docstrings, pydoc style."""
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    title = f"class {prefix}{node.name}" + (f"({bases})" if bases else "")
    parts = [_entry(title, ast.get_docstring(node))]
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(child)
            if doc:
                parts.append(_entry(f"{prefix}{node.name}.{_signature(child)}", doc))
        elif isinstance(child, ast.ClassDef):
            nested = _class_text(child, prefix=f"{prefix}{node.name}.")
            if nested.count("\n"):
                parts.append(nested)
    return "\n\n".join(parts)


def _docstring_units(relpath: str, tree: ast.Module) -> list[tuple[str, str]]:
    """(unit key, text) pairs for the docstrings of one module."""
    mod = _module_name(relpath)
    units: list[tuple[str, str]] = []
    overview = [f"{mod}"]
    module_doc = ast.get_docstring(tree)
    if module_doc:
        overview.append(module_doc)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                overview.append(_entry(f"{mod}.{_signature(node)}", doc))
        elif isinstance(node, ast.ClassDef):
            text = _class_text(node, prefix=f"{mod}.")
            if text.count("\n"):  # a title alone carries no docs
                units.append((f"class:{relpath}:{node.name}", text))
    if len(overview) > 1:
        units.insert(0, (f"module:{relpath}", "\n\n".join(overview)))
    return units


def _comment_unit(relpath: str, source: str) -> Optional[tuple[str, str]]:
    """(unit key, text) of the prose comment blocks of one module, or None."""
    blocks: list[str] = []
    current: list[str] = []

    def close() -> None:
        if current:
            text = "\n".join(current).strip()
            words = _WORD_RE.findall(text)
            letters = sum(c.isalpha() for c in text)
            if len(words) >= 4 and letters >= 0.6 * len(text.replace(" ", "").replace("\n", "")):
                blocks.append(text)
            current.clear()

    for lineno, line in enumerate(source.split("\n")):
        m = _COMMENT_RE.match(line)
        if m is None:
            close()
            continue
        body = m.group(1)
        if lineno < 2 and (body.startswith("!") or "coding" in body):
            continue
        body = body.lstrip("#")
        body = body[1:] if body.startswith(" ") else body
        if not body.strip() or set(body.strip()) <= set("-=*#~_+"):
            close()
            continue
        current.append(body.rstrip())
    close()
    if not blocks:
        return None
    return (f"comments:{relpath}", "\n\n".join(blocks))


def _topic_units(root: Path) -> list[tuple[str, str]]:
    """(unit key, text) of each language-reference topic in ``pydoc_data/topics.py``."""
    path = root / "pydoc_data" / "topics.py"
    if not path.is_file():
        return []
    tree = ast.parse(path.read_bytes(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "topics"
                                                 for t in node.targets):
            topics = ast.literal_eval(node.value)
            return [(f"topic:{name}", str(topics[name])) for name in sorted(topics)]
    return []


def _order_key(unit_key: str) -> str:
    return hashlib.sha256(unit_key.encode("utf-8")).hexdigest()


@lru_cache(maxsize=2)
def _documents(root_str: str) -> tuple[str, ...]:
    root = Path(root_str)
    files = _source_files(root)
    if not files:
        raise DataError(
            f"{root}: no standard-library sources found; the demo corpus needs the interpreter's .py files")
    units: list[tuple[str, str]] = _topic_units(root)
    for relpath in files:
        if relpath == "pydoc_data/topics.py":
            continue
        raw = (root / relpath).read_bytes()
        try:
            tree = ast.parse(raw, filename=relpath)
        except (SyntaxError, ValueError):
            continue
        units.extend(_docstring_units(relpath, tree))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        unit = _comment_unit(relpath, text)
        if unit is not None:
            units.append(unit)
    units.sort(key=lambda u: (_order_key(u[0]), u[0]))
    docs: list[str] = []
    for _, text in units:
        for piece in _split_long(text):
            if len(piece) >= MIN_DOC_CHARS:
                docs.append(piece)
    return tuple(docs)


def demo_documents(root: Optional[os.PathLike] = None) -> list[str]:
    """The demo corpus as a list of documents, validation documents first (``NUM_VAL_DOCS``).

    ``root`` defaults to this interpreter's stdlib directory. Cached per process.
    """
    return list(_documents(str(Path(root) if root is not None else stdlib_dir())))


def corpus_sha256(documents: Optional[Sequence[str]] = None) -> str:
    """Hex sha256 identifying a list of documents (default: the demo corpus); each document is
    hashed with its length so that boundaries count."""
    docs: Iterable[str] = demo_documents() if documents is None else documents
    h = hashlib.sha256()
    for doc in docs:
        data = doc.encode("utf-8", errors="surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def demo_fingerprint(root: Optional[os.PathLike] = None) -> str:
    """A cheap key for the demo corpus: Python version, extraction version, and the name and size
    of each source file used. Equal fingerprints mean equal documents (barring edited files of the
    same size); the dataset cache compares it before recomputing ``corpus_sha256``."""
    root = Path(root) if root is not None else stdlib_dir()
    h = hashlib.sha256()
    h.update(f"{sys.version_info[:3]}|{DEMO_CORPUS_VERSION}|{NUM_VAL_DOCS}|{MAX_DOC_CHARS}|{MIN_DOC_CHARS}".encode())
    for rel in _source_files(root):
        try:
            size = (root / rel).stat().st_size
        except OSError:
            size = -1
        h.update(f"\n{rel}:{size}".encode("utf-8", errors="surrogatepass"))
    return h.hexdigest()


def python_version() -> str:
    """The interpreter version the demo corpus came from, e.g. ``3.11.7``."""
    return ".".join(str(v) for v in sys.version_info[:3])
