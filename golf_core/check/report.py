"""The check's report: the table ``golf check`` prints and ``compliance.json``."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from .audit import FAIL, Rule

COMPLIANCE = "compliance.json"


@dataclass
class CheckReport:
    """The rules' verdicts for one recipe or run directory, plus the raw evidence."""

    target: str
    mode: str
    rules: list[Rule]
    evidence: dict[str, Any] = field(default_factory=dict)
    out_dir: Optional[Path] = None

    @property
    def failed(self) -> list[str]:
        """Ids of the rules that failed."""
        return [r.id for r in self.rules if r.verdict == FAIL]

    @property
    def passed(self) -> bool:
        """True when no rule failed."""
        return not self.failed

    def rule(self, rule_id: str) -> Rule:
        """The row of one rule."""
        return next(r for r in self.rules if r.id == rule_id)

    def as_dict(self) -> dict[str, Any]:
        """What compliance.json holds."""
        return {"golf_core": __version__, "target": self.target, "mode": self.mode, "passed": self.passed,
                "failed": self.failed, "rules": [r.as_dict() for r in self.rules], **self.evidence}

    def write(self, out_dir: Path) -> Path:
        """Write ``compliance.json`` into ``out_dir``; return its path."""
        from ..rundir import write_json_atomic

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / COMPLIANCE
        write_json_atomic(path, self.as_dict())
        self.out_dir = out_dir
        return path

    def table(self, width: int = 120) -> str:
        """The table: one row per rule (rule, verdict, evidence wrapped to ``width``)."""
        w_rule = max(len(r.id) for r in self.rules)
        w_verdict = max(len(r.verdict) for r in self.rules)
        indent = w_rule + w_verdict + 4
        wrap = max(40, width - indent)
        lines = [f"golf check: {self.target} ({self.mode})",
                 f"{'rule':<{w_rule}}  {'verdict':<{w_verdict}}  evidence",
                 f"{'-' * w_rule}  {'-' * w_verdict}  {'-' * min(wrap, 60)}"]
        for r in self.rules:
            chunks = textwrap.wrap(r.evidence, wrap) or [""]
            lines.append(f"{r.id:<{w_rule}}  {r.verdict.upper() if r.verdict == FAIL else r.verdict:<{w_verdict}}  {chunks[0]}")
            lines += [" " * indent + c for c in chunks[1:]]
        verdict = "FAILED: " + ", ".join(self.failed) if self.failed else "passed: no rule failed"
        lines.append(verdict)
        return "\n".join(lines)
