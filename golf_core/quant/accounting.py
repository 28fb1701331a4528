"""Artifact accounting: ``artifact_bytes = code_bytes + model_bytes`` against the 16,000,000-byte cap.

``code_bytes`` counts the source of ``golf_core`` and of the active plugins' packages the way
records ship code (research/pg_core.md §1, techniques.md §12): every ``.py`` file concatenated
in a fixed order, compressed with raw LZMA2, base85-encoded and wrapped in a two-line
self-extracting ``exec`` script, counted as UTF-8 bytes.
"""
from __future__ import annotations

import base64
import importlib.util
import lzma
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Union

from ..errors import GolfError

#: The challenge's cap, decimal bytes.
CAP_BYTES = 16_000_000
#: LZMA2 filter chain for the shipped code (raw format, strongest preset).
CODE_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
_WRAPPER = ('import lzma,base64\nexec(lzma.decompress(base64.b85decode("{blob}"),'
            'format=lzma.FORMAT_RAW,filters=[{{"id":lzma.FILTER_LZMA2}}]))\n')

PackageRef = Union[str, ModuleType, Path]


def package_dir(pkg: PackageRef) -> Path:
    """The source folder of a package given by import name (top-level part used), module or path."""
    if isinstance(pkg, Path):
        return pkg
    name = pkg.__name__ if isinstance(pkg, ModuleType) else str(pkg)
    top = name.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None:
        raise GolfError(f"package {top!r} is not importable, so its code bytes cannot be counted")
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    if spec.origin:
        return Path(spec.origin)
    raise GolfError(f"package {top!r} has no source location")


def collect_source(packages: Iterable[PackageRef]) -> str:
    """All ``.py`` files of the packages, in order (packages as given, files by relative path),
    each preceded by a ``# <package>/<path>`` line."""
    parts: list[str] = []
    for pkg in packages:
        root = package_dir(pkg)
        files = [root] if root.is_file() else sorted(
            (p for p in root.rglob("*.py") if "__pycache__" not in p.parts),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        for f in files:
            rel = f.name if root.is_file() else f"{root.name}/{f.relative_to(root).as_posix()}"
            text = f.read_text("utf-8")
            parts.append(f"# {rel}\n{text}" + ("" if text.endswith("\n") else "\n"))
    return "".join(parts)


def ship_code(source: str) -> str:
    """The two-line self-extracting script that carries ``source``: LZMA2 raw + base85 + exec."""
    blob = lzma.compress(source.encode("utf-8"), format=lzma.FORMAT_RAW, filters=CODE_FILTERS)
    return _WRAPPER.format(blob=base64.b85encode(blob).decode("ascii"))


def unship_code(script: str) -> str:
    """Recover the source from :func:`ship_code`'s script without executing it."""
    start = script.index('b85decode("') + len('b85decode("')
    blob = base64.b85decode(script[start:script.index('"', start)])
    return lzma.decompress(blob, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]).decode("utf-8")


def code_bytes(packages: Iterable[PackageRef] = ("golf_core",)) -> int:
    """UTF-8 size of the shipped script carrying the packages' source."""
    return len(ship_code(collect_source(packages)).encode("utf-8"))


def code_bytes_for(plugins: Any = None) -> int:
    """Code bytes of ``golf_core`` plus the source of the active plugins (an
    ``golf_core.plugins.ActivePlugins``; ``None``: golf_core alone)."""
    packages: list[PackageRef] = ["golf_core"]
    if plugins is not None:
        from ..plugins import plugin_source_roots

        packages += [Path(p) for p in plugin_source_roots(plugins)]
    return code_bytes(packages)


@dataclass(frozen=True)
class ByteBudget:
    """The artifact's size against the cap."""

    code_bytes: int
    model_bytes: int
    cap_bytes: int = CAP_BYTES

    @property
    def artifact_bytes(self) -> int:
        """code_bytes + model_bytes."""
        return self.code_bytes + self.model_bytes

    @property
    def under_cap(self) -> bool:
        """True when the artifact does not exceed the cap."""
        return self.artifact_bytes <= self.cap_bytes

    @property
    def headroom(self) -> int:
        """Bytes left under the cap (negative when over)."""
        return self.cap_bytes - self.artifact_bytes

    def as_dict(self) -> dict:
        """The fields ``result.json`` carries."""
        d = asdict(self)
        d.update(artifact_bytes=self.artifact_bytes, under_cap=self.under_cap, headroom_bytes=self.headroom)
        return d


def under_cap(code: int, model: int, cap: int = CAP_BYTES) -> bool:
    """True when ``code + model <= cap``."""
    return code + model <= cap
