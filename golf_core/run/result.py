"""``result.json``: the one schema of a run's result, and the legality summary every run ends with."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from ..context import RunContext
from ..technique import most_severe


class Legality(BaseModel):
    """``result.json["legality"]``: the cheap checks every run ends with.

    track: the most severe of the plugins' tracks (``trains-on-val`` when validation data was
    read outside the eval phase); declared: ``[meta] legality``; plugins: each plugin's track;
    validation_reads: the recorded reads; checks: each check's verdict; passed: all of them.
    """

    model_config = ConfigDict(extra="forbid")

    track: str
    trains_on_validation: bool
    declared: str
    plugins: dict[str, str]
    validation_reads: list[dict[str, Any]]
    checks: dict[str, bool]
    passed: bool


class Result(BaseModel):
    """``result.json``: scores, clocks, bytes, the run's identity and its legality summary.

    Plugins add their own keys (under their name) in ``golf_summary``; they are kept as extra
    fields after the core's. ``pre_quant_*`` and ``wall_seconds`` are ``None`` where a writer
    (``golf check``) does not measure them; ``code`` is the shipped code's record.

    Clocks: ``eval_seconds`` runs from the artifact's decode to the last score;
    ``adapt_seconds`` is the eval adapter's loop alone (``golf_eval_adapt``: what the records
    report as their eval time, e.g. #1530's TTT loop); ``post_train_seconds`` is everything
    after the training loop (pre-quant changes and eval, quantization, compression, decode,
    warm-up, diagnostics, the final eval).
    """

    model_config = ConfigDict(extra="allow")

    val_bpb: float
    val_loss: float
    pre_quant_val_bpb: Optional[float] = None
    pre_quant_val_loss: Optional[float] = None
    steps: int
    train_seconds: float
    eval_seconds: float
    adapt_seconds: Optional[float] = None
    post_train_seconds: Optional[float] = None
    wall_seconds: Optional[float] = None
    code_bytes: int
    model_bytes: int
    artifact_bytes: int
    cap_bytes: int
    under_cap: bool
    plugins: list[str]
    val_tokens: int
    val_bytes: int
    params: int
    seed: int
    world_size: int
    recipe_sha256: str
    tiny: bool
    code: Optional[dict[str, Any]] = None
    legality: Optional[Legality] = None

    def as_json(self) -> dict[str, Any]:
        """The dict written to ``result.json`` (the core's fields in order, then plugins' keys)."""
        return self.model_dump(mode="python", exclude_unset=True)


def legality_summary(ctx: RunContext, final: Any, under_cap: bool,
                     reads: Optional[list[dict[str, Any]]] = None) -> Legality:
    """Bytes under the cap, coverage exactly 1, validation reads, declared tracks.

    :param final: the final ``EvalResult`` (its ``coverage_ok``).
    :param reads: the validation reads to judge (default: ``ctx.validation_reads``).
    """
    tracks = ctx.plugins.legality()
    reads = list(ctx.validation_reads if reads is None else reads)
    run_track = most_severe(list(tracks.values()) + (["trains-on-val"] if reads else []))
    checks = {
        "under_cap": under_cap,
        "coverage_exactly_once": bool(final.coverage_ok),
        "no_validation_reads_outside_eval": not reads,
        "causal_plugins_only": all(t != "not-causal" for t in tracks.values()),
    }
    return Legality(track=run_track, trains_on_validation=run_track == "trains-on-val",
                    declared=ctx.recipe.meta.legality, plugins=tracks, validation_reads=reads, checks=checks,
                    passed=all(checks.values()))
