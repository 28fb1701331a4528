"""The training loop: the baseline's (research/pg_core.md §4.6) with hooks at step boundaries.

``train(model, ctx)`` does, in order:

1. optimizers: the baseline's groups (``build_optimizers``) changed by the
   ``golf_configure_optimizers`` transforms, unless the caller passes an ``OptimizerSet``;
2. ``torch.compile(fullgraph=True, dynamic=False)`` when ``[train] compile`` resolves on, then
   ``DDP(broadcast_buffers=False)`` under torchrun;
3. the loader from the exclusive ``golf_make_loader`` hook (core default:
   ``golf_core.data.loaders.SequentialLoader``);
4. compile warmup: ``warmup_steps`` real steps, then as many again under each state that the
   ``golf_compile_warmup`` hooks return; then model and optimizer states are restored and the
   loader is re-created, so the warmup is undone;
5. on resume: model, optimizers, loader, clock and step from the checkpoint;
   ``golf_on_train_start``; then the plugins' ``golf_load_state_dict``; then the RNG states;
6. the timed loop: lr multiplier, Muon momentum and the optimizers' ``step_schedules`` (with the
   training fraction the lr used) per step, ``grad_accum`` micro-steps with
   ``loss / grad_accum`` and DDP gradient sync on the last one only (with a document mask on the
   model, each micro-batch's ``cu_seqlens`` are computed from its tokens here, outside the compiled
   graph, and passed to the forward), optional global-norm
   clipping, the optimizers, ``golf_on_step_end`` (outside the compiled graph), a log line every
   ``log_every`` steps, validation every ``val_loss_every`` steps with the clock paused, the
   all-ranks stop at the wallclock cap, a checkpoint every ``checkpoint_every`` steps;
7. ``golf_on_train_end``.

Graphs that ``torch.compile`` builds while the clock runs (a layout no warmup state covered)
are counted in ``TrainResult.compiled_in_clock`` and logged as a warning.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from ..config import TrainSection
from ..errors import GolfError, RecipeError
from ..scripted import IN_SCRIPT, SCRIPT_CHECKPOINTS
from . import distributed as D
from .checkpoint import load_checkpoint, save_checkpoint
from .clock import TrainClock
from .optim import OptimizerSet, build_optimizers
from .rng import capture_rng_state, restore_rng_state
from .schedule import LRSchedule, MomentumWarmup


@dataclass
class TrainProgress:
    """Where training stands after a step (what ``golf_on_step_end`` receives).

    step: steps done (1-based after the first step); elapsed_s: timed training seconds;
    frac: elapsed over the usable budget, or step over iterations without a cap;
    lr_mul: the multiplier the step used.
    """

    step: int
    elapsed_s: float
    frac: float
    lr_mul: float


@dataclass
class TrainResult:
    """What a training run reports.

    steps: steps done; train_seconds: timed training seconds (before a resume included);
    stopped_by: ``"iterations"`` or ``"wallclock"``; train_loss: the last logged loss (mean over
    ranks); losses: ``(step, loss)`` at every logged step; val_history: the in-loop validations
    (``{"step", "train_seconds", **metrics}``); tokens: training tokens of the timed steps
    (all ranks); warmup_seconds: untimed compile-warmup seconds; grad_accum_steps;
    resumed_from / resumed_step: the checkpoint a resume started from; checkpoints: folders
    written; peak_memory_mib: CUDA peak allocated memory (None on CPU); compiled_graphs:
    graphs torch.compile built before the clock started (the compile warmup's, one per layout);
    compiled_in_clock: graphs it built while the clock ran (0 when every layout was warmed).
    """

    steps: int
    train_seconds: float
    stopped_by: str
    train_loss: Optional[float] = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    val_history: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    warmup_seconds: float = 0.0
    grad_accum_steps: int = 1
    resumed_from: Optional[str] = None
    resumed_step: int = 0
    checkpoints: list[str] = field(default_factory=list)
    peak_memory_mib: Optional[float] = None
    compiled_graphs: int = 0
    compiled_in_clock: int = 0


def compiled_graph_count() -> int:
    """Graphs ``torch.compile`` has built in this process so far (every backend, recompiles included)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


# ---------------------------------------------------------------------------------------------
# configuration helpers
# ---------------------------------------------------------------------------------------------


def grad_accum_steps(train: TrainSection, world_size: int) -> int:
    """``[train] grad_accum_steps``, else ``8 // world_size`` (world size must divide 8)."""
    if train.grad_accum_steps is not None:
        return train.grad_accum_steps
    if world_size < 1 or 8 % world_size:
        raise RecipeError(
            f"world size {world_size} does not divide 8; set [train] grad_accum_steps explicitly"
        )
    return 8 // world_size


def micro_batch_tokens(train: TrainSection, world_size: int, accum: int) -> int:
    """Tokens per rank per micro-step: ``train_batch_tokens // (world_size * accum)``.

    RecipeError when that is not a positive multiple of ``train_seq_len``.
    """
    local = train.train_batch_tokens // (world_size * accum)
    if local < train.train_seq_len or local % train.train_seq_len:
        raise RecipeError(
            f"[train] train_batch_tokens {train.train_batch_tokens} over {world_size} rank(s) x {accum} "
            f"micro-steps gives {local} tokens per micro-batch, not a positive multiple of "
            f"train_seq_len {train.train_seq_len}"
        )
    return local


def resolve_compile(train: TrainSection, device: torch.device) -> bool:
    """``[train] compile``: ``on``/``off``, or ``auto`` = on for CUDA, off elsewhere."""
    if train.compile == "auto":
        return device.type == "cuda"
    return train.compile == "on"


def configure_optimizers(model: nn.Module, ctx: Any, *, compile_ns: Optional[bool] = None) -> OptimizerSet:
    """The baseline's optimizers for ``model``, then the ``golf_configure_optimizers`` transforms."""
    t = ctx.recipe.train
    if compile_ns is None:
        compile_ns = resolve_compile(t, ctx.device)
    opt = build_optimizers(model, t, ctx.world_size, ctx.rank, compile_ns=compile_ns)
    out = ctx.plugins.transform("golf_configure_optimizers", "optimizers", opt, model=model, ctx=ctx)
    if not isinstance(out, OptimizerSet):
        raise GolfError(f"golf_configure_optimizers returned {type(out).__name__}; it must return an OptimizerSet")
    return out


def make_train_loader(ctx: Any) -> Any:
    """The training loader: the active ``golf_make_loader`` provider, else the core's
    (``golf_core.defaults``: the baseline's sequential stream)."""
    return ctx.plugins.exclusive("golf_make_loader", ctx=ctx, purpose="train")


def _warmup_callables(ctx: Any, model: nn.Module) -> list[Callable[[nn.Module], Any]]:
    out: list[Callable[[nn.Module], Any]] = []
    for name, got in ctx.plugins.collect("golf_compile_warmup", model=model, ctx=ctx).items():
        items = got if isinstance(got, (list, tuple)) else [got]
        for enter in items:
            if not callable(enter):
                raise GolfError(f"plugin {name!r}: golf_compile_warmup must return callables enter(model) -> exit")
            out.append(enter)
    return out


# ---------------------------------------------------------------------------------------------
# one step
# ---------------------------------------------------------------------------------------------


class _Stepper:
    """One optimizer step: micro-batches, backward, lr/momentum, clipping, optimizers."""

    def __init__(self, fwd: nn.Module, opt: OptimizerSet, ctx: Any, accum: int, local_tokens: int, seq_len: int,
                 documents: Any = None):
        self.fwd = fwd
        self.documents = documents  # the model's DocumentMask: cu_seqlens computed here, outside the graph
        self.opt = opt
        self.ctx = ctx
        self.accum = accum
        self.local_tokens = local_tokens
        self.seq_len = seq_len
        self.ddp = isinstance(fwd, torch.nn.parallel.DistributedDataParallel)
        self.device = ctx.device
        self.non_blocking = ctx.device.type == "cuda"

    def __call__(self, loader: Any, lr_mul: float, momentum: float, frac: Optional[float] = None) -> torch.Tensor:
        """Run one step and return the mean micro-batch loss (a detached 0-d tensor); ``frac``
        (the training fraction of a timed step) goes to the optimizers' ``step_schedules``."""
        opt = self.opt
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device, dtype=torch.float32)
        scale = 1.0 / self.accum
        for micro in range(self.accum):
            if self.ddp:
                self.fwd.require_backward_grad_sync = micro == self.accum - 1
            x, y = loader.next_batch(self.local_tokens, self.seq_len)
            cu = None if self.documents is None else self.documents.cu_seqlens(x)
            x = x.to(self.device, non_blocking=self.non_blocking)
            y = y.to(self.device, non_blocking=self.non_blocking)
            with self.ctx.autocast():
                if cu is None:
                    loss = self.fwd(x, y)
                else:
                    loss = self.fwd(x, y, cu.to(self.device, non_blocking=self.non_blocking))
            total += loss.detach().float()
            (loss * scale).backward()
        opt.set_muon_momentum(momentum)
        opt.set_lr_mul(lr_mul)
        if frac is not None:
            opt.apply_step_schedules(frac)
        opt.clip_grads()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return total / self.accum


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> Optional[Callable[[], None]]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def _restore_plugins(ctx: Any, states: dict[str, Any]) -> None:
    active = set(ctx.plugins.order)
    for name, state in states.items():
        if name not in active:
            raise GolfError(f"checkpoint holds state of plugin {name!r}, which this recipe does not activate")
        ctx.plugins.call_plugin(name, "golf_load_state_dict", state=state, ctx=ctx)


def train(
    model: nn.Module,
    ctx: Any,
    *,
    optimizers: Optional[OptimizerSet] = None,
    evaluate: Optional[Callable[[nn.Module], dict[str, float]]] = None,
    resume_from: Optional[Any] = None,
    checkpoint_dir: Optional[Any] = None,
    keep_checkpoints: int = 2,
    progress: bool = False,
) -> TrainResult:
    """Train ``model`` (already built, laid out and on ``ctx.device``) under ``ctx.recipe.train``.

    :param model: the un-wrapped model; it is trained in place.
    :param ctx: the RunContext (recipe, plugins, device, rank, world_size, log, out_dir).
    :param optimizers: an OptimizerSet; default: :func:`configure_optimizers`.
    :param evaluate: ``evaluate(model) -> {"val_loss": .., "val_bpb": .., ...}``, called on every
        rank with the clock paused at step 0, every ``val_loss_every`` steps and after the last
        step (only when ``val_loss_every > 0``).
    :param resume_from: a checkpoint folder, a checkpoint root or a run folder.
    :param checkpoint_dir: where checkpoints go (default ``ctx.out_dir / "checkpoints"``).
    :param keep_checkpoints: complete checkpoints kept on disk (0: all).
    :param progress: show a progress bar (main rank).
    :return: a :class:`TrainResult`.
    """
    run = _Training(model, ctx, optimizers, evaluate, checkpoint_dir, keep_checkpoints)
    run.compile_warmup()
    plugin_states: dict[str, Any] = {}
    rng_state: Optional[dict[str, Any]] = None
    if not IN_SCRIPT and resume_from is not None:  # an exported script never resumes
        plugin_states, rng_state = run.resume(resume_from)
    ctx.plugins.observe("golf_on_train_start", model=model, ctx=ctx)
    if not IN_SCRIPT:
        if plugin_states:
            _restore_plugins(ctx, plugin_states)
        if rng_state is not None:
            restore_rng_state(rng_state)
    with _progress_bar(ctx, progress, run.t.iterations - run.step) as bar:
        run.timed_loop(bar)
    result = run.finish()
    ctx.plugins.observe("golf_on_train_end", model=model, ctx=ctx)
    return result


@contextlib.contextmanager
def _progress_bar(ctx: Any, enabled: bool, steps: int) -> Iterator[Any]:
    """A progress bar on the main rank (log lines printed above it), else ``None`` (always in
    an exported script)."""
    if IN_SCRIPT or not (enabled and ctx.rank == 0):
        yield None
        return
    from ..progress import Progress

    bar = Progress(max(steps, 1), "train", enabled=True)
    old_printer = getattr(ctx.log, "printer", None)
    if old_printer is not None:
        ctx.log.printer = bar.print
    try:
        yield bar
    finally:
        bar.close()
        if old_printer is not None:
            ctx.log.printer = old_printer


def configure_dynamo_for_ddp(use_compile: bool) -> None:
    """Compile the whole model as one graph under DDP, as the records do
    (``torch._dynamo.config.optimize_ddp = False``: no DDPOptimizer split at bucket boundaries).
    Called only for multi-process runs; a no-op without compile."""
    if use_compile:
        torch._dynamo.config.optimize_ddp = False


class _Training:
    """The state of one ``train()`` call and its steps (see the module docstring for the order)."""

    def __init__(self, model: nn.Module, ctx: Any, optimizers: Optional[OptimizerSet],
                 evaluate: Optional[Callable[[nn.Module], dict[str, float]]], checkpoint_dir: Optional[Any],
                 keep_checkpoints: int):
        self.model, self.ctx, self.evaluate, self.keep_checkpoints = model, ctx, evaluate, keep_checkpoints
        self.t: TrainSection = ctx.recipe.train
        self.device: torch.device = ctx.device
        world = int(ctx.world_size)
        self.accum = grad_accum_steps(self.t, world)
        local_tokens = micro_batch_tokens(self.t, world, self.accum)
        self.step_tokens = local_tokens * world * self.accum
        if world > 1 and not D.is_distributed():
            raise GolfError(f"ctx.world_size is {world} but torch.distributed is not initialized; launch with torchrun")
        self.use_compile = resolve_compile(self.t, self.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.cuda.reset_peak_memory_stats(self.device)
        if optimizers is None:
            optimizers = configure_optimizers(model, ctx, compile_ns=self.use_compile)
        optimizers.check_covers(model)
        self.optimizers = optimizers
        self.ckpt_root = self._checkpoint_root(checkpoint_dir)
        self.schedule = LRSchedule.from_section(self.t)
        self.momentum = MomentumWarmup.from_section(self.t)
        self.clock = TrainClock(self.schedule.cap_s, sync=_sync(self.device))
        model.train()
        self.graphs_at_entry = self.graphs_at_start = compiled_graph_count()
        fwd: nn.Module = torch.compile(model, dynamic=False, fullgraph=True) if self.use_compile else model
        if world > 1:
            configure_dynamo_for_ddp(self.use_compile)
            fwd = torch.nn.parallel.DistributedDataParallel(
                fwd, device_ids=[self.device.index] if self.device.type == "cuda" else None, broadcast_buffers=False
            )
        self.fwd = fwd
        self.stepper = _Stepper(fwd, optimizers, ctx, self.accum, local_tokens, self.t.train_seq_len,
                                documents=getattr(model, "document_mask", None))
        self.loader = make_train_loader(ctx)
        # what a checkpoint saves besides model, optimizers, loader, RNG and clock
        self.step = 0
        self.stop_after: Optional[int] = None
        self.tokens = 0
        self.result = TrainResult(steps=0, train_seconds=0.0, stopped_by="iterations", grad_accum_steps=self.accum)

    def _checkpoint_root(self, checkpoint_dir: Optional[Any]) -> Optional[Path]:
        if self.t.checkpoint_every <= 0:
            return None
        if not SCRIPT_CHECKPOINTS:
            raise SystemExit("[train] checkpoint_every: this script was exported from a run without checkpoints")
        if checkpoint_dir is not None:
            return Path(checkpoint_dir)
        if self.ctx.out_dir is not None:
            return Path(self.ctx.out_dir) / "checkpoints"
        raise GolfError("[train] checkpoint_every is set but the run has no output folder for checkpoints")

    def compile_warmup(self) -> None:
        """``warmup_steps`` real steps, then as many under each ``golf_compile_warmup`` state; then
        model and optimizers are restored and the loader re-created (the warmup is undone)."""
        t, model, optimizers = self.t, self.model, self.optimizers
        warm_t0 = time.perf_counter()
        if t.warmup_steps > 0:
            model_snap = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            opt_snap = copy.deepcopy(optimizers.state_dict())
            for _ in range(t.warmup_steps):
                self.stepper(self.loader, 1.0, t.muon_momentum)
            for enter in _warmup_callables(self.ctx, model):
                leave = enter(model)
                try:
                    for _ in range(t.warmup_steps):
                        self.stepper(self.loader, 1.0, t.muon_momentum)
                finally:
                    if callable(leave):
                        leave()
            with torch.no_grad():
                model.load_state_dict(model_snap, strict=True)
            optimizers.load_state_dict(opt_snap)
            optimizers.zero_grad(set_to_none=True)
            del model_snap, opt_snap
            self.loader = make_train_loader(self.ctx)
            s = _sync(self.device)
            if s:
                s()
            self.ctx.log.info(f"warmup_steps:{t.warmup_steps} compile:{self.use_compile} "
                              f"warmup_time:{time.perf_counter() - warm_t0:.2f}s")
        if isinstance(self.fwd, torch.nn.parallel.DistributedDataParallel):
            self.fwd.require_backward_grad_sync = True
        self.result.warmup_seconds = time.perf_counter() - warm_t0
        self.graphs_at_start = compiled_graph_count()

    def resume(self, resume_from: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Model, optimizers, loader, clock and loop state from a checkpoint.

        :return: the plugins' checkpointed states and the RNG states (restored by the caller,
            after ``golf_on_train_start``).
        """
        state, shared, meta = load_checkpoint(resume_from)
        if shared is None or "model" not in shared:
            raise GolfError(f"checkpoint {resume_from!s} holds no model weights")
        with torch.no_grad():
            self.model.load_state_dict(shared["model"], strict=True)
        self.optimizers.load_state_dict(state["optimizers"])
        if not hasattr(self.loader, "load_state_dict"):
            raise GolfError(f"the training loader {type(self.loader).__name__} has no load_state_dict(); it cannot resume")
        self.loader.load_state_dict(state["loader"])
        self.clock.load_state_dict(state["clock"])
        self.step = int(state["step"])
        loop_state = state.get("loop", {})
        self.stop_after = loop_state.get("stop_after_step")
        self.tokens = int(loop_state.get("tokens", 0))
        self.result.losses = [tuple(x) for x in loop_state.get("losses", [])]
        self.result.val_history = list(loop_state.get("val_history", []))
        self.result.resumed_from = str(resume_from)
        self.result.resumed_step = self.step
        self.ctx.log.info(f"resume:{resume_from} step:{self.step} train_time:{self.clock.elapsed_s * 1000:.0f}ms")
        return state.get("plugins", {}), state["rng"]

    def checkpoint(self) -> None:
        """Save model, optimizers, loader, RNG, clock, loop state and the plugins' states."""
        assert self.ckpt_root is not None
        loader, ctx = self.loader, self.ctx
        if not (hasattr(loader, "state_dict") and callable(loader.state_dict)):
            raise GolfError(f"the training loader {type(loader).__name__} has no state_dict(); it cannot be checkpointed")
        plugin_state = ctx.plugins.collect("golf_state_dict", ctx=ctx)
        state = {
            "step": self.step,
            "optimizers": self.optimizers.state_dict(),
            "loader": loader.state_dict(),
            "rng": capture_rng_state(),
            "clock": self.clock.state_dict(),
            "loop": {
                "stop_after_step": self.stop_after,
                "tokens": self.tokens,
                "losses": [list(x) for x in self.result.losses],
                "val_history": self.result.val_history,
            },
            "plugins": plugin_state,
        }
        shared = {"model": self.model.state_dict()} if ctx.rank == 0 else None
        path = save_checkpoint(self.ckpt_root, self.step, state, shared, keep_last=self.keep_checkpoints,
                               meta={"plugins": list(ctx.plugins.order), "elapsed_s": self.clock.elapsed_s})
        self.result.checkpoints.append(str(path))
        ctx.log.info(f"checkpoint:{path} step:{self.step}")
        ctx.log.metric(event="checkpoint", step=self.step, path=str(path))

    def validate(self) -> None:
        """In-loop validation with the clock paused."""
        with self.clock.paused():
            metrics = dict(self.evaluate(self.model))
            self.model.train()
        entry = {"step": self.step, "train_seconds": self.clock.elapsed_s, **metrics}
        self.result.val_history.append(entry)
        shown = " ".join(f"{k}:{v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.ctx.log.info(f"step:{self.step}/{self.t.iterations} {shown} train_time:{self.clock.elapsed_s * 1000:.0f}ms")
        self.ctx.log.metric(event="val", phase="train", **entry)

    def timed_loop(self, bar: Any) -> None:
        """Steps until ``iterations`` or the wallclock cap (all ranks stop together), with step
        hooks, logging, in-loop validation and checkpoints."""
        t, clock, cap = self.t, self.clock, self.schedule.cap_s
        self._log_mark = (self.step, clock.elapsed_s)
        try:
            clock.start()
            while True:
                last = self.step >= t.iterations or (self.stop_after is not None and self.step >= self.stop_after)
                if self.evaluate is not None and t.val_loss_every > 0 and (last or self.step % t.val_loss_every == 0):
                    self.validate()
                if last:
                    break
                now = clock.elapsed_s
                mul = self.schedule(self.step, now)
                mom = self.momentum(self.step)
                loss = self.stepper(self.loader, mul, mom, self.schedule.frac(self.step, now))
                self.step += 1
                self.tokens += self.step_tokens
                elapsed = clock.elapsed_s
                self.ctx.plugins.observe(
                    "golf_on_step_end", model=self.model,
                    progress=TrainProgress(step=self.step, elapsed_s=elapsed, frac=self.schedule.frac(self.step, elapsed),
                                           lr_mul=mul),
                    ctx=self.ctx,
                )
                reached = cap is not None and clock.elapsed_s >= cap
                if cap is not None:
                    reached = D.any_rank(reached, self.device)
                if self.stop_after is None and reached:
                    self.stop_after = self.step
                final = self.step >= t.iterations or self.stop_after is not None
                if t.log_every > 0 and (self.step % t.log_every == 0 or final):
                    self._log_step(loss, mul, mom)
                if bar is not None:
                    r = self.result
                    bar.update(1, info=f"loss {r.train_loss:.4f}" if r.train_loss is not None else "")
                if SCRIPT_CHECKPOINTS and self.ckpt_root is not None and self.step % t.checkpoint_every == 0:
                    with clock.paused():
                        self.checkpoint()
        finally:
            clock.pause()

    def _log_step(self, loss: torch.Tensor, mul: float, mom: float) -> None:
        step = self.step
        lval = D.all_reduce(loss.detach().clone(), "avg").item()
        elapsed = self.clock.elapsed_s
        log_step, log_elapsed = self._log_mark
        dt = max(elapsed - log_elapsed, 1e-12)
        tok_s = (step - log_step) * self.step_tokens / dt
        step_avg_ms = 1000.0 * elapsed / max(step, 1)
        self.result.losses.append((step, lval))
        self.result.train_loss = lval
        self.ctx.log.info(
            f"step:{step}/{self.t.iterations} train_loss:{lval:.4f} lr_mul:{mul:.4f} train_time:{elapsed * 1000:.0f}ms "
            f"step_avg:{step_avg_ms:.2f}ms tok/s:{tok_s:.0f}"
        )
        self.ctx.log.metric(event="train", step=step, train_loss=lval, lr_mul=mul, muon_momentum=mom,
                            train_time_s=elapsed, step_avg_ms=step_avg_ms, tok_s=tok_s)
        self._log_mark = (step, elapsed)

    def finish(self) -> TrainResult:
        """Fill in the result: steps, seconds, tokens, why it stopped, peak memory."""
        result, step, clock, iters = self.result, self.step, self.clock, self.t.iterations
        result.steps = step
        result.train_seconds = clock.elapsed_s
        result.tokens = self.tokens
        result.stopped_by = "wallclock" if (self.stop_after is not None and step < iters) else "iterations"
        result.compiled_graphs = self.graphs_at_start - self.graphs_at_entry
        result.compiled_in_clock = compiled_graph_count() - self.graphs_at_start
        if self.use_compile and result.compiled_in_clock:
            self.ctx.log.info(f"WARNING: torch.compile built {result.compiled_in_clock} graph(s) while the training "
                              "clock ran (a layout or guard the compile warmup did not cover; its compile time was timed)")
        if result.stopped_by == "wallclock":
            self.ctx.log.info(f"stopping_early: wallclock_cap train_time:{clock.elapsed_s * 1000:.0f}ms step:{step}/{iters}")
        if self.device.type == "cuda":
            result.peak_memory_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.ctx.log.info(f"peak memory allocated: {result.peak_memory_mib:.0f} MiB")
        self.ctx.log.metric(event="train_end", steps=step, train_seconds=result.train_seconds,
                            stopped_by=result.stopped_by, tokens=self.tokens, warmup_seconds=result.warmup_seconds,
                            compiled_graphs=result.compiled_graphs, compiled_in_clock=result.compiled_in_clock)
        return result
