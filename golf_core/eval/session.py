"""The evaluation session: the only holder of the validation stream during scoring.

Scorers and eval-time adaptation plugins (``golf_eval_adapt``) never see the raw validation
tensor. They iterate ``session.windows()`` (or ``session.chunks(C)`` and each chunk's
``windows()``), left to right, get ``WindowBatch`` objects, run the model, and hand back the
FULL logit (or log-probability) row of every scored position with ``session.score(batch,
logits)``. The session computes each target's NLL itself, ``logsumexp(z) - z[y]`` over every
column (so what is scored is always a normalized distribution over the whole vocabulary; a row
with fewer columns than the vocabulary, or a non-finite NLL, is refused and recorded).

A window's scored targets are handed out only once that window is scored: ``batch.y`` read
before ``session.score(batch, ...)`` is recorded as a ``read_unscored_targets`` violation (the
run goes on; ``golf check`` fails it). ``batch.context_y`` gives the targets of the context
positions (they are the window's own inputs, ``x[i + 1]``), zero at scored positions. Tokens to
adapt on come from ``session.update_tokens(chunk)``, which hands out targets that were already
scored and records the score/update ledger. Every target is scored exactly once: scoring one
twice raises ``LegalityError``, as does asking for tokens of an unscored target. ``violations``
lists every legality event (kind, message) the session saw.

Document-wise adapters (#1530's LoRA TTT) take ``session.documents()`` (BOS-delimited, see
``golf_core.eval.documents``), declare the order they evaluate them in with
``session.declare_order(groups)`` before the first score (an ``order`` ledger event, by which
``golf check`` judges them), and score arbitrary windows with ``session.span_batch(...)``;
``update_tokens(range, local=True)`` adapts on this rank's own scores without a collective.

Target ``i`` is token ``i + 1`` of the stream (see ``golf_core.eval.windows``). Its bytes come
from the byte tables (``luts``), or, for a CaseOps stream, from ``token_bytes``, the byte sidecar
aligned with the stream (target ``i`` counts ``token_bytes[i + 1]``). NLL and bytes are
summed in float64 and, when torch.distributed is initialized, all-reduced with SUM in ``result()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from golf_core.data.tokenizer import ByteLuts
from golf_core.errors import GolfError, LegalityError
from golf_core.eval.bpb import EvalResult
from golf_core.eval.documents import Document, find_documents, order_ranks
from golf_core.eval.windows import WindowSchedule
from golf_core.scripted import AUDITED, IN_SCRIPT

DEFAULT_BATCH_SEQS = 32


@dataclass
class WindowBatch:
    """A batch of consecutive windows.

    x, y: int64 ``[B, seq_len]`` on the session's device (zero-padded past a tail window's end);
    ``y`` is the batch's targets, read before the batch is scored only at the price of a recorded
    violation (see the module docstring); ``context_y``: ``y`` at the context positions, 0 at the
    scored ones; score_mask: bool ``[B, seq_len]`` on the device, True where the position's target is scored
    by this window; target_pos: int64 ``[B, seq_len]`` on the CPU, the global target index of each
    position (-1 in padding); window_starts / window_index: int64 ``[B]`` on the CPU.
    """

    x: torch.Tensor
    _y: torch.Tensor = field(repr=False)
    score_mask: torch.Tensor
    target_pos: torch.Tensor
    window_starts: torch.Tensor
    window_index: torch.Tensor
    _mask_np: np.ndarray = field(repr=False, default=None)
    _targets_np: np.ndarray = field(repr=False, default=None)
    _session: Any = field(repr=False, default=None)
    scored: bool = False

    @property
    def y(self) -> torch.Tensor:
        """The targets; before the batch is scored, reading them is a recorded violation."""
        if AUDITED and not self.scored and self._session is not None:
            self._session._violation("read_unscored_targets",
                                     f"batch.y of windows {int(self.window_index[0])}..{int(self.window_index[-1])} "
                                     f"read before they were scored")
        return self._y

    @property
    def context_y(self) -> torch.Tensor:
        """The targets of the context (not scored) positions, 0 at scored and padding positions."""
        return torch.where(self.score_mask | (self.target_pos < 0).to(self.score_mask.device),
                           torch.zeros_like(self._y), self._y)

    @property
    def num_scored(self) -> int:
        """Number of targets this batch scores."""
        return int(self._targets_np.shape[0])

    @property
    def scored_targets(self) -> np.ndarray:
        """Global indices of the scored targets, in ``score_mask`` order (row-major)."""
        return self._targets_np


@dataclass(frozen=True)
class Chunk:
    """A group of consecutive windows for score-first adaptation (#1413's chunks).

    index: the chunk number ``c`` (windows whose first scored target lies in
    ``[c*C, (c+1)*C)``, the last chunk taking the remainder); token_start/token_end: the nominal
    range ``[c*C, min((c+1)*C, N))``; target_lo/target_hi: the targets its windows actually score
    (equal to the nominal range when C is a multiple of the stride); is_last: no update should
    follow it.
    """

    index: int
    num_chunks: int
    token_start: int
    token_end: int
    target_lo: int
    target_hi: int
    window_lo: int
    window_hi: int
    is_last: bool
    session: "EvalSession" = field(repr=False, compare=False, default=None)

    def windows(self, batch_seqs: Optional[int] = None) -> Iterator[WindowBatch]:
        """This rank's contiguous share of the chunk's windows, in batches, left to right."""
        return self.session._iter_windows(self.window_lo, self.window_hi, batch_seqs)

    @property
    def targets(self) -> tuple[int, int]:
        """``(target_lo, target_hi)``."""
        return self.target_lo, self.target_hi


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


class EvalSession:
    """Scores one validation stream window by window, keeping float64 sums, a per-target NLL and
    coverage array, and the score/update ledger (see the module docstring).

    ``schedule`` is a ``WindowSchedule`` over ``len(val_tokens) - 1`` targets, or the eval
    sequence length (then ``stride`` completes it). ``rank``/``world_size`` default to
    torch.distributed's when it is initialized, else 0/1. ``device`` is where batches are put.
    ``batch_seqs`` is the default windows per batch. Setting ``progress_desc`` (a string) shows a
    progress display (golf_core.progress) on rank 0 while scoring. ``token_bytes`` (one count
    per stream token: a CaseOps byte sidecar) replaces the byte tables' counts.
    """

    progress_desc: Optional[str] = None
    #: Wall seconds of the adapter's scoring loop (set by the run around ``golf_eval_adapt``).
    adapt_seconds: Optional[float] = None

    def __init__(self, val_tokens: torch.Tensor, luts: ByteLuts, schedule: Union[WindowSchedule, int],
                 stride: Optional[int] = None, *, rank: Optional[int] = None, world_size: Optional[int] = None,
                 device: Union[str, torch.device] = "cpu", batch_seqs: int = DEFAULT_BATCH_SEQS,
                 token_bytes: Optional[Any] = None):
        tokens = torch.as_tensor(val_tokens).reshape(-1).to("cpu", torch.int64)
        if tokens.numel() < 2:
            raise GolfError(f"validation stream has {tokens.numel()} tokens; need at least 2")
        d = _dist()
        self.rank = int(rank if rank is not None else (d.get_rank() if d else 0))
        self.world_size = int(world_size if world_size is not None else (d.get_world_size() if d else 1))
        if not 0 <= self.rank < self.world_size:
            raise GolfError(f"rank {self.rank} outside world size {self.world_size}")
        self.device = torch.device(device)
        self.batch_seqs = max(1, int(batch_seqs))
        self._tokens = tokens
        self.total_targets = tokens.numel() - 1
        if isinstance(schedule, WindowSchedule):
            if schedule.total_targets != self.total_targets or stride not in (None, schedule.stride):
                raise GolfError(f"{schedule!r} does not fit a stream of {self.total_targets} targets "
                                f"(stride {stride})")
            self.schedule = schedule
        else:
            self.schedule = WindowSchedule(self.total_targets, int(schedule), stride)
        self.seq_len = self.schedule.seq_len
        self.stride = self.schedule.stride
        tok = tokens.numpy()
        prev, tgt = tok[:-1], tok[1:]
        if luts.size <= int(tok.max()):
            raise GolfError(f"validation token id {int(tok.max())} is outside the byte tables ({luts.size} ids)")
        if token_bytes is not None:
            counts = np.asarray(token_bytes).reshape(-1)
            if counts.shape[0] != tok.shape[0]:
                raise GolfError(f"byte sidecar has {counts.shape[0]} counts for a stream of {tok.shape[0]} tokens")
            self._bytes = counts[1:].astype(np.int64)
        else:
            self._bytes = luts.base_bytes[tgt].astype(np.int16) + (
                luts.has_leading_space[tgt] & ~luts.is_boundary[prev]).astype(np.int16)
        self._nll = np.full(self.total_targets, np.nan, dtype=np.float64)
        self._coverage = np.zeros(self.total_targets, dtype=np.uint8)
        self.loss_sum = 0.0
        self.token_count = 0
        self.byte_count = 0
        self.state_version = 0
        self.ledger: list[dict] = []
        self.vocab_size = int(luts.size)
        if AUDITED:  # what only `golf check` reads (a script is never audited: the audit reruns golf)
            self.violations: list[tuple[str, str]] = []
            self.rows_checked = 0
            self.max_abs_lse = 0.0
            self.watch: frozenset[int] = frozenset()
            self.watch_rows: dict[int, np.ndarray] = {}
        self._progress = None
        self._documents: Optional[tuple[int, list[Document]]] = None

    # -- construction helpers --------------------------------------------------------------

    @classmethod
    def from_context(cls, ctx: Any, val_tokens: torch.Tensor) -> "EvalSession":
        """A session for a run: ``[eval] seq_len``/``stride``, ``ctx.luts``, rank, world size, device,
        and the baseline's eval batch (``eval_batch_seqs``)."""
        ev = ctx.recipe.eval
        accum = getattr(ctx.recipe.train, "grad_accum_steps", None) or max(1, 8 // max(1, ctx.world_size))
        return cls(val_tokens, ctx.luts, ev.seq_len, ev.stride, rank=ctx.rank, world_size=ctx.world_size,
                   device=ctx.device, batch_seqs=eval_batch_seqs(ev.batch_tokens, ev.seq_len, ctx.world_size, accum),
                   token_bytes=ctx.validation_bytes(int(torch.as_tensor(val_tokens).numel())))

    # -- windows ---------------------------------------------------------------------------

    def windows(self, batch_seqs: Optional[int] = None) -> Iterator[WindowBatch]:
        """This rank's contiguous share of all windows, in batches of ``batch_seqs``, left to right."""
        return self._iter_windows(0, len(self.schedule), batch_seqs)

    def _iter_windows(self, lo: int, hi: int, batch_seqs: Optional[int]) -> Iterator[WindowBatch]:
        a, b = self.schedule.rank_slice(self.rank, self.world_size, lo, hi)
        step = max(1, int(batch_seqs or self.batch_seqs))
        for start in range(a, b, step):
            yield self._make_batch(start, min(start + step, b))

    def _make_batch(self, a: int, b: int) -> WindowBatch:
        s = self.schedule
        return self._batch(s.starts[a:b], s.lengths[a:b], s.score_from[a:b], s.lengths[a:b], self.seq_len,
                           np.arange(a, b, dtype=np.int64))

    def _batch(self, starts: np.ndarray, lengths: np.ndarray, score_from: np.ndarray, score_to: np.ndarray,
               width: int, window_index: np.ndarray) -> WindowBatch:
        L = int(width)
        j = np.arange(L, dtype=np.int64)[None, :]
        pos = starts[:, None] + j
        valid = j < lengths[:, None]
        mask = valid & (j >= score_from[:, None]) & (j < score_to[:, None])
        idx = torch.from_numpy(np.where(valid, pos, 0))
        valid_t = torch.from_numpy(valid)
        x = torch.where(valid_t, self._tokens[idx], 0)
        y = torch.where(valid_t, self._tokens[idx + 1], 0)
        target_pos = torch.from_numpy(np.where(valid, pos, -1))
        dev = self.device
        return WindowBatch(
            x=x.to(dev, non_blocking=True), _y=y.to(dev, non_blocking=True),
            score_mask=torch.from_numpy(mask).to(dev, non_blocking=True), target_pos=target_pos,
            window_starts=torch.from_numpy(np.ascontiguousarray(starts, dtype=np.int64)),
            window_index=torch.from_numpy(np.ascontiguousarray(window_index, dtype=np.int64)),
            _mask_np=mask, _targets_np=pos[mask], _session=self)

    def span_batch(self, starts, lengths, score_lo, score_hi, width: Optional[int] = None) -> WindowBatch:
        """A batch of arbitrary windows, one per row: row ``r`` feeds tokens
        ``[starts[r], starts[r] + lengths[r])`` (predicting targets ``starts[r] ..``) and scores
        targets ``[score_lo[r], score_hi[r])``, which must lie in its window; rows are zero-padded
        to ``width`` (default: the longest). For document-wise evaluation (``documents()``).
        The targets are handed out, as always, only once the batch is scored."""
        st, ln = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        lo, hi = np.asarray(score_lo, dtype=np.int64), np.asarray(score_hi, dtype=np.int64)
        if not (st.shape == ln.shape == lo.shape == hi.shape and st.ndim == 1 and st.size):
            raise GolfError("span_batch: starts, lengths, score_lo and score_hi must be equal-length, non-empty lists")
        w = int(width) if width is not None else int(ln.max())
        bad = (st < 0) | (ln < 1) | (st + ln > self.total_targets) | (lo < st) | (hi > st + ln) | (lo > hi) | (ln > w)
        if bad.any():
            r = int(np.argmax(bad))
            raise GolfError(f"span_batch: row {r} (window [{int(st[r])}, {int(st[r] + ln[r])}), scored "
                            f"[{int(lo[r])}, {int(hi[r])}), width {w}) does not fit the stream of {self.total_targets} targets")
        return self._batch(st, ln, lo - st, hi - st, w, np.arange(st.size, dtype=np.int64))

    def documents(self, bos_id: Optional[int] = None) -> list[Document]:
        """The stream's documents (``golf_core.eval.documents``; default BOS: the tokenizer's)."""
        if bos_id is None:
            from golf_core.data.tokenizer import BOS_ID

            bos_id = BOS_ID
        if self._documents is None or self._documents[0] != bos_id:
            self._documents = (int(bos_id), find_documents(self._tokens.numpy(), int(bos_id)))
        return self._documents[1]

    def declare_order(self, groups: list[list[Document]]) -> None:
        """Declare that documents are evaluated in this order (groups one after the other, the
        documents of a group together), before anything is scored. Recorded in the ledger as an
        ``order`` event; ``golf check`` then judges causality and score-before-update in this
        order instead of the stream's."""
        if self.ledger:
            raise GolfError("declare_order: the order must be declared before the first score")
        order_ranks(groups, self.total_targets)
        self.ledger.append({"event": "order", "state_version": self.state_version,
                            "groups": [[[d.target_lo, d.target_hi] for d in g] for g in groups]})

    def chunks(self, chunk_tokens: int) -> list[Chunk]:
        """The non-empty chunks of ``chunk_tokens`` targets (#1413: a window belongs to the chunk of
        its first scored target), left to right; each chunk's ``windows()`` is this rank's share."""
        ids = self.schedule.chunk_ids(chunk_tokens)
        n_chunks = -(-self.total_targets // chunk_tokens)
        lo_s, hi_s = self.schedule.score_lo(), self.schedule.score_hi()
        out: list[Chunk] = []
        for c in np.unique(ids):
            wa = int(np.searchsorted(ids, c, "left"))
            wb = int(np.searchsorted(ids, c, "right"))
            out.append(Chunk(int(c), n_chunks, int(c) * chunk_tokens,
                             min((int(c) + 1) * chunk_tokens, self.total_targets),
                             int(lo_s[wa]), int(hi_s[wb - 1]), wa, wb, False, self))
        if out:
            last = out[-1]
            out[-1] = Chunk(last.index, last.num_chunks, last.token_start, last.token_end, last.target_lo,
                            last.target_hi, last.window_lo, last.window_hi, True, self)
        return out

    # -- scoring ---------------------------------------------------------------------------

    def _violation(self, kind: str, message: str) -> None:
        """Record a legality event (kept once per kind and message)."""
        if (kind, message) not in self.violations and len(self.violations) < 100:
            self.violations.append((kind, message))

    def _audit_rows(self, targets: np.ndarray, z: torch.Tensor, vals: np.ndarray) -> None:
        """What ``golf check`` reads of scored rows: the largest |logsumexp|, non-finite NLLs
        (a violation), the watched targets' log-probability rows, the count of rows checked."""
        with torch.no_grad():
            lse = torch.logsumexp(z, dim=-1)
            self.max_abs_lse = max(self.max_abs_lse, float(lse.abs().max()))
        if not np.isfinite(vals).all():
            t = int(targets[np.argmax(~np.isfinite(vals))])
            self._violation("non_finite", f"the scored row of target {t} gives a non-finite NLL")
        if self.watch:
            hit = np.nonzero(np.isin(targets, list(self.watch)))[0]
            for k in hit:
                self.watch_rows[int(targets[k])] = (z[int(k)].double() - lse[int(k)].double()).cpu().numpy()
        self.rows_checked += int(targets.size)

    def score(self, batch: WindowBatch, logits: torch.Tensor) -> None:
        """Score every scored target of ``batch`` from the full rows the adapter predicts.

        ``logits`` is ``[B, seq_len, V]`` (rows outside ``score_mask`` are ignored) or
        ``[n_scored, V]`` in ``score_mask`` order, logits or log-probabilities, with ``V`` at
        least the vocabulary size. The session computes ``nll = -log_softmax(z)[y]`` (``F.cross_entropy``, float32,
        float64 rows stay float64). LegalityError when a target was already scored or a row is
        short; a non-finite NLL is recorded as a violation.
        """
        targets = batch._targets_np
        z = torch.as_tensor(logits).detach()
        mask_shape = tuple(batch._mask_np.shape)
        if z.dim() == 3 and tuple(z.shape[:2]) == mask_shape:
            z = z[batch.score_mask.to(z.device)]
        elif not (z.dim() == 2 and z.shape[0] == targets.shape[0]):
            raise GolfError(f"session.score takes the full logit rows of the scored positions, [B, T, V] or "
                            f"[n_scored, V]; got shape {tuple(z.shape)} for a batch {mask_shape} with "
                            f"{targets.shape[0]} scored positions (the session computes the NLL itself)")
        if z.shape[-1] < self.vocab_size:
            if AUDITED:
                self._violation("short_rows",
                                f"scored rows have {z.shape[-1]} columns, the vocabulary {self.vocab_size}")
            raise LegalityError(f"session.score: rows have {z.shape[-1]} columns; a distribution over all "
                                f"{self.vocab_size} token ids is required")
        if targets.size == 0:
            batch.scored = True
            return
        seen = self._coverage[targets]
        if seen.any():
            t = int(targets[np.argmax(seen > 0)])
            msg = f"target {t} (validation token {t + 1}) scored twice"
            if AUDITED:
                self._violation("scored_twice", msg)
            raise LegalityError(msg)
        if z.dtype != torch.float64:
            z = z.float()
        y = batch._y[batch.score_mask].to(z.device)
        with torch.no_grad():
            # F.cross_entropy (log_softmax + gather), as the records score: bitwise their per-token NLL
            vals_t = F.cross_entropy(z, y, reduction="none")
        vals = vals_t.to("cpu", torch.float64).numpy()
        if AUDITED:
            self._audit_rows(targets, z, vals)
        batch.scored = True
        self._coverage[targets] += 1
        self._nll[targets] = vals
        self.loss_sum += float(vals.sum(dtype=np.float64))
        self.token_count += int(targets.size)
        self.byte_count += int(self._bytes[targets].sum(dtype=np.int64))
        event = {"event": "score", "state_version": self.state_version,
                 "targets": [int(targets.min()), int(targets.max()) + 1]}
        spans = _spans(targets)
        if len(spans) > 1:
            event["spans"] = spans
        self.ledger.append(event)
        if not IN_SCRIPT and self.progress_desc:  # no progress bars in an exported script
            self._tick(int(targets.size))

    def _tick(self, n: int) -> None:
        if self._progress is None:
            from golf_core.progress import Progress

            share = -(-self.total_targets // self.world_size)
            self._progress = Progress(share, self.progress_desc, enabled=self.rank == 0)
        self._progress.update(n)

    def update_tokens(self, chunk: Union[Chunk, tuple[int, int]], local: bool = False) -> torch.LongTensor:
        """The tokens of a chunk's already-scored targets, to adapt on.

        For targets ``[lo, hi)`` returns tokens ``[lo, hi]`` (``hi - lo + 1`` tokens: the input of
        target ``lo`` and every target token), as a fresh int64 CPU tensor. LegalityError if any of
        those targets is not scored yet (on every rank together when distributed: all ranks must
        call it for the same chunk; ``local=True``: this rank's own scores only, no collective,
        for a state only this rank keeps). Records an "update" ledger entry and bumps ``state_version``.
        """
        lo, hi = (chunk.target_lo, chunk.target_hi) if isinstance(chunk, Chunk) else (int(chunk[0]), int(chunk[1]))
        if not 0 <= lo < hi <= self.total_targets:
            raise GolfError(f"update_tokens: bad target range [{lo}, {hi}) for {self.total_targets} targets")
        cov = self._coverage[lo:hi].astype(np.int32)
        d = None if local else _dist()
        if d is not None:
            t = torch.from_numpy(cov).to(self._reduce_device())
            d.all_reduce(t, op=d.ReduceOp.SUM)
            cov = t.cpu().numpy()
        if (cov == 0).any():
            t = lo + int(np.argmax(cov == 0))
            if AUDITED:
                self._violation("update_before_score", f"update_tokens: target {t} has not been scored yet")
            raise LegalityError(f"update_tokens: target {t} (validation token {t + 1}) has not been scored yet; "
                                f"score every window of the chunk before adapting on it")
        self.ledger.append({"event": "update", "state_version": self.state_version, "targets": [lo, hi]})
        self.state_version += 1
        return self._tokens[lo: hi + 1].clone()

    # -- state -----------------------------------------------------------------------------

    @property
    def nll(self) -> np.ndarray:
        """Per-target NLL in nats (float64; NaN where this rank scored nothing). Read-only view."""
        v = self._nll.view()
        v.flags.writeable = False
        return v

    @property
    def coverage(self) -> np.ndarray:
        """How many times this rank scored each target. Read-only view."""
        v = self._coverage.view()
        v.flags.writeable = False
        return v

    @property
    def bytes_per_target(self) -> np.ndarray:
        """The challenge's byte count of every target (pg_core.md §3.2). Read-only view."""
        v = self._bytes.view()
        v.flags.writeable = False
        return v

    def write_ledger(self, path) -> None:
        """Write the score/update ledger as JSON lines (one event per line) to ``path``."""
        import json
        from pathlib import Path

        with open(Path(path), "w", encoding="utf-8") as f:
            for event in self.ledger:
                f.write(json.dumps(event) + "\n")

    def _reduce_device(self) -> torch.device:
        d = _dist()
        if d is not None and d.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def result(self) -> EvalResult:
        """The all-reduced (SUM, float64) loss, tokens and bytes, as an ``EvalResult``;
        ``coverage_ok`` says whether every target was scored exactly once over all ranks."""
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        sums = [self.loss_sum, float(self.token_count), float(self.byte_count)]
        cov_ok = bool((self._coverage == 1).all())
        d = _dist()
        if d is not None:
            dev = self._reduce_device()
            t = torch.tensor(sums, dtype=torch.float64, device=dev)
            d.all_reduce(t, op=d.ReduceOp.SUM)
            sums = t.cpu().tolist()
            cov = torch.from_numpy(self._coverage.astype(np.int32)).to(dev)
            d.all_reduce(cov, op=d.ReduceOp.SUM)
            cov_ok = bool((cov == 1).all().item())
        return EvalResult.from_sums(sums[0], sums[1], sums[2], cov_ok)


def _spans(targets: np.ndarray) -> list[list[int]]:
    """The sorted targets as maximal contiguous ``[lo, hi)`` runs."""
    t = np.unique(targets)
    cut = np.flatnonzero(np.diff(t) != 1) + 1
    return [[int(r[0]), int(r[-1]) + 1] for r in np.split(t, cut)]


def eval_batch_seqs(batch_tokens: int, seq_len: int, world_size: int = 1, grad_accum_steps: int = 1) -> int:
    """Windows per batch on each rank, as the baseline computes it:
    ``batch_tokens // (world_size * grad_accum_steps) // seq_len`` (at least 1)."""
    return max(1, batch_tokens // (max(1, world_size) * max(1, grad_accum_steps)) // seq_len)
