"""The audited eval session: an EvalSession that keeps evidence while an adapter scores.

* Legality errors of the core session (a target scored twice, tokens asked for before their
  targets were scored) are recorded with their kind before they propagate.
* A logit tap on the scored model records the last output of ``compute_logits`` /
  ``forward_logits``. At every ``score`` call whose tapped logits map onto the batch's scored
  positions (shape ``[B, T, V]`` or ``[n_scored, V]``), the reported NLL is compared with
  ``logsumexp(z) - z[y]`` over the whole vocabulary (C2: a full normalized distribution). When
  they agree the row is the adapter's own distribution, and for watched targets the full
  log-softmax row is kept (the flip test compares ``log p`` of the original token there).
  Adapters that compute their logits elsewhere (SLOT's detached head) leave rows unmapped:
  normalization is then not checkable from the tap (see ``golf_core.check.sweep``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch

from ..errors import LegalityError
from ..eval.session import EvalSession, WindowBatch

#: Reported and recomputed NLL agree when within this many nats (times max(1, |nll|)).
NORM_TOL = 1e-4


class LogitTap:
    """Wraps a model's ``compute_logits`` and ``forward_logits`` (instance attributes) so the
    last logits they returned can be read back (detached) at scoring time."""

    def __init__(self, model: Any):
        self.last: Optional[torch.Tensor] = None
        self.attached: list[str] = []
        for name in ("compute_logits", "forward_logits"):
            fn = getattr(model, name, None)
            if callable(fn):
                setattr(model, name, self._wrap(fn))
                self.attached.append(name)

    def _wrap(self, fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def tapped(*args: Any, **kwargs: Any) -> torch.Tensor:
            out = fn(*args, **kwargs)
            if isinstance(out, torch.Tensor):
                self.last = out.detach()
            return out

        return tapped

    def take(self) -> Optional[torch.Tensor]:
        """The last logits, cleared."""
        out, self.last = self.last, None
        return out


@dataclass
class NormStats:
    """What the tap established about normalization at the scored rows.

    rows_ok: rows whose reported NLL is -log softmax of the tapped logits over all columns;
    rows_bad: rows where they disagree (the adapter transformed the logits, or did not
    normalize); rows_unmapped: scored rows with no tapped logits of a matching shape;
    min_cols: the fewest logit columns seen (must cover the vocabulary); max_err / worst: the
    largest disagreement and where (target index, reported, recomputed).
    """

    rows_ok: int = 0
    rows_bad: int = 0
    rows_unmapped: int = 0
    min_cols: Optional[int] = None
    max_err: float = 0.0
    worst: Optional[tuple[int, float, float]] = None

    def merge(self, other: "NormStats") -> "NormStats":
        """The stats of two ranks together."""
        cols = [c for c in (self.min_cols, other.min_cols) if c is not None]
        worst = self.worst if self.max_err >= other.max_err else other.worst
        return NormStats(self.rows_ok + other.rows_ok, self.rows_bad + other.rows_bad,
                         self.rows_unmapped + other.rows_unmapped, min(cols) if cols else None,
                         max(self.max_err, other.max_err), worst)


@dataclass
class Violation:
    """A legality error raised by the session: kind ``scored_twice`` or ``update_before_score``."""

    kind: str
    message: str


class AuditSession(EvalSession):
    """An EvalSession that records legality errors, checks the reported NLL against tapped
    logits, and keeps the log-softmax rows of ``watch`` targets (target indices)."""

    def __init__(self, *args: Any, tap: Optional[LogitTap] = None, watch: Iterable[int] = (),
                 norm_tol: float = NORM_TOL, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tap = tap
        self.watch = {int(t) for t in watch}
        self.watch_rows: dict[int, np.ndarray] = {}
        self.norm = NormStats()
        self.norm_tol = float(norm_tol)
        self.violations: list[Violation] = []

    def score(self, batch: WindowBatch, nll: torch.Tensor) -> None:
        """EvalSession.score, recording a double score before it propagates, then the tap check."""
        try:
            super().score(batch, nll)
        except LegalityError as e:
            self.violations.append(Violation("scored_twice", str(e)))
            raise
        self._check_rows(batch, nll)

    def update_tokens(self, chunk: Any) -> torch.LongTensor:
        """EvalSession.update_tokens, recording a refused update before it propagates."""
        try:
            return super().update_tokens(chunk)
        except LegalityError as e:
            self.violations.append(Violation("update_before_score", str(e)))
            raise

    # -- the tap check ---------------------------------------------------------------------

    def _check_rows(self, batch: WindowBatch, nll: torch.Tensor) -> None:
        targets = batch.scored_targets
        n = int(targets.shape[0])
        if n == 0:
            return
        z = self.tap.take() if self.tap is not None else None
        mask = batch._mask_np  # noqa: SLF001 - same package family: the batch's scored positions
        rows = None
        if z is not None:
            if z.dim() == 3 and tuple(z.shape[:2]) == tuple(mask.shape):
                rows = z[torch.from_numpy(mask).to(z.device)]
            elif z.dim() == 2 and z.shape[0] == n:
                rows = z
        if rows is None:
            self.norm.rows_unmapped += n
            return
        vals = torch.as_tensor(nll).detach()
        vals = vals[torch.from_numpy(mask).to(vals.device)] if vals.dim() == 2 else vals.reshape(-1)
        vals = vals.to("cpu", torch.float64)
        y = batch.y[torch.from_numpy(mask).to(batch.y.device)].to(rows.device)
        with torch.no_grad():
            z64 = rows.to(torch.float64)
            lse = torch.logsumexp(z64, dim=-1)
            recomputed = (lse - z64.gather(1, y.view(-1, 1)).squeeze(1)).cpu()
        err = (vals - recomputed).abs()
        ok = err <= self.norm_tol * torch.clamp(vals.abs(), min=1.0)
        cols = int(rows.shape[-1])
        self.norm.min_cols = cols if self.norm.min_cols is None else min(self.norm.min_cols, cols)
        self.norm.rows_ok += int(ok.sum())
        self.norm.rows_bad += int((~ok).sum())
        i = int(torch.argmax(err))
        if float(err[i]) > self.norm.max_err:
            self.norm.max_err = float(err[i])
            self.norm.worst = (int(targets[i]), float(vals[i]), float(recomputed[i]))
        if self.watch:
            for k in np.nonzero(np.isin(targets, list(self.watch)))[0]:
                if bool(ok[k]):
                    self.watch_rows[int(targets[k])] = (z64[k] - lse[k]).cpu().numpy()
