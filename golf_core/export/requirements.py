"""``requirements.txt`` of an export: what the bundled code imports, pinned from this environment.

Always the core's runtime set (``BASE_REQUIREMENTS``; ``COMPACT_REQUIREMENTS`` for compact
scripts, whose driver is baked), plus the distribution of every
third-party package that a bundled module imports (at load time or inside a function), each
pinned to the version installed here (``name==version``). Imports that no installed
distribution provides (e.g. ``tomli`` on Python >= 3.11) are listed as comments.
"""
from __future__ import annotations

import importlib.metadata as md
import platform
from typing import Iterable, Mapping

#: What golf_core itself needs to train, quantize and score (its pyproject dependencies,
#: without the CLI's display and plotting extras).
BASE_REQUIREMENTS = ("torch", "numpy", "pydantic", "pluggy", "sentencepiece", "brotli")
#: What a compact script with a baked driver needs (``golf_core.export.driver``): the recipe
#: was validated and the plugins activated when it was written, so neither pydantic nor pluggy.
COMPACT_REQUIREMENTS = ("torch", "numpy", "sentencepiece", "brotli")


def distributions_for(import_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``({distribution: version}, [imports no installed distribution provides])``."""
    owners = md.packages_distributions()
    dists: dict[str, str] = {}
    missing: list[str] = []
    for name in import_names:
        found = owners.get(name)
        if not found:
            try:
                found = [md.distribution(name).metadata["Name"]]
            except md.PackageNotFoundError:
                missing.append(name)
                continue
        for d in sorted(set(found)):
            dist = md.distribution(d)
            dists[dist.metadata["Name"]] = dist.version
    return dists, missing


def requirements_text(imports: Mapping[str, list[str]], base: Iterable[str] = BASE_REQUIREMENTS) -> str:
    """The file: pinned distributions (sorted, case-insensitively), then comments.

    :param imports: third-party top-level import names -> modules importing them
        (``bundle.third_party_imports``).
    :param base: what is always listed (:data:`COMPACT_REQUIREMENTS` for compact scripts).
    """
    names = list(dict.fromkeys([*base, *imports]))
    dists, missing = distributions_for(names)
    lines = [f"# pinned from the environment that exported this run (Python {platform.python_version()})"]
    lines += [f"{d}=={v}" for d, v in sorted(dists.items(), key=lambda kv: kv[0].lower())]
    for m in missing:
        users = ", ".join(imports.get(m, [])) or "golf_core"
        lines.append(f"# not installed here, imported conditionally by {users}: {m}")
    return "\n".join(lines) + "\n"


def requirement_names(text: str) -> list[str]:
    """The distribution names of a requirements file (comments and pins stripped)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split("==")[0].split(">=")[0].split(";")[0].strip())
    return out
