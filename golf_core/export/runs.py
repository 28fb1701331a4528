"""The runs an export describes: one run directory, or a folder of seed runs of one recipe.

A run directory holds ``result.json`` and ``resolved.toml`` (what ``golf run`` writes). A
folder of seed runs (e.g. ``golf ablate``'s ``OUT/<variant>/``) holds such directories; they
must be the same recipe apart from ``train.seed``, with distinct seeds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import rundir, tomlio
from . import ExportError


@dataclass
class RunRecord:
    """One finished run as ``golf export`` reads it."""

    run_dir: Path
    result: dict[str, Any]
    recipe_toml: str
    manifest: dict[str, Any] = field(default_factory=dict)
    compliance: Optional[dict[str, Any]] = None

    @property
    def seed(self) -> int:
        """The run's training seed."""
        return int(self.result.get("seed", self.recipe.get("train", {}).get("seed", 0)))

    @property
    def recipe(self) -> dict[str, Any]:
        """The resolved recipe as data."""
        return tomlio.loads(self.recipe_toml)

    @property
    def code(self) -> Optional[dict[str, Any]]:
        """``result.json["code"]`` (what the run's code bytes counted), if recorded."""
        code = self.result.get("code")
        return code if isinstance(code, dict) else None

    @property
    def train_log(self) -> Optional[Path]:
        """The run's ``train.log``, if present."""
        p = self.run_dir / rundir.TRAIN_LOG
        return p if p.is_file() else None


def _is_run(d: Path) -> bool:
    return (d / rundir.RESULT).is_file() and (d / rundir.RESOLVED).is_file()


def read_run(d: Path) -> RunRecord:
    """Read one run directory (ExportError naming the file when it is incomplete)."""
    res_path = d / rundir.RESULT
    if not res_path.is_file():
        raise ExportError(f"{d}: no {rundir.RESULT}; is it a finished golf run directory?")
    try:
        result = json.loads(res_path.read_text())
    except json.JSONDecodeError as e:
        raise ExportError(f"{res_path}: not valid JSON ({e})") from None
    toml_path = d / rundir.RESOLVED
    if not toml_path.is_file():
        raise ExportError(f"{d}: no {rundir.RESOLVED}")
    manifest: dict[str, Any] = {}
    if (d / rundir.MANIFEST).is_file():
        manifest = json.loads((d / rundir.MANIFEST).read_text())
    compliance = None
    if (d / "compliance.json").is_file():
        compliance = json.loads((d / "compliance.json").read_text())
    return RunRecord(d, result, toml_path.read_text("utf-8"), manifest, compliance)


def _without_seed(recipe: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(recipe))
    out.get("train", {}).pop("seed", None)
    return out


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "(root)"


def read_runs(path: Path) -> list[RunRecord]:
    """The run at ``path``, or the seed runs below it (sorted by seed)."""
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"{path}: not a directory")
    if _is_run(path):
        return [read_run(path)]
    subs = sorted(d for d in path.iterdir() if d.is_dir() and _is_run(d))
    if not subs:
        raise ExportError(f"{path}: neither a finished run directory (result.json + resolved.toml) nor a folder of them")
    runs = sorted((read_run(d) for d in subs), key=lambda r: (r.seed, str(r.run_dir)))
    base = _without_seed(runs[0].recipe)
    seen: dict[int, Path] = {}
    for r in runs:
        if r.seed in seen:
            raise ExportError(f"{r.run_dir} and {seen[r.seed]} both have seed {r.seed}; export one of them")
        seen[r.seed] = r.run_dir
        other = _without_seed(r.recipe)
        if other != base:
            key = _first_difference(base, other)
            raise ExportError(f"{r.run_dir}: recipe differs from {runs[0].run_dir} in {key!r}, not only in the seed")
    return runs
