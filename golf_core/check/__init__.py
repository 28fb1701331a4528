"""``golf check``: an automatic legality audit (techniques.md §0.1, §11; pg_core.md §1).

Modules, one concept each:

* ``stream``    StreamContext: a run context whose validation stream is a given tensor
* ``session``   AuditSession: the eval session with the logit tap and legality-error records
* ``probes``    where the flip test flips a token
* ``flip``      the flip test over a black box ``E(stream) -> Outcome``
* ``sweep``     the vocabulary sweep (normalization of what is scored)
* ``ledger``    score-before-update from the eval ledger
* ``posttrain`` the post-training pipeline as that black box
* ``audit``     the rules and their verdicts
* ``report``    the table and ``compliance.json``
* ``api``       ``check_recipe`` / ``check_run_dir``
"""
from __future__ import annotations

from .api import TINY_CHECK_OVERRIDES, CheckOptions, check_recipe, check_run_dir
from .audit import FAIL, NOT_CHECKED, NOT_JUDGED, PASS, Facts, Rule, decide
from .flip import FlipReport, Outcome, ProbeResult, run_flip
from .ledger import LedgerAudit, audit_ledger, audit_ledgers
from .probes import Probe, choose_probes
from .report import COMPLIANCE, CheckReport
from .session import AuditSession, LogitTap, NormStats
from .stream import StreamContext
from .sweep import SweepResult, vocab_sweep

__all__ = [
    "TINY_CHECK_OVERRIDES", "CheckOptions", "check_recipe", "check_run_dir", "FAIL", "NOT_CHECKED", "NOT_JUDGED",
    "PASS", "Facts", "Rule", "decide", "FlipReport", "Outcome", "ProbeResult", "run_flip", "LedgerAudit",
    "audit_ledger", "audit_ledgers", "Probe", "choose_probes", "COMPLIANCE", "CheckReport", "AuditSession",
    "LogitTap", "NormStats", "StreamContext", "SweepResult", "vocab_sweep",
]
