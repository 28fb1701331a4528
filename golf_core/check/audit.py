"""The rules of the challenge (techniques.md §0.1, pg_core.md §1) and their verdicts.

One ``Rule`` per row of the ``golf check`` table, decided from the ``Facts`` a check gathered:
``pass``, ``fail``, ``not judged`` (a clock off the challenge's hardware), ``n/a`` (a rule the
recipe does not claim, e.g. document independence) or ``not checked`` (nothing to decide from).
``not checked`` is a failure unless the recipe declares why the rule cannot apply
(``[check.exempt] <rule> = "why"``). Only ``fail`` makes ``golf check`` exit non-zero.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..quant.accounting import CAP_BYTES
from .flip import FlipReport
from .ledger import LedgerAudit
from .overlap import Overlap
from .session import NormStats, Violation

PASS, FAIL, NOT_JUDGED, NOT_CHECKED, NOT_CLAIMED = "pass", "fail", "not judged", "not checked", "n/a"
#: Training and evaluation limits, seconds, each on 8xH100 SXM.
TRAIN_LIMIT_S = 600.0
EVAL_LIMIT_S = 600.0
#: The challenge's hardware.
CHALLENGE_GPU = "H100"
CHALLENGE_WORLD = 8
#: Phases after the training loop (the training clock may still run in those before eval).
POST_TRAIN_PHASES = ("pre_quant", "quantize", "compress")
#: Validation tokens in documents also found in training above which the overlap fails the run
#: (boilerplate repeated across a crawl is a trace; a split bug, like CaseOps' 80%, is not).
OVERLAP_FAIL_FRACTION = 0.01

TITLES = {
    "causality": "C1 causal: prediction depends on artifact + prefix only (flip test on disk)",
    "audit_reproduces": "the audit is the run: repeat reproduces every score; artifact the same in every run",
    "normalization": "C2 full normalized distribution at every scored row (session-computed NLL)",
    "targets_after_scoring": "a window's targets are read only once it is scored",
    "score_before_update": "C3 score before update (eval ledger)",
    "scored_once": "C4 every target scored exactly once",
    "no_validation_before_scoring": "no validation data outside the eval session (reads, file opens)",
    "document_overlap": "no validation document in the training shards",
    "document_independence": "declared document-independent eval: no score moves when another document changes",
    "train_data_after_clock": "training data used only inside the training clock (never at eval)",
    "artifact_cap": "artifact <= 16,000,000 bytes (code + model)",
    "train_clock": "train <= 600 s on 8xH100",
    "eval_clock": "eval (everything after training's artifact: decode, warm-up, scoring) <= 600 s on 8xH100",
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

    flip: the flip test; reproduce: repeat-vs-report and artifact identity; runs: per-run
    summaries; tracks: each plugin's declared legality track; norm: normalization evidence of
    every run (norm_report_rows: the reported run's rows); ledgers: ``(label, LedgerAudit)``;
    violations: legality events the sessions recorded; coverage: the reported run's per-target
    counts; reads / unrecorded_loads: declared and undeclared validation loads; opens: shard
    file opens (audit hook); overlap: train/val documents; build_split: the dataset build's own
    split check (``manifest.json`` ``split_check``, text hashes); document_independent / exempt: the
    recipe's ``[check]`` declarations; bytes; clocks and the hardware they ran on.
    """

    flip: Optional[FlipReport] = None
    flip_skipped: Optional[str] = None
    reproduce: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    tracks: dict[str, str] = field(default_factory=dict)
    norm: Optional[NormStats] = None
    norm_report_rows: int = 0
    adapter: Optional[str] = None
    vocab_size: int = 0
    ledgers: list[tuple[str, LedgerAudit]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    coverage: Optional[np.ndarray] = None
    reads: list[dict[str, Any]] = field(default_factory=list)
    unrecorded_loads: list[dict[str, Any]] = field(default_factory=list)
    opens: list[dict[str, Any]] = field(default_factory=list)
    overlap: Optional[Overlap] = None
    overlap_skipped: Optional[str] = None
    build_split: Optional[dict[str, Any]] = None
    document_independent: bool = False
    exempt: dict[str, str] = field(default_factory=dict)
    scope_note: Optional[str] = None
    stash_dropped: list[str] = field(default_factory=list)
    code_bytes: Optional[int] = None
    model_bytes: Optional[int] = None
    cap_bytes: int = CAP_BYTES
    train_seconds: Optional[float] = None
    train_limit_s: float = TRAIN_LIMIT_S
    post_train_seconds: Optional[float] = None
    eval_seconds: Optional[float] = None
    audit_seconds: Optional[float] = None
    device: str = "cpu"
    world_size: int = 1


def judged_hardware(device: str, world_size: int) -> bool:
    """True on the challenge's hardware: 8 processes on H100 GPUs."""
    return CHALLENGE_GPU in (device or "") and int(world_size) == CHALLENGE_WORLD


# ---------------------------------------------------------------------------------------------


def rule_causality(f: Facts) -> Rule:
    """C1 from the flip test on disk (and the plugins' own declarations)."""
    declared = sorted(n for n, t in f.tracks.items() if t == "not-causal")
    decl = f"; declared not-causal: {', '.join(declared)}" if declared else ""
    if f.flip is None or not f.flip.probes:
        why = f.flip_skipped or "no cut in the stream"
        return Rule("causality", FAIL if declared else NOT_CHECKED, f"flip test not run: {why}{decl}")
    rep = f.flip
    d = rep.as_dict()
    checked = sum(p.checked for p in rep.probes)
    rows = sum(p.row_checked for p in rep.probes)
    tol = rep.tolerance
    bad = [p for p in rep.probes if p.moved or p.aborted is not None]
    if bad:
        worst = max(bad, key=lambda p: (p.aborted is None, p.max_delta))
        c = worst.cut
        if worst.aborted is not None and worst.moved == 0:
            ev = f"cut j={c.j} ({c.kind}, geometry {c.geometry}): run aborted: {worst.aborted}"
        elif worst.moved:
            ev = (f"t={worst.worst_t} moved by {worst.max_delta:.3g} nats when tokens >= {c.j} changed on disk "
                  f"({c.kind} cut, geometry {c.geometry})")
        return Rule("causality", FAIL, f"{ev}; {len(bad)}/{len(rep.probes)} cuts violate "
                                       f"(tol cap {tol.get('cap'):.0e}){decl}", d)
    if declared:
        return Rule("causality", FAIL, f"no score moved, but{decl.lstrip(';')}; {_pass_text(rep, checked, rows)}", d)
    return Rule("causality", PASS, _pass_text(rep, checked, rows), d)


def _doc_text(p: Any) -> str:
    return (f"document independence: t={p.doc_worst_t} moved by {p.doc_max_delta:.3g} nats when another "
            f"document changed (cut j={p.cut.j}, {p.cut.kind})")


def _pass_text(rep: FlipReport, checked: int, rows: int) -> str:
    kinds = ",".join(sorted({p.cut.kind for p in rep.probes}))
    geos = ", ".join(f"{g}={w}" for g, w in rep.geometries.items())
    t = rep.tolerance
    return (f"{len(rep.probes)} runs on disk ({kinds}; windows/batch {geos}), {rep.flips} flipped positions, seed "
            f"{rep.seed}: 0 of {checked:,} earlier scores and {rows} full rows moved (tol per target "
            f"<= {t.get('cap'):.0e}, median {t.get('median') or 0:.1e})")


def rule_audit_reproduces(f: Facts) -> Rule:
    """The repeat run reproduces the reported run's per-target NLL within the cap; the artifact
    payload is the same in every run, flipped ones included; no audit run failed."""
    r = f.reproduce
    if not r:
        return Rule("audit_reproduces", NOT_CHECKED, "no repeat of the reported run", {})
    if r.get("failed_runs"):
        return Rule("audit_reproduces", FAIL, f"audit run(s) {', '.join(r['failed_runs'][:5])} failed", r)
    if r.get("max_diff") is None:
        return Rule("audit_reproduces", FAIL, f"the repeat did not score the stream: {r.get('error')}", r)
    if r.get("over_cap"):
        return Rule("audit_reproduces", FAIL,
                    f"the repeat of the reported run moved {r['over_cap']:,} scores beyond {r['cap']:.0e} nats "
                    f"(max {r['max_diff']:.3g}, first t={r['first_over']}): the run is not what the audit sees", r)
    if r.get("artifact_differs"):
        return Rule("audit_reproduces", FAIL,
                    f"artifact differs from the reported run's in {len(r['artifact_differs'])} of {r['artifacts']} "
                    f"runs ({', '.join(r['artifact_differs'][:4])}): it depends on the validation data on disk", r)
    return Rule("audit_reproduces", PASS,
                f"repeat = reported run on every target (max diff {r['max_diff']:.1e} <= {r['cap']:.0e}); same "
                f"artifact payload in all {r['artifacts']} runs", r)


def rule_normalization(f: Facts) -> Rule:
    """C2: the session computed every scored NLL from a full row; short or non-finite rows fail."""
    n = f.norm or NormStats()
    d = {**n.as_dict(), "reported_run_rows": f.norm_report_rows, "adapter": f.adapter}
    bad = [v for v in f.violations if v.kind in ("short_rows", "non_finite")]
    if bad:
        return Rule("normalization", FAIL, f"{bad[0].message} ({len(bad)} event(s))", d)
    if not n.rows_checked:
        return Rule("normalization", NOT_CHECKED, "no row was scored", d)
    return Rule("normalization", PASS,
                f"{f.norm_report_rows:,} rows in the reported run ({n.rows_checked:,} in all runs): NLL = "
                f"logsumexp - z[y] computed by the session over all {n.vocab_size} ids", d)


def rule_targets_after_scoring(f: Facts) -> Rule:
    """Targets read from a batch before it was scored."""
    bad = [v for v in f.violations if v.kind == "read_unscored_targets"]
    if bad:
        return Rule("targets_after_scoring", FAIL, f"{bad[0].message} ({len(bad)} event(s))",
                    {"events": [v.message for v in bad[:10]]})
    if not f.ledgers:
        return Rule("targets_after_scoring", NOT_CHECKED, "no eval session ran", {})
    return Rule("targets_after_scoring", PASS, "no batch's targets read before it was scored, in any run", {})


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
    if f.coverage is None:
        return Rule("scored_once", NOT_CHECKED, "no coverage record", {})
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


def rule_no_validation(f: Facts) -> Rule:
    """Validation reads outside the eval session: declared reads, unrecorded loads, file opens of
    validation shards (any phase, any run), declared trains-on-val."""
    parts = []
    groups = Counter((r.get("phase", "?"), r.get("plugin") or _plugin_from_reason(r.get("reason", ""))) for r in f.reads)
    for (phase, plugin), k in groups.items():
        parts.append(f"{k} read{'s' if k > 1 else ''} of validation data in phase {phase}: {plugin}")
    loads = Counter((r.get("phase", "?"), r.get("plugin", "?")) for r in f.unrecorded_loads)
    for (phase, plugin), k in loads.items():
        parts.append(f"{k} unrecorded load{'s' if k > 1 else ''} of the validation stream in phase {phase}: {plugin}")
    opens = Counter((e.get("phase", "?"), e.get("plugin") or "?") for e in f.opens
                    if e.get("kind") == "val" and not e.get("sanctioned"))
    for (phase, plugin), k in opens.items():
        parts.append(f"{k} open{'s' if k > 1 else ''} of a validation shard file outside the eval session in phase "
                     f"{phase}: {plugin}")
    declared = sorted(n for n, t in f.tracks.items() if t == "trains-on-val")
    if declared:
        parts.append(f"declared trains-on-val: {', '.join(declared)}")
    d = {"reads": f.reads, "unrecorded_loads": f.unrecorded_loads, "declared": declared,
         "opens": [e for e in f.opens if e.get("kind") == "val" and not e.get("sanctioned")][:20]}
    if parts:
        return Rule("no_validation_before_scoring", FAIL, "; ".join(parts), d)
    n_open = sum(1 for e in f.opens if e.get("kind") == "val")
    return Rule("no_validation_before_scoring", PASS,
                f"no read or file open of validation data outside the eval session ({n_open} sanctioned opens by the "
                f"session's own load); no plugin declares trains-on-val", d)


def _plugin_from_reason(reason: str) -> str:
    """Reads recorded by a plain run (result.json) have no plugin name; plugins start their
    reason with it by convention ("prequant-ttt: ...")."""
    head = (reason or "").split(":")[0].strip()
    return head or "?"


def _build_split_text(b: Optional[dict[str, Any]]) -> str:
    """The dataset build's split check, as evidence."""
    if not b:
        return ""
    kept = 0 if b.get("train_dropped") else b.get("shared", 0)
    return (f"; the build's split check ({b.get('hash', 'text hashes')}): {b.get('shared', 0)} of "
            f"{b.get('val_docs', 0):,} validation documents repeated in training, "
            f"{b.get('train_dropped', 0)} training documents left out, {kept} kept")


def rule_document_overlap(f: Facts) -> Rule:
    """Validation documents also present in the training shards (token hashes over the shards,
    and the dataset build's own text-level split check where its manifest has one)."""
    build = _build_split_text(f.build_split)
    if f.overlap is None:
        b = f.build_split
        if b and b.get("shared") and not b.get("train_dropped"):
            return Rule("document_overlap", FAIL, (f.overlap_skipped or "documents not hashed") + build,
                        {"build_split": b})
        if b:
            return Rule("document_overlap", PASS, "the shards were not hashed" + build, {"build_split": b})
        return Rule("document_overlap", NOT_CHECKED, f.overlap_skipped or "documents not hashed", {})
    o = f.overlap
    d = {**o.as_dict(), "fail_fraction": OVERLAP_FAIL_FRACTION, "build_split": f.build_split}
    frac = o.shared_tokens / max(1, o.val_tokens)
    if o.shared:
        ev = (f"{o.shared:,} of {o.val_docs:,} validation documents ({o.shared_tokens:,} of {o.val_tokens:,} tokens, "
              f"{100 * frac:.2f}%) are also in the {o.shards} training shards (first: document {o.examples[0]})")
        if frac > OVERLAP_FAIL_FRACTION:
            return Rule("document_overlap", FAIL, ev + build, d)
        return Rule("document_overlap", PASS,
                    ev + f": under {100 * OVERLAP_FAIL_FRACTION:g}% of the tokens" + build, d)
    return Rule("document_overlap", PASS,
                f"{o.val_docs:,} validation documents, none among the {o.train_docs:,} documents of {o.shards} "
                f"training shards (BLAKE2b of token ids)" + build, d)


def rule_document_independence(f: Facts) -> Rule:
    """For recipes that declare document-independent evaluation: no score of another document
    moved in any cut (both directions: later documents included)."""
    if not f.document_independent:
        return Rule("document_independence", NOT_CLAIMED, "the recipe does not declare document-independent eval", {})
    if f.flip is None or not f.flip.probes:
        return Rule("document_independence", NOT_CHECKED, "no flip run", {})
    bad = [p for p in f.flip.probes if p.doc_moved]
    checked = sum(p.doc_checked for p in f.flip.probes)
    if bad:
        return Rule("document_independence", FAIL, _doc_text(bad[0]) + f"; {len(bad)} cuts", {})
    return Rule("document_independence", PASS,
                f"{checked:,} scores of unchanged documents compared over {len(f.flip.probes)} cuts: none moved", {})


def rule_train_data_after_clock(f: Facts) -> Rule:
    """Training data at eval time fails; after the training loop, it must fit the training clock."""
    at_eval = [e for e in f.opens if e.get("kind") == "train" and e.get("phase") in ("eval", "load")]
    post = [e for e in f.opens if e.get("kind") == "train" and e.get("phase") in POST_TRAIN_PHASES
            and e.get("run") == "report"]
    d = {"eval_opens": at_eval[:10], "post_train_opens": post[:10], "train_seconds": f.train_seconds,
         "post_train_seconds": f.post_train_seconds, "limit_s": f.train_limit_s}
    if at_eval:
        e = at_eval[0]
        return Rule("train_data_after_clock", FAIL,
                    f"{len(at_eval)} open(s) of training shards at eval time ({e.get('plugin') or '?'}, {e.get('file')})", d)
    if not post:
        return Rule("train_data_after_clock", PASS, "no training data opened after the training loop", d)
    phases = sorted({e["phase"] for e in post})
    used = (f.train_seconds or 0.0) + (f.post_train_seconds or 0.0)
    ev = (f"training data opened after the loop ({', '.join(phases)}): loop {f.train_seconds or 0:.1f} s + "
          f"post-training {f.post_train_seconds or 0:.1f} s = {used:.1f} s")
    if not judged_hardware(f.device, f.world_size):
        return Rule("train_data_after_clock", NOT_JUDGED, ev + f" on {f.device} x{f.world_size}: judged on 8xH100 only", d)
    ok = used <= f.train_limit_s
    return Rule("train_data_after_clock", PASS if ok else FAIL, ev + f" {'<=' if ok else '>'} {f.train_limit_s:.0f} s", d)


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


def _not_checked_fails(rule: Rule, exempt: dict[str, str]) -> Rule:
    """A rule not checked fails, unless the recipe declares why it cannot apply."""
    if rule.verdict != NOT_CHECKED:
        return rule
    if rule.id in exempt:
        return Rule(rule.id, NOT_CHECKED, f"{rule.evidence} (declared: {exempt[rule.id]})", rule.details)
    return Rule(rule.id, FAIL, f"not checked: {rule.evidence} (declare why in [check.exempt] if it cannot apply)",
                rule.details)


def decide(f: Facts) -> list[Rule]:
    """Every rule's verdict, in table order."""
    rules = [
        rule_causality(f),
        rule_audit_reproduces(f),
        rule_normalization(f),
        rule_targets_after_scoring(f),
        rule_score_before_update(f),
        rule_scored_once(f),
        rule_no_validation(f),
        rule_document_overlap(f),
        rule_document_independence(f),
        rule_train_data_after_clock(f),
        rule_artifact_cap(f),
        _clock("train_clock", "train", f.train_seconds, TRAIN_LIMIT_S, f),
        _clock("eval_clock", "eval", f.eval_seconds, EVAL_LIMIT_S, f),
    ]
    return [_not_checked_fails(r, f.exempt) for r in rules]
