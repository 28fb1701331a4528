"""An interpreter that sees only some distributions: to prove an export runs without golf.

``python -S`` skips ``site`` (no site-packages, no ``.pth`` files, so no editable installs);
``PYTHONPATH`` then points at a folder of symlinks to exactly the top-level entries (packages,
modules, ``*.libs``, ``*.dist-info``) of the named distributions and of everything they
require (``Requires-Dist`` without extras, read from ``importlib.metadata``).
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from pathlib import Path
from typing import Iterable, Optional

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(names: Iterable[str]) -> dict[str, md.Distribution]:
    """The installed distributions ``names`` and everything they require (extras left out;
    requirements that are not installed, e.g. for another platform, are skipped)."""
    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        key = _canonical(todo.pop())
        if key in seen:
            continue
        try:
            dist = md.distribution(key)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if "extra" in marker:
                continue
            m = _NAME.match(spec)
            if m:
                todo.append(m.group(1))
    return seen


def top_level_entries(dist: md.Distribution) -> set[str]:
    """First path components of a distribution's installed files (scripts and caches left out)."""
    out = set()
    for f in dist.files or []:
        first = f.parts[0]
        if first in ("..", "__pycache__") or first.endswith(".pth"):
            continue
        out.add(first)
    for line in (dist.read_text("top_level.txt") or "").split():
        out.add(line.split("/")[0])
    return out


def build_isolated_site(names: Iterable[str], dest: Path) -> list[str]:
    """Fill ``dest`` with symlinks to the closure of ``names``; return the distributions."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dists = requirement_closure(names)
    for dist in dists.values():
        for entry in sorted(top_level_entries(dist)):
            src = Path(str(dist.locate_file(entry)))
            link = dest / entry
            if src.exists() and not link.exists():
                os.symlink(src, link)
    return sorted(d.metadata["Name"] for d in dists.values())


def isolated_env(site: Path, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """A minimal environment whose Python path is ``site`` alone."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


def isolated_python() -> list[str]:
    """The command prefix: this interpreter without ``site``."""
    return [sys.executable, "-S"]


def isolated_workdir(export_dir: Path, dest: Path, files: Iterable[str] = ("train_gpt.py",),
                     extra: Optional[dict[str, str]] = None) -> tuple[Path, dict[str, str]]:
    """``(work, env)``: ``dest/work`` holding ``files`` of an export folder, and the environment
    of an interpreter that sees only the export's ``requirements.txt`` (linked under ``dest/site``)."""
    import shutil

    from .requirements import requirement_names

    export_dir, dest = Path(export_dir), Path(dest)
    build_isolated_site(requirement_names((export_dir / "requirements.txt").read_text()), dest / "site")
    work = dest / "work"
    work.mkdir(parents=True)
    for f in files:
        shutil.copy(export_dir / f, work / f)
    return work, isolated_env(dest / "site", extra)
