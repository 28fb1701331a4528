"""TechniqueInfo: the metadata a plugin declares through ``golf_register``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Literal, Optional

from .options import NoOptions, Options

if TYPE_CHECKING:  # pragma: no cover
    from .recipe import Recipe

#: The legality tracks of the challenge (techniques.md §0.1), from least to most severe: the one
#: order every caller uses (a run is on the most severe track of its plugins, see :func:`most_severe`).
Legality = Literal["fixed-predictor", "score-first", "not-causal", "trains-on-val"]
LEGALITY_TRACKS: tuple[str, ...] = ("fixed-predictor", "score-first", "not-causal", "trains-on-val")


def most_severe(tracks: Iterable[str]) -> str:
    """The most severe of ``tracks`` in :data:`LEGALITY_TRACKS` order (``fixed-predictor`` when none)."""
    return max(tracks, key=LEGALITY_TRACKS.index, default=LEGALITY_TRACKS[0])


def by_severity(tracks: Iterable[str]) -> list[str]:
    """The distinct ``tracks``, least severe first."""
    return sorted(set(tracks), key=LEGALITY_TRACKS.index)


@dataclass
class TechniqueInfo:
    """What a technique plugin tells golf about itself.

    name:             the recipe name (kebab case), equal to the entry-point name.
    options:          the plugin's pydantic ``Options`` subclass (``extra="forbid"``).
    summary:          one line for ``golf plugins``.
    lineage:          PR numbers the technique comes from, e.g. ``["#1394", "#1217"]``.
    legality:         the track the technique puts a run on with its default options.
    conflicts:        names of plugins it cannot be stacked with (checked at validation).
    required_on_load: True when the artifact cannot be rebuilt without this plugin
                      (it changes the architecture or how weights are decoded).
    reported_delta:   the gain the records report, as prose (e.g. "-0.0008 BPB, 4 -> 5").
    tiny:             optional ``fn(opts, recipe) -> opts`` scaling the options for ``--tiny``
                      (e.g. which layers loop when the model has fewer layers).
    legality_of:      optional ``fn(opts) -> Legality`` when the track depends on options
                      (``prequant-ttt`` with ``data = "val"`` trains on validation data).
    replaces:         former plugin names this one took over, each with the one-line hint a
                      recipe naming the old plugin fails with (``{"mr-gptq": "... rotation ..."}``).
    """

    name: str
    options: type[Options] = NoOptions
    summary: str = ""
    lineage: list[str] = field(default_factory=list)
    legality: str = "fixed-predictor"
    conflicts: list[str] = field(default_factory=list)
    required_on_load: bool = False
    reported_delta: str = ""
    tiny: Optional[Callable[[Options, "Recipe"], Options]] = None
    legality_of: Optional[Callable[[Options], str]] = None
    replaces: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.legality not in LEGALITY_TRACKS:
            raise ValueError(
                f"technique {self.name!r}: legality {self.legality!r} is not one of {LEGALITY_TRACKS}"
            )

    def track_for(self, opts: Options) -> str:
        """The legality track under the given options."""
        return self.legality_of(opts) if self.legality_of else self.legality
