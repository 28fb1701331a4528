"""``golf check``: an automatic legality audit (techniques.md §0.1, §11; pg_core.md §1).

Modules, one concept each:

* ``opens``     the audit hook: file opens of validation and training shards
* ``stream``    StreamContext: a run context that records and attributes validation loads
* ``session``   AuditSession: the eval session with watched rows; normalization evidence
* ``posttrain`` the post-training pipeline (pre-quant, artifact, decode, scoring) of one run
* ``worker``    one audit process: post-training runs, each on its own data folder
* ``disk``      data folders holding a (flipped) validation stream on disk
* ``probes``    where the flip test cuts and flips
* ``flip``      per-target tolerance and the comparison of a cut's run with its base
* ``ledger``    score-before-update from the eval ledger
* ``overlap``   train/validation document overlap (hashes)
* ``audit``     the rules and their verdicts
* ``report``    the table and ``compliance.json``
* ``api``       ``check_recipe`` / ``check_run_dir``
"""
from __future__ import annotations

from .api import TINY_CHECK_OVERRIDES, CheckOptions, check_recipe, check_run_dir
from .audit import FAIL, NOT_CHECKED, NOT_CLAIMED, NOT_JUDGED, PASS, Facts, Rule, decide
from .flip import FlipReport, Outcome, ProbeResult, compare, per_target_tolerance
from .ledger import LedgerAudit, audit_ledger, audit_ledgers
from .overlap import document_overlap
from .probes import Cut, boundaries, plan_cuts
from .report import COMPLIANCE, CheckReport
from .session import AuditSession, NormStats
from .stream import StreamContext

__all__ = [
    "TINY_CHECK_OVERRIDES", "CheckOptions", "check_recipe", "check_run_dir", "FAIL", "NOT_CHECKED", "NOT_CLAIMED",
    "NOT_JUDGED", "PASS", "Facts", "Rule", "decide", "FlipReport", "Outcome", "ProbeResult", "compare",
    "per_target_tolerance", "LedgerAudit", "audit_ledger", "audit_ledgers", "document_overlap", "Cut", "boundaries",
    "plan_cuts", "COMPLIANCE", "CheckReport", "AuditSession", "NormStats", "StreamContext",
]
