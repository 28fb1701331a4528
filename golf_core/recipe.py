"""Recipes: TOML files that stack plugins, resolved (extends, --set, --tiny) and validated.

A recipe is validated in two steps. ``load_recipe`` checks the core tables against
``golf_core.config`` and returns a ``Recipe``; ``golf_core.plugins.activate`` then checks the
plugin list and each ``[options.<plugin>]`` table against that plugin's own Options model.
Errors name the file, the key path and the nearest valid name.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import tomlio
from .config import ArtifactSection, CheckSection, DataSection, EvalSection, MetaSection, ModelSection, TrainSection
from .errors import RecipeError

#: Where the shipped recipes live: package data of ``golf_core`` (a checkout's ``recipes/`` is a
#: symlink to it), so an installed wheel finds them by bare name (``extends = "demo.toml"``).
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


class Recipe(BaseModel):
    """A resolved recipe: the ordered plugin list, the core tables and raw plugin options."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    plugins: list[str] = Field(default_factory=list, description="active plugins, in the order transforms run")
    meta: MetaSection = Field(default_factory=MetaSection)
    data: DataSection = Field(default_factory=DataSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    artifact: ArtifactSection = Field(default_factory=ArtifactSection)
    check: CheckSection = Field(default_factory=CheckSection)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="[options.<plugin>] tables")

    # Not part of the TOML: where it came from and whether --tiny was applied.
    source_path: Optional[str] = Field(None, exclude=True)
    tiny: bool = Field(False, exclude=True)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain TOML-able data (what ``resolved.toml`` holds)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        """The resolved recipe as TOML text; ``golf run`` on it repeats the run."""
        return tomlio.dumps(self.to_dict())

    def sha256(self) -> str:
        """Content hash of the resolved recipe."""
        return hashlib.sha256(self.to_toml().encode()).hexdigest()

    def with_plugins(self, plugins: Iterable[str]) -> "Recipe":
        """A copy with another plugin list (options of dropped plugins are kept, unused)."""
        new = self.model_copy(deep=True)
        new.plugins = list(plugins)
        return new


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    best = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {best[0]!r}?" if best else ""


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``: tables merge recursively, everything else
    (lists included) is replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def find_recipe(ref: str, relative_to: Optional[Path] = None) -> Path:
    """Locate a recipe: a path (relative to ``relative_to`` first), or the name of a shipped
    recipe with or without ``.toml`` (``pr1394``)."""
    candidates = []
    p = Path(ref)
    if relative_to is not None and not p.is_absolute():
        candidates.append(relative_to / p)
    candidates.append(p)
    name = ref if ref.endswith(".toml") else ref + ".toml"
    candidates.append(RECIPES_DIR / Path(name).name)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    shipped = [q.stem for q in RECIPES_DIR.glob("*.toml")]
    raise RecipeError(f"recipe {ref!r} not found{suggest(Path(ref).stem, shipped)}")


def _read_with_extends(path: Path, chain: list[Path]) -> dict[str, Any]:
    if path in chain:
        cycle = " -> ".join(p.name for p in chain + [path])
        raise RecipeError(f"{path.name}: cycle in extends: {cycle}")
    try:
        data = tomlio.load_file(path)
    except tomlio.TOMLDecodeError as e:
        raise RecipeError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot read: {e.strerror}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise RecipeError(f"{path.name}: extends must be a string, got {type(parent).__name__}")
    try:
        target = find_recipe(parent, path.parent)
    except RecipeError as e:
        raise RecipeError(f"{path}: extends {parent!r}, which is not found ({e})") from None
    base = _read_with_extends(target, chain + [path])
    # [meta] describes a recipe, not its parent: a child never inherits the parent's source,
    # reported score or legality verdict.
    base.pop("meta", None)
    merged = deep_merge(base, data)
    # a child that drops a parent's plugin drops its inherited [options] table with it; a table
    # the child writes itself must name one of its plugins (_check_options_tables)
    plugins = merged.get("plugins", [])
    own = data.get("options", {}) if isinstance(data.get("options"), dict) else {}
    if isinstance(merged.get("options"), dict) and isinstance(plugins, list):
        merged["options"] = {k: v for k, v in merged["options"].items() if k in plugins or k in own}
    return merged


def apply_override(data: dict[str, Any], assignment: str, origin: str = "--set") -> None:
    """Apply one ``dotted.key=value`` (TOML-typed value) to raw recipe data in place."""
    if "=" not in assignment:
        raise RecipeError(f"{origin} {assignment!r}: expected dotted.key=value")
    key, _, text = assignment.partition("=")
    key = key.strip()
    try:
        value = tomlio.parse_value(text.strip())
    except tomlio.TOMLDecodeError as e:
        raise RecipeError(f"{origin} {key}: value {text!r} is not a TOML value ({e})") from None
    parts = key.split(".")
    if key.startswith("options.") and len(parts) >= 3:
        # plugin names contain dashes and may not contain dots: options.<plugin>.<key...>
        parts = ["options", parts[1], *parts[2:]]
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise RecipeError(f"{origin} {key}: {p!r} is not a table")
        node = nxt
    node[parts[-1]] = value


_SECTIONS: dict[str, type[BaseModel]] = {
    "meta": MetaSection,
    "data": DataSection,
    "model": ModelSection,
    "train": TrainSection,
    "eval": EvalSection,
    "artifact": ArtifactSection,
    "check": CheckSection,
}
_TOP_KEYS = ["plugins", "options", *_SECTIONS]
#: Keys that moved out of the core's tables: ``(table, key) -> where they live now``. Set to
#: anything but ``false`` they are refused, pointing there; ``false`` (every ``resolved.toml``
#: written before the move has it) is dropped.
MOVED_KEYS = {("artifact", "fit"): "[options.gptq] fit (the budget fit is GPTQ's)"}


def _format_validation_error(where: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = [str(x) for x in first["loc"]]
    path = ".".join(loc)
    if first["type"] == "extra_forbidden":
        # suggest the nearest field of the section it belongs to
        model: Any = Recipe
        for part in loc[:-1]:
            field = model.model_fields.get(part)
            model = field.annotation if field is not None else None
            if model is None or not isinstance(model, type):
                break
        names = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else _TOP_KEYS
        names = [n for n in names if n not in ("source_path", "tiny")]
        return f"{where}: unknown key {path!r}{suggest(loc[-1], names)}"
    return f"{where}: {path}: {first['msg']} (got {first.get('input')!r})"


def _check_options_tables(data: dict[str, Any], where: str) -> None:
    """A recipe's ``[options.X]`` must belong to a plugin it lists (checked before ``--set``, so
    that ``--set plugins=[...]``, as ``golf ablate`` does, may leave a plugin's table unused)."""
    plugins = data.get("plugins", [])
    opts = data.get("options", {})
    if isinstance(plugins, list) and isinstance(opts, dict):
        for name in opts:
            if name not in plugins:
                raise RecipeError(f"{where}: [options.{name}] sets options of plugin {name!r}, which is not in "
                                  f"plugins = {plugins!r}; add it there or remove the table")


def validate_recipe_data(data: dict[str, Any], where: str) -> Recipe:
    """Validate raw (resolved) recipe data against the core tables."""
    for k in data:
        if k not in _TOP_KEYS:
            raise RecipeError(f"{where}: unknown key {k!r}{suggest(k, _TOP_KEYS)}")
    for (table, key), now in MOVED_KEYS.items():
        if isinstance(data.get(table), dict) and key in data[table]:
            if data[table][key] is not False:
                raise RecipeError(f"{where}: [{table}] {key} moved to {now}")
            data[table] = {k: v for k, v in data[table].items() if k != key}
    opts = data.get("options", {})
    if not isinstance(opts, dict) or any(not isinstance(v, dict) for v in opts.values()):
        raise RecipeError(f"{where}: [options] must hold one table per plugin, e.g. [options.qk-gain]")
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list) or any(not isinstance(p, str) for p in plugins):
        raise RecipeError(f"{where}: plugins must be a list of plugin names")
    dup = sorted({p for p in plugins if plugins.count(p) > 1})
    if dup:
        raise RecipeError(f"{where}: plugin {dup[0]!r} is listed twice")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_validation_error(where, e)) from None


def load_recipe(ref: str | Path, overrides: Iterable[str] = (), tiny: bool = False) -> Recipe:
    """Read, resolve and validate a recipe's core tables.

    :param ref: a path or a shipped recipe's name.
    :param overrides: ``dotted.key=value`` strings, applied after ``extends`` and ``--tiny``
        so that they win.
    :param tiny: apply ``golf_core.tiny.apply_tiny`` (plugin-specific scaling happens in
        ``golf_core.plugins.activate``).
    """
    path = find_recipe(str(ref))
    data = _read_with_extends(path, [])
    if tiny:
        from .tiny import apply_tiny

        data = apply_tiny(data)
    _check_options_tables(data, path.name)
    for o in overrides:
        apply_override(data, o)
    recipe = validate_recipe_data(data, path.name)
    recipe.source_path = str(path)
    recipe.tiny = tiny
    return recipe


def load_recipe_text(text: str, name: str = "<recipe>", overrides: Iterable[str] = ()) -> Recipe:
    """Validate a recipe given as TOML text (no ``extends`` to shipped files unless named)."""
    try:
        data = tomlio.loads(text)
    except tomlio.TOMLDecodeError as e:
        raise RecipeError(f"{name}: invalid TOML: {e}") from None
    parent = data.pop("extends", None)
    if parent is not None:
        base = _read_with_extends(find_recipe(parent), [])
        base.pop("meta", None)
        data = deep_merge(base, data)
    _check_options_tables(data, name)
    for o in overrides:
        apply_override(data, o)
    return validate_recipe_data(data, name)
