"""The post-training pipeline as a black box on a given validation stream (the flip test's E).

From trained weights: the run driver (``golf_core.run.Run``) loads them into a fresh model, runs
the ``golf_pre_quant`` transforms (each plugin's validation reads attributed to it) and writes
the artifact (quantize, compress) to a scratch file; it decodes it into a fresh model, and the
eval adapter (or the core's scorer) scores the stream through an ``AuditSession``. ``eval_seconds`` is the whole eval phase,
from reading the artifact (decompression) through any warm-up to the last score. Every consumer of validation tokens sees
the given stream (``StreamContext``). From an artifact only (a run directory without trained
weights): just the decode and the scoring.

The stash the plugins left after training (EMA weights, say) is copied into every run, so each
run starts from the same state; the seed is reset before each run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..context import RunContext
from ..errors import LegalityError
from ..rundir import RunLog
from ..stash import Stash
from .flip import Outcome
from .opens import sanctioned
from .session import AuditSession, NormStats
from .stream import StreamContext, copy_stash


@dataclass
class Trained:
    """Weights right after training, before any pre-quant transform, and the plugins' state.

    state: CPU copy of the state dict; stash: the plugins' stash after training; steps and
    train_seconds: what training reported; reads: validation reads made during training.
    """

    state: dict[str, torch.Tensor]
    stash: Stash
    steps: int = 0
    train_seconds: float = 0.0
    reads: list[dict[str, Any]] = field(default_factory=list)


def snapshot_trained(model: torch.nn.Module, ctx: RunContext, steps: int, train_seconds: float) -> Trained:
    """A Trained from a model just out of training and its context."""
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return Trained(state, copy_stash(ctx.stash), steps, train_seconds, [dict(r) for r in ctx.validation_reads])


def _gather_objects(ctx: RunContext, obj: Any) -> list[Any]:
    if ctx.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        out: list[Any] = [None] * ctx.world_size
        torch.distributed.all_gather_object(out, obj)
        return out
    return [obj]


def _gather_nll(ctx: RunContext, session: AuditSession) -> tuple[np.ndarray, np.ndarray]:
    nll = np.array(session.nll, dtype=np.float64)
    cov = np.array(session.coverage, dtype=np.int64)
    if ctx.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        dev = session._reduce_device()  # noqa: SLF001 - the session knows its reduce device
        t = torch.from_numpy(np.nan_to_num(nll, nan=0.0)).to(dev)
        c = torch.from_numpy(cov).to(dev)
        torch.distributed.all_reduce(t)
        torch.distributed.all_reduce(c)
        cov = c.cpu().numpy()
        nll = np.where(cov > 0, t.cpu().numpy(), np.nan)
    return nll, cov


class PostTraining:
    """The black box ``E(stream, watch) -> Outcome`` of one run (see the module docstring).

    :param ctx: the run's context (recipe, plugins, device, ranks, data, tokenizer).
    :param trained: weights right after training; None: score ``artifact`` only.
    :param artifact: an ``artifact.bin`` to score when there are no trained weights.
    :param work_dir: where scratch artifacts go (shared by all ranks).
    """

    def __init__(self, ctx: RunContext, work_dir: Path, *, trained: Optional[Trained] = None,
                 artifact: Optional[Path] = None):
        if trained is None and artifact is None:
            raise ValueError("PostTraining needs trained weights or an artifact")
        self.ctx = ctx
        self.trained = trained
        self.artifact = Path(artifact) if artifact is not None else None
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.post_stash: Optional[Stash] = None  # the stash after the last artifact was written
        self.last_ctx: Optional[StreamContext] = None  # the context of the last run
        self.runs = 0

    def pin(self) -> tuple:
        """The artifact and post-artifact stash that reused runs score now (see ``restore``)."""
        return self.artifact, self.post_stash

    def restore(self, pinned: tuple) -> None:
        """Make reused runs score a pinned artifact again."""
        self.artifact, self.post_stash = pinned

    @property
    def whole(self) -> bool:
        """True when runs start from trained weights (pre-quant transforms included)."""
        return self.trained is not None

    def __call__(self, stream: Optional[torch.Tensor], watch: Sequence[int] = (), *, reuse_artifact: bool = False,
                 artifact_path: Optional[Path] = None, log: Optional[RunLog] = None) -> Outcome:
        """Run the pipeline on ``stream`` (None: the recipe's own validation stream).

        :param reuse_artifact: score the last written artifact instead of re-running pre-quant,
            quantization and compression (used when the base run read no validation data before
            scoring, so its artifact cannot depend on the stream).
        :param artifact_path: where to write the artifact (default: a scratch file).
        :param log: the run log for this run (default: silent); with a log, plugins also get the
            run's output folder (the run itself), without one none (the flip test's runs).
        """
        from ..train.rng import seed_everything

        recipe = self.ctx.recipe
        self.runs += 1
        info: dict[str, Any] = {"reused_artifact": False}
        if self.whole and not reuse_artifact:
            vctx = StreamContext.derive(self.ctx, stream, stash=copy_stash(self.trained.stash), log=log,
                                        keep_out_dir=log is not None)
            self.last_ctx = vctx
            seed_everything(recipe.train.seed)
            path = Path(artifact_path) if artifact_path is not None else self.work_dir / "artifact.bin"
            t0 = time.time()
            sizes = self._pre_quant_and_write(vctx, path)
            info.update(model_bytes=sizes["model_bytes"], serialized_bytes=sizes["serialized_bytes"],
                        artifact_seconds=time.time() - t0)
            self.artifact = path
            self.post_stash = copy_stash(vctx.stash)
        else:
            if self.artifact is None:
                raise ValueError("no artifact to reuse yet")
            stash = copy_stash(self.post_stash) if self.post_stash is not None else Stash()
            vctx = StreamContext.derive(self.ctx, stream, stash=stash, log=log, keep_out_dir=log is not None)
            self.last_ctx = vctx
            seed_everything(recipe.train.seed)
            info["reused_artifact"] = True
            path = self.artifact
        info["artifact_path"] = str(path)
        self.last_ctx = vctx
        out = self._score(vctx, path, watch, info)
        out.info.update(reads=[dict(r) for r in vctx.validation_reads], unrecorded_loads=list(vctx.unrecorded_loads))
        return out

    # -- the phases --------------------------------------------------------------------------

    def _pre_quant_and_write(self, vctx: StreamContext, path: Path) -> dict[str, Any]:
        from ..run import Run

        run = Run(vctx)
        run.load_weights(self.trained.state)
        return run.post_train(path)

    def _score(self, vctx: StreamContext, path: Path, watch: Sequence[int], info: dict[str, Any]) -> Outcome:
        from ..run import Run, make_session

        run = Run(vctx)
        aborted: Optional[str] = None
        adapter = (vctx.plugins.providers("golf_eval_adapt") or [None])[0]
        t0 = time.time()     # the eval clock: decode, any warm-up and every score
        with sanctioned():
            tokens = vctx.eval_stream()
        session = make_session(vctx, vctx.recipe.eval.stride, tokens=tokens, session_class=AuditSession, watch=watch)
        del tokens
        run.load_artifact(path)
        try:
            run.eval(session)
        except LegalityError as e:
            aborted = f"{adapter or 'core scorer'}: {e}"
        except Exception as e:  # noqa: BLE001 - an adapter that breaks under the session is judged, not crashed on
            session._violation("adapter_error", f"{adapter or 'core scorer'}: {type(e).__name__}: {e}")
            aborted = f"{adapter or 'core scorer'}: {type(e).__name__}: {e}"
        info["eval_seconds"] = time.time() - t0
        nll, cov = _gather_nll(vctx, session)
        gathered = _gather_objects(vctx, {"ledger": list(session.ledger), "rows": session.watch_rows,
                                          "norm": session.norm, "violations": session.violation_list(),
                                          "aborted": aborted})
        rows: dict[int, np.ndarray] = {}
        norm = NormStats()
        violations = []
        for g in gathered:
            rows.update(g["rows"])
            norm = norm.merge(g["norm"])
            violations += g["violations"]
            aborted = aborted or g["aborted"]
        info.update(ledgers={r: g["ledger"] for r, g in enumerate(gathered)}, norm=norm, violations=violations,
                    adapter=adapter, num_targets=int(session.total_targets), batch_seqs=session.batch_seqs)
        info["result"] = session.result()
        return Outcome(nll=nll, coverage=cov, rows=rows, aborted=aborted, info=info)
