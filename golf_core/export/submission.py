"""``submission.json`` in the challenge's schema (research/pg_core.md §1).

The naive baseline's fields (``author, github_id, name, blurb, date, val_loss, val_bpb,
bytes_total, bytes_code``), #1394's additions (``track, val_bpb_std, seeds, seed_results
{seed: {val_loss, val_bpb, artifact_bytes, steps}}, hardware, pytorch_version``) and, like
#1413, ``val_bpb_method``, per-seed times and a ``compliance`` dict. Scores are means over
the seeds; ``val_bpb_std`` is the sample standard deviation (0 for one seed);
``bytes_total`` is the largest artifact of the seeds; every artifact counts the exported
``train_gpt.py`` as its code.
"""
from __future__ import annotations

import datetime as _dt
import statistics
from dataclasses import dataclass
from typing import Any, Optional

from .runs import RunRecord


@dataclass
class SubmissionInfo:
    """What the run directory cannot tell: who submits, under which name, on which track."""

    author: str = ""
    github_id: str = ""
    name: str = ""
    blurb: str = ""
    date: str = ""
    track: str = ""


def hardware(run: RunRecord) -> str:
    """``"8xNVIDIA H100 80GB HBM3"`` style, from the run's manifest (``"1xcpu"`` on a CPU)."""
    dev = run.manifest.get("device", {})
    world = int(run.result.get("world_size", run.manifest.get("world_size", 1)) or 1)
    name = dev.get("name") or dev.get("type") or "unknown"
    return f"{world}x{name}"


def default_track(runs: list[RunRecord]) -> str:
    """``10min_16mb`` when every seed ran on 8 GPUs under a <= 600 s wallclock cap and under
    the byte cap; else ``non_record_16mb``."""
    for r in runs:
        train = r.recipe.get("train", {})
        cap = float(train.get("max_wallclock_seconds", 0) or 0)
        cuda = r.manifest.get("device", {}).get("type") == "cuda"
        if not (cuda and int(r.result.get("world_size", 1)) == 8 and 0 < cap <= 600 and r.result.get("under_cap")):
            return "non_record_16mb"
    return "10min_16mb"


def val_bpb_method(run: RunRecord) -> str:
    """How the final score was computed (eval stride, eval-time adapter)."""
    ev = run.recipe.get("eval", {})
    stride = ev.get("stride")
    seq = ev.get("seq_len")
    how = f"sliding window, seq_len {seq}, stride {stride}" if stride else f"non-overlapping windows of {seq}"
    eval_time, pre_quant = _adapters(run)
    text = f"quantized artifact (decoded from artifact.bin), {how}"
    if eval_time:
        text += f", eval-time adaptation: {', '.join(eval_time)}"
    if pre_quant:
        text += f", pre-quant adaptation trained on validation data: {', '.join(pre_quant)}"
    return text


def _adapters(run: RunRecord) -> tuple[list[str], list[str]]:
    """The run's non-fixed-predictor plugins split in two: those that adapt while scoring (a
    ``golf_eval_adapt`` hook) and those that train on validation data before quantization."""
    from ..plugins import registry

    track = run.result.get("legality", {}).get("plugins", {})
    eval_time: list[str] = []
    pre_quant: list[str] = []
    for p in run.result.get("plugins", []):
        if track.get(p, "fixed-predictor") == "fixed-predictor":
            continue
        entry = registry().plugins.get(p)
        adapts = entry is not None and "golf_eval_adapt" in entry.hooks
        (pre_quant if track[p] == "trains-on-val" and not adapts else eval_time).append(p)
    return eval_time, pre_quant


def _date(runs: list[RunRecord]) -> str:
    mtimes = [(r.run_dir / "result.json").stat().st_mtime for r in runs]
    return _dt.datetime.fromtimestamp(max(mtimes), tz=_dt.timezone.utc).date().isoformat()


def _compliance(runs: list[RunRecord]) -> dict[str, Any]:
    legal = [r.result.get("legality", {}) for r in runs]
    checks: dict[str, bool] = {}
    for lg in legal:
        for k, v in lg.get("checks", {}).items():
            checks[k] = checks.get(k, True) and bool(v)
    out: dict[str, Any] = {
        "track": legal[0].get("track") if legal else None,
        "declared": legal[0].get("declared") if legal else None,
        "trains_on_validation": any(lg.get("trains_on_validation") for lg in legal),
        "checks": checks,
        "passed": all(lg.get("passed", False) for lg in legal) if legal else False,
    }
    checked = {str(r.seed): check_summary(r.compliance) for r in runs if r.compliance is not None}
    if checked:
        out["golf_check"] = next(iter(checked.values())) if len(runs) == 1 else checked
    return out


def check_summary(compliance: dict[str, Any]) -> dict[str, Any]:
    """The verdicts of a ``golf check`` compliance.json: ``{passed, failed, rules: {id: verdict}}``."""
    rules = {str(r.get("rule")): r.get("verdict") for r in compliance.get("rules", []) if isinstance(r, dict)}
    return {"passed": compliance.get("passed"), "failed": list(compliance.get("failed", [])), "rules": rules}


def submission_json(runs: list[RunRecord], code_bytes: int, info: Optional[SubmissionInfo] = None) -> dict[str, Any]:
    """The submission.json dict for the seed runs ``runs`` shipped with a ``code_bytes`` script."""
    info = info or SubmissionInfo()
    bpbs = [float(r.result["val_bpb"]) for r in runs]
    losses = [float(r.result["val_loss"]) for r in runs]
    artifact = {r.seed: code_bytes + int(r.result["model_bytes"]) for r in runs}
    first = runs[0]
    meta = first.recipe.get("meta", {})
    return {
        "author": info.author,
        "github_id": info.github_id,
        "name": info.name or meta.get("source") or first.run_dir.name,
        "blurb": info.blurb or _blurb(first),
        "date": info.date or _date(runs),
        "val_loss": statistics.fmean(losses),
        "val_bpb": statistics.fmean(bpbs),
        "bytes_total": max(artifact.values()),
        "bytes_code": code_bytes,
        "track": info.track or default_track(runs),
        "val_bpb_std": statistics.stdev(bpbs) if len(bpbs) > 1 else 0.0,
        "seeds": [r.seed for r in runs],
        "seed_results": {
            str(r.seed): {
                "val_loss": float(r.result["val_loss"]),
                "val_bpb": float(r.result["val_bpb"]),
                "artifact_bytes": artifact[r.seed],
                "steps": int(r.result.get("steps", 0)),
                "train_time_ms": round(1000 * float(r.result.get("train_seconds", 0.0))),
                "eval_time_ms": round(1000 * float(r.result.get("eval_seconds", 0.0))),
            }
            for r in runs
        },
        "hardware": hardware(first),
        "pytorch_version": first.manifest.get("torch", ""),
        "val_bpb_method": val_bpb_method(first),
        "compliance": _compliance(runs),
    }


def _blurb(run: RunRecord) -> str:
    plugins = run.result.get("plugins", [])
    return "golf stack: " + (" -> ".join(plugins) if plugins else "the naive baseline") + "."
