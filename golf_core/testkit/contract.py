"""The contract every golf plugin passes, checked on the *installed* plugin.

Each check returns a list of one-line problems, each naming the plugin (empty: it passes), so a
failure reads as what to fix rather than as an assertion trace.
"""
from __future__ import annotations

import importlib.metadata as md
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:
    from golf_core.plugins import InstalledPlugin, PluginRegistry
    from golf_core.recipe import Recipe

#: Words a method card (the distribution's README, ``readme = "README.md"``) must contain.
CARD_SECTIONS = ("lineage", "legal", "default")
#: Overrides that make a ``--tiny`` recipe run in seconds on a CPU.
TINY_RUN = ("train.iterations=3", "train.warmup_steps=1", "train.train_batch_tokens=1024",
            "eval.max_tokens=1025", "train.log_every=0")


def _registry(registry: Optional["PluginRegistry"]) -> "PluginRegistry":
    from golf_core.plugins import PluginRegistry

    return registry if registry is not None else PluginRegistry.discover()


def method_card(entry: "InstalledPlugin") -> str:
    """The plugin's method card: its distribution's long description (empty when none)."""
    try:
        meta = md.distribution(entry.dist).metadata
    except (md.PackageNotFoundError, ValueError):
        return ""
    return meta.get_payload() or meta.get("Description", "") or ""


def plugin_problems(name: str, registry: Optional["PluginRegistry"] = None) -> list[str]:
    """Static contract of installed plugin ``name``: it loads, declares its metadata and an
    ``Options`` model whose defaults validate and whose fields are described, implements a
    hook, and ships a method card with lineage, legality and defaults sections."""
    from golf_core.options import Options
    from golf_core.technique import LEGALITY_TRACKS

    reg = _registry(registry)
    entry = reg.plugins.get(name)
    if entry is None:
        return [f"{name}: not installed (no entry point {name!r} in group 'golf'); installed: {reg.names()}"]
    if not entry.ok:
        return [f"{name}: failed to load: {entry.error}"]
    info = entry.info
    out: list[str] = []
    if not info.summary:
        out.append(f"{name}: TechniqueInfo has an empty summary")
    if info.legality not in LEGALITY_TRACKS:
        out.append(f"{name}: legality {info.legality!r} is not one of {list(LEGALITY_TRACKS)}")
    if not isinstance(info.lineage, list):
        out.append(f"{name}: lineage must be a list of PR numbers, got {type(info.lineage).__name__}")
    if not (isinstance(info.options, type) and issubclass(info.options, Options)):
        out.append(f"{name}: options must be a golf_core.Options subclass")
        return out
    try:
        opts = info.options()
    except Exception as e:  # noqa: BLE001 - reported as a problem
        out.append(f"{name}: the defaults of {info.options.__name__} do not validate: {e}")
    else:
        track = info.track_for(opts)
        if track not in LEGALITY_TRACKS:
            out.append(f"{name}: track_for(defaults) gives {track!r}, not a legality track")
    out += [f"{name}: option {f!r} has no description (Field(..., description=...))"
            for f, field in info.options.model_fields.items() if not field.description]
    if not [h for h in entry.hooks if h not in ("golf_register", "golf_register_commands")]:
        out.append(f"{name}: implements no hook besides registration")
    card = method_card(entry).lower()
    if not card:
        out.append(f"{name}: no method card (set readme = \"README.md\" in {entry.dist or 'its'} pyproject.toml)")
    else:
        out += [f"{name}: method card (README.md) lacks a {w!r} section" for w in CARD_SECTIONS if w not in card]
    return out


def tiny_recipe(plugins: Iterable[str], overrides: Iterable[str] = TINY_RUN, **tables: Any) -> "Recipe":
    """A ``--tiny`` recipe of ``plugins`` (in order) on the demo data, with ``overrides``
    (``dotted.key=value``) applied; ``tables`` are merged in first (``options={...}``)."""
    from golf_core.recipe import apply_override, validate_recipe_data
    from golf_core.tiny import apply_tiny

    plugins = list(plugins)
    data = apply_tiny({"plugins": plugins, "eval": {"stride": 64}, **tables})
    for o in overrides:
        apply_override(data, o)
    recipe = validate_recipe_data(data, f"tiny-{'-'.join(plugins) or 'baseline'}.toml")
    recipe.tiny = True
    return recipe


def tiny_run_problems(name: str, out_dir: Path | str, registry: Optional["PluginRegistry"] = None) -> list[str]:
    """Run plugin ``name`` alone in a tiny recipe on the CPU (seconds) and check the result:
    finite BPB, every target scored exactly once, ``artifact.bin`` of the reported size."""
    from golf_core.errors import GolfError
    from golf_core.run import run_recipe

    out = Path(out_dir)
    try:
        result = run_recipe(tiny_recipe([name]), out, echo=False, progress=False, reg=registry)
    except GolfError as e:
        return [f"{name}: the tiny run failed: {e}"]
    problems = []
    if result.get("plugins") != [name]:
        problems.append(f"{name}: the run's plugins are {result.get('plugins')}, not [{name!r}]")
    bpb = result.get("val_bpb")
    if not (isinstance(bpb, float) and math.isfinite(bpb) and 0 < bpb < 20):
        problems.append(f"{name}: val_bpb {bpb!r} is not a finite value in (0, 20)")
    if not result.get("legality", {}).get("checks", {}).get("coverage_exactly_once"):
        problems.append(f"{name}: not every validation target was scored exactly once")
    artifact = out / "artifact.bin"
    if not artifact.is_file() or artifact.stat().st_size != result.get("model_bytes"):
        problems.append(f"{name}: artifact.bin is missing or differs from model_bytes={result.get('model_bytes')}")
    return problems
