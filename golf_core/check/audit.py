"""The rules of the challenge (techniques.md §0.1, pg_core.md §1) and their verdicts.

One ``Rule`` per row of the ``golf check`` table, decided from the ``Facts`` a check gathered:
``pass``, ``fail``, ``not judged`` (the clocks off the challenge's hardware) or ``not checked``
(nothing to decide from, with the reason). Only ``fail`` makes ``golf check`` exit non-zero.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..quant.accounting import CAP_BYTES
from .flip import FlipReport
from .ledger import LedgerAudit
from .session import NormStats, Violation
from .sweep import SweepResult

PASS, FAIL, NOT_JUDGED, NOT_CHECKED = "pass", "fail", "not judged", "not checked"
#: Training and evaluation limits, seconds, each on 8xH100 SXM.
TRAIN_LIMIT_S = 600.0
EVAL_LIMIT_S = 600.0
#: The challenge's hardware.
CHALLENGE_GPU = "H100"
CHALLENGE_WORLD = 8

TITLES = {
    "causality": "C1 causal: prediction depends on artifact + prefix only (flip test)",
    "normalization": "C2 full normalized distribution at the scored rows",
    "score_before_update": "C3 score before update (eval ledger)",
    "scored_once": "C4 every target scored exactly once",
    "no_validation_before_scoring": "no validation data before it is scored",
    "artifact_cap": "artifact <= 16,000,000 bytes (code + model)",
    "train_clock": "train <= 600 s on 8xH100",
    "eval_clock": "eval <= 600 s on 8xH100",
}


@dataclass
class Rule:
    """One row of the table: rule id, title, verdict and the evidence (one line)."""

    id: str
    verdict: str
    evidence: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The rule in words."""
        return TITLES.get(self.id, self.id)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"rule": self.id, "title": self.title, "verdict": self.verdict, "evidence": self.evidence,
                "details": self.details}


@dataclass
class Facts:
    """Everything the verdicts are decided from (gathered by ``golf_core.check.api``).

    flip / flip_scope / flip_skipped: the flip test, what it covered, or why it did not run;
    flip_eval: the same probes at eval time alone, when ``flip`` re-ran the whole pipeline;
    tracks: each plugin's declared legality track; norm / sweeps / adapter / vocab_size: the
    normalization evidence; ledgers: ``(label, LedgerAudit)`` per audited ledger; violations:
    legality errors the sessions raised; coverage: per-target counts of the full scoring (or
    None) and coverage_ok from result.json; reads / unrecorded_loads: validation reads outside
    the session; bytes and cap; clocks and the hardware they ran on.
    """

    flip: Optional[FlipReport] = None
    flip_eval: Optional[FlipReport] = None
    flip_scope: str = ""
    flip_skipped: Optional[str] = None
    tracks: dict[str, str] = field(default_factory=dict)
    norm: Optional[NormStats] = None
    sweeps: list[SweepResult] = field(default_factory=list)
    sweep_skipped: Optional[str] = None
    adapter: Optional[str] = None
    vocab_size: int = 0
    ledgers: list[tuple[str, LedgerAudit]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    coverage: Optional[np.ndarray] = None
    coverage_ok: Optional[bool] = None
    num_targets: Optional[int] = None
    reads: list[dict[str, Any]] = field(default_factory=list)
    unrecorded_loads: list[dict[str, Any]] = field(default_factory=list)
    code_bytes: Optional[int] = None
    model_bytes: Optional[int] = None
    cap_bytes: int = CAP_BYTES
    train_seconds: Optional[float] = None
    eval_seconds: Optional[float] = None
    device: str = "cpu"
    world_size: int = 1


def judged_hardware(device: str, world_size: int) -> bool:
    """True on the challenge's hardware: 8 processes on H100 GPUs."""
    return CHALLENGE_GPU in (device or "") and int(world_size) == CHALLENGE_WORLD


# ---------------------------------------------------------------------------------------------


def _flip_text(rep: FlipReport) -> str:
    """One flip test in words: its worst violation and counts, or what it checked."""
    bad = rep.violations
    moved = sum(p.moved for p in rep.probes)
    checked = sum(p.checked for p in rep.probes)
    if bad:
        worst = max(bad, key=lambda p: (p.aborted is None, p.max_delta))
        if worst.aborted is not None and worst.moved == 0:
            ev = f"flip at j={worst.probe.j} ({worst.probe.kind}): adapter aborted: {worst.aborted}"
        else:
            ev = f"probe t={worst.worst_t} moved by {worst.max_delta:.3g} nats at j={worst.probe.j} ({worst.probe.kind})"
        return (f"{ev}; {len(bad)}/{len(rep.probes)} probes violate, {moved:,} of {checked:,} earlier scores moved "
                f"(tol {rep.tolerance:.1e})")
    kinds = ",".join(sorted({p.probe.kind for p in rep.probes}))
    rows = sum(p.row_checked for p in rep.probes)
    return (f"{len(rep.probes)} probes ({kinds}): 0 of {checked:,} earlier scores moved"
            f"{f', {rows} t=j rows compared' if rows else ''} (noise {rep.noise:.1e}, tol {rep.tolerance:.1e})")


def rule_causality(f: Facts) -> Rule:
    """C1 from the flip test (and the plugins' own declarations). When every probe re-ran the
    whole pipeline, the same probes also ran at eval time alone (the base artifact scored on the
    flipped stream), so the table says which stage leaks."""
    declared = sorted(n for n, t in f.tracks.items() if t == "not-causal")
    decl = f"; declared not-causal: {', '.join(declared)}" if declared else ""
    if f.flip is None:
        if declared:
            return Rule("causality", FAIL, f"flip test not run ({f.flip_skipped}){decl}")
        return Rule("causality", NOT_CHECKED, f"flip test not run: {f.flip_skipped}")
    rep = f.flip
    d = rep.as_dict()
    d["scope"] = f.flip_scope
    if f.flip_eval is not None:
        d["eval_time"] = f.flip_eval.as_dict()
    if not rep.probes:
        return Rule("causality", NOT_CHECKED, f"no probe position in a stream of {rep.num_targets} targets", d)
    scope = f" over the {f.flip_scope}" if f.flip_scope else ""
    if f.flip_eval is not None:
        ev = f"eval time (artifact fixed): {_flip_text(f.flip_eval)}; {f.flip_scope or 'whole pipeline'}: {_flip_text(rep)}"
        bad = bool(rep.violations or f.flip_eval.violations)
    else:
        ev = _flip_text(rep) + scope
        bad = bool(rep.violations)
    if bad:
        return Rule("causality", FAIL, ev + decl, d)
    if declared:
        return Rule("causality", FAIL, f"no probe moved, but{decl.lstrip(';')}; {ev}", d)
    return Rule("causality", PASS, ev, d)


def rule_normalization(f: Facts) -> Rule:
    """C2 from the logit tap and the vocabulary sweeps."""
    n = f.norm or NormStats()
    d: dict[str, Any] = {"rows_ok": n.rows_ok, "rows_bad": n.rows_bad, "rows_unmapped": n.rows_unmapped,
                         "min_cols": n.min_cols, "max_err": n.max_err, "worst": n.worst,
                         "sweeps": [s.as_dict() for s in f.sweeps], "adapter": f.adapter}
    bad_sweeps = [s for s in f.sweeps if not s.ok]
    if bad_sweeps:
        s = bad_sweeps[0]
        if s.aborted:
            return Rule("normalization", FAIL, f"vocabulary sweep at t={s.row + 1}: adapter aborted: {s.aborted}", d)
        return Rule("normalization", FAIL,
                    f"sum over all {s.vocab_size} ids of the scored p at t={s.row + 1} is {s.total:.4f}, not 1 "
                    f"(largest p={s.max_p:.3g} for id {s.argmax})", d)
    if n.rows_ok and n.min_cols is not None and f.vocab_size and n.min_cols < f.vocab_size:
        return Rule("normalization", FAIL, f"scored logits cover {n.min_cols} of {f.vocab_size} token ids", d)
    sweep_ev = "; ".join(f"sweep at t={s.row + 1}: sum over {s.vocab_size} ids = {s.total:.6f}" for s in f.sweeps)
    if n.rows_ok and not n.rows_bad:
        ev = (f"{n.rows_ok:,} scored rows: reported NLL = -log softmax over all {n.min_cols} logits "
              f"(max err {n.max_err:.1e})")
        if n.rows_unmapped:
            ev += f"; {n.rows_unmapped:,} rows without tapped logits"
        return Rule("normalization", PASS, ev + (f"; {sweep_ev}" if sweep_ev else ""), d)
    if f.sweeps:
        lead = (f"{n.rows_bad:,} rows where the adapter transforms the model's logits; " if n.rows_bad else
                f"adapter {f.adapter or '?'} computes its own logits; ")
        return Rule("normalization", PASS, lead + sweep_ev, d)
    why = f" (run with {f.sweep_skipped})" if f.sweep_skipped and f.sweep_skipped.startswith("--") else (
        f" ({f.sweep_skipped})" if f.sweep_skipped else "")
    if n.rows_bad:
        w = n.worst
        at = f" at t={w[0] + 1}: {w[1]:.4f} vs {w[2]:.4f}" if w else ""
        return Rule("normalization", NOT_CHECKED,
                    f"reported NLL is not -log softmax of the tapped logits at {n.rows_bad:,} rows{at}: the adapter "
                    f"transforms them; no vocabulary sweep{why}", d)
    return Rule("normalization", NOT_CHECKED,
                f"adapter {f.adapter or '?'} computes its logits outside compute_logits/forward_logits: no row to "
                f"check; no vocabulary sweep{why}", d)


def rule_score_before_update(f: Facts) -> Rule:
    """C3 from refused updates and the ledger audits."""
    refused = [v for v in f.violations if v.kind == "update_before_score"]
    d = {"ledgers": [{"label": lab, "scores": a.scores, "updates": a.updates, "problems": a.problems}
                     for lab, a in f.ledgers]}
    if refused:
        return Rule("score_before_update", FAIL, f"{refused[0].message} ({len(refused)} refused update(s))", d)
    for lab, a in f.ledgers:
        if not a.ok:
            return Rule("score_before_update", FAIL, f"{a.problems[0]} ({lab})", d)
    if not f.ledgers:
        return Rule("score_before_update", NOT_CHECKED, "no eval ledger", d)
    lab, a = f.ledgers[0]
    if a.ranks > 1:
        lab = f"{lab}, {a.ranks} ranks"
    if a.updates:
        ev = (f"{a.scores:,} score / {a.updates:,} update events ({lab}): every update read only scored targets "
              f"and preceded only later targets' scores")
    else:
        ev = f"{a.scores:,} score events, no update ({lab}); state kept within a batch is the flip test's to judge"
    return Rule("score_before_update", PASS, ev, d)


def rule_scored_once(f: Facts) -> Rule:
    """C4 from double-score errors and the coverage counts."""
    twice = [v for v in f.violations if v.kind == "scored_twice"]
    if twice:
        return Rule("scored_once", FAIL, f"{twice[0].message} (adapter aborted)", {"errors": [v.message for v in twice]})
    if f.coverage is not None:
        cov = np.asarray(f.coverage)
        never, multi = int((cov == 0).sum()), int((cov > 1).sum())
        d = {"targets": int(cov.size), "never": never, "multiple": multi}
        if never or multi:
            parts = []
            if never:
                parts.append(f"{never:,} targets never scored (first t={int(np.argmax(cov == 0)) + 1})")
            if multi:
                parts.append(f"{multi:,} scored more than once (first t={int(np.argmax(cov > 1)) + 1})")
            return Rule("scored_once", FAIL, "; ".join(parts) + f" of {cov.size:,}", d)
        return Rule("scored_once", PASS, f"{cov.size:,} targets, each scored exactly once", d)
    if f.coverage_ok is not None:
        n = f"{f.num_targets:,} targets" if f.num_targets else "every target"
        if f.coverage_ok:
            return Rule("scored_once", PASS, f"{n} scored exactly once (result.json)", {})
        return Rule("scored_once", FAIL, "result.json: coverage is not exactly 1 for every target", {})
    return Rule("scored_once", NOT_CHECKED, "no coverage record", {})


def rule_no_validation(f: Facts) -> Rule:
    """Validation reads outside the eval session, unrecorded loads, declared trains-on-val."""
    parts = []
    groups = Counter((r.get("phase", "?"), r.get("plugin") or _plugin_from_reason(r.get("reason", ""))) for r in f.reads)
    for (phase, plugin), k in groups.items():
        parts.append(f"{k} read{'s' if k > 1 else ''} of validation data in phase {phase}: {plugin}")
    loads = Counter((r.get("phase", "?"), r.get("plugin", "?")) for r in f.unrecorded_loads)
    for (phase, plugin), k in loads.items():
        parts.append(f"{k} unrecorded load{'s' if k > 1 else ''} of the validation stream in phase {phase}: {plugin}")
    declared = sorted(n for n, t in f.tracks.items() if t == "trains-on-val")
    if declared:
        parts.append(f"declared trains-on-val: {', '.join(declared)}")
    d = {"reads": f.reads, "unrecorded_loads": f.unrecorded_loads, "declared": declared}
    if parts:
        return Rule("no_validation_before_scoring", FAIL, "; ".join(parts), d)
    return Rule("no_validation_before_scoring", PASS,
                "no read of validation data outside the eval session; no plugin declares trains-on-val", d)


def _plugin_from_reason(reason: str) -> str:
    """Reads recorded by a plain run (result.json) have no plugin name; plugins start their
    reason with it by convention ("prequant-ttt: ...")."""
    head = (reason or "").split(":")[0].strip()
    return head or "?"


def rule_artifact_cap(f: Facts) -> Rule:
    """code + model bytes against the challenge's 16,000,000 (decimal) bytes."""
    if f.code_bytes is None or f.model_bytes is None:
        return Rule("artifact_cap", NOT_CHECKED, "no artifact byte counts")
    total = f.code_bytes + f.model_bytes
    d = {"code_bytes": f.code_bytes, "model_bytes": f.model_bytes, "artifact_bytes": total, "cap_bytes": CAP_BYTES}
    rel = "<=" if total <= CAP_BYTES else ">"
    ev = f"{total:,} bytes = {f.code_bytes:,} code + {f.model_bytes:,} model {rel} {CAP_BYTES:,}"
    if f.cap_bytes != CAP_BYTES:
        ev += f" (the recipe's own cap is {f.cap_bytes:,})"
    return Rule("artifact_cap", PASS if total <= CAP_BYTES else FAIL, ev, d)


def _clock(rule: str, what: str, seconds: Optional[float], limit: float, f: Facts) -> Rule:
    hw = f"{f.device} x{f.world_size}"
    d = {"seconds": seconds, "limit_s": limit, "device": f.device, "world_size": f.world_size}
    if seconds is None:
        return Rule(rule, NOT_CHECKED, f"no {what} time recorded", d)
    if not judged_hardware(f.device, f.world_size):
        return Rule(rule, NOT_JUDGED, f"{what} {seconds:.1f} s on {hw}: the limit holds on 8xH100 only", d)
    ok = seconds <= limit
    return Rule(rule, PASS if ok else FAIL, f"{what} {seconds:.1f} s on {hw} {'<=' if ok else '>'} {limit:.0f} s", d)


def decide(f: Facts) -> list[Rule]:
    """Every rule's verdict, in table order."""
    return [
        rule_causality(f),
        rule_normalization(f),
        rule_score_before_update(f),
        rule_scored_once(f),
        rule_no_validation(f),
        rule_artifact_cap(f),
        _clock("train_clock", "train", f.train_seconds, TRAIN_LIMIT_S, f),
        _clock("eval_clock", "eval", f.eval_seconds, EVAL_LIMIT_S, f),
    ]
