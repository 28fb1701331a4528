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
6. the timed loop: lr multiplier and Muon momentum per step, ``grad_accum`` micro-steps with
   ``loss / grad_accum`` and DDP gradient sync on the last one only, optional global-norm
   clipping, the optimizers, ``golf_on_step_end`` (outside the compiled graph), a log line every
   ``log_every`` steps, validation every ``val_loss_every`` steps with the clock paused, the
   all-ranks stop at the wallclock cap, a checkpoint every ``checkpoint_every`` steps;
7. ``golf_on_train_end``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..config import TrainSection
from ..errors import GolfError, RecipeError
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
    written; peak_memory_mib: CUDA peak allocated memory (None on CPU).
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

    def __init__(self, fwd: nn.Module, opt: OptimizerSet, ctx: Any, accum: int, local_tokens: int, seq_len: int):
        self.fwd = fwd
        self.opt = opt
        self.ctx = ctx
        self.accum = accum
        self.local_tokens = local_tokens
        self.seq_len = seq_len
        self.ddp = isinstance(fwd, torch.nn.parallel.DistributedDataParallel)
        self.device = ctx.device
        self.non_blocking = ctx.device.type == "cuda"

    def __call__(self, loader: Any, lr_mul: float, momentum: float) -> torch.Tensor:
        """Run one step and return the mean micro-batch loss (a detached 0-d tensor)."""
        opt = self.opt
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device, dtype=torch.float32)
        scale = 1.0 / self.accum
        for micro in range(self.accum):
            if self.ddp:
                self.fwd.require_backward_grad_sync = micro == self.accum - 1
            x, y = loader.next_batch(self.local_tokens, self.seq_len)
            x = x.to(self.device, non_blocking=self.non_blocking)
            y = y.to(self.device, non_blocking=self.non_blocking)
            with self.ctx.autocast():
                loss = self.fwd(x, y)
            total += loss.detach().float()
            (loss * scale).backward()
        opt.set_muon_momentum(momentum)
        opt.set_lr_mul(lr_mul)
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
    t: TrainSection = ctx.recipe.train
    device: torch.device = ctx.device
    world = int(ctx.world_size)
    accum = grad_accum_steps(t, world)
    local_tokens = micro_batch_tokens(t, world, accum)
    step_tokens = local_tokens * world * accum
    if world > 1 and not D.is_distributed():
        raise GolfError(f"ctx.world_size is {world} but torch.distributed is not initialized; launch with torchrun")
    use_compile = resolve_compile(t, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)

    if optimizers is None:
        optimizers = configure_optimizers(model, ctx, compile_ns=use_compile)
    optimizers.check_covers(model)

    ckpt_root: Optional[Path] = None
    if t.checkpoint_every > 0:
        if checkpoint_dir is not None:
            ckpt_root = Path(checkpoint_dir)
        elif ctx.out_dir is not None:
            ckpt_root = Path(ctx.out_dir) / "checkpoints"
        else:
            raise GolfError("[train] checkpoint_every is set but the run has no output folder for checkpoints")

    schedule = LRSchedule.from_section(t)
    momentum = MomentumWarmup.from_section(t)
    clock = TrainClock(schedule.cap_s, sync=_sync(device))

    model.train()
    fwd: nn.Module = torch.compile(model, dynamic=False, fullgraph=True) if use_compile else model
    if world > 1:
        fwd = torch.nn.parallel.DistributedDataParallel(
            fwd, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
        )
    stepper = _Stepper(fwd, optimizers, ctx, accum, local_tokens, t.train_seq_len)

    def new_loader() -> Any:
        return make_train_loader(ctx)

    loader = new_loader()

    # -- compile warmup, undone -------------------------------------------------------------
    warm_t0 = time.perf_counter()
    if t.warmup_steps > 0:
        model_snap = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        opt_snap = copy.deepcopy(optimizers.state_dict())
        for _ in range(t.warmup_steps):
            stepper(loader, 1.0, t.muon_momentum)
        for enter in _warmup_callables(ctx, model):
            leave = enter(model)
            try:
                for _ in range(t.warmup_steps):
                    stepper(loader, 1.0, t.muon_momentum)
            finally:
                if callable(leave):
                    leave()
        with torch.no_grad():
            model.load_state_dict(model_snap, strict=True)
        optimizers.load_state_dict(opt_snap)
        optimizers.zero_grad(set_to_none=True)
        del model_snap, opt_snap
        loader = new_loader()
        s = _sync(device)
        if s:
            s()
        ctx.log.info(f"warmup_steps:{t.warmup_steps} compile:{use_compile} warmup_time:{time.perf_counter() - warm_t0:.2f}s")
    if isinstance(fwd, torch.nn.parallel.DistributedDataParallel):
        fwd.require_backward_grad_sync = True
    warmup_seconds = time.perf_counter() - warm_t0

    # -- resume ------------------------------------------------------------------------------
    step = 0
    stop_after: Optional[int] = None
    tokens = 0
    result = TrainResult(steps=0, train_seconds=0.0, stopped_by="iterations", grad_accum_steps=accum,
                         warmup_seconds=warmup_seconds)
    plugin_states: Optional[dict[str, Any]] = None
    rng_state: Optional[dict[str, Any]] = None
    if resume_from is not None:
        state, shared, meta = load_checkpoint(resume_from)
        if shared is None or "model" not in shared:
            raise GolfError(f"checkpoint {resume_from!s} holds no model weights")
        with torch.no_grad():
            model.load_state_dict(shared["model"], strict=True)
        optimizers.load_state_dict(state["optimizers"])
        if not hasattr(loader, "load_state_dict"):
            raise GolfError(f"the training loader {type(loader).__name__} has no load_state_dict(); it cannot resume")
        loader.load_state_dict(state["loader"])
        clock.load_state_dict(state["clock"])
        step = int(state["step"])
        loop_state = state.get("loop", {})
        stop_after = loop_state.get("stop_after_step")
        tokens = int(loop_state.get("tokens", 0))
        result.losses = [tuple(x) for x in loop_state.get("losses", [])]
        result.val_history = list(loop_state.get("val_history", []))
        plugin_states = state.get("plugins", {})
        rng_state = state["rng"]
        result.resumed_from = str(resume_from)
        result.resumed_step = step
        ctx.log.info(f"resume:{resume_from} step:{step} train_time:{clock.elapsed_s * 1000:.0f}ms")

    ctx.plugins.observe("golf_on_train_start", model=model, ctx=ctx)
    if plugin_states:
        _restore_plugins(ctx, plugin_states)
    if rng_state is not None:
        restore_rng_state(rng_state)

    def checkpoint() -> None:
        assert ckpt_root is not None
        if not (hasattr(loader, "state_dict") and callable(loader.state_dict)):
            raise GolfError(f"the training loader {type(loader).__name__} has no state_dict(); it cannot be checkpointed")
        plugin_state = ctx.plugins.collect("golf_state_dict", ctx=ctx)
        state = {
            "step": step,
            "optimizers": optimizers.state_dict(),
            "loader": loader.state_dict(),
            "rng": capture_rng_state(),
            "clock": clock.state_dict(),
            "loop": {
                "stop_after_step": stop_after,
                "tokens": tokens,
                "losses": [list(x) for x in result.losses],
                "val_history": result.val_history,
            },
            "plugins": plugin_state,
        }
        shared = {"model": model.state_dict()} if ctx.rank == 0 else None
        path = save_checkpoint(ckpt_root, step, state, shared, keep_last=keep_checkpoints,
                               meta={"plugins": list(ctx.plugins.order), "elapsed_s": clock.elapsed_s})
        result.checkpoints.append(str(path))
        ctx.log.info(f"checkpoint:{path} step:{step}")
        ctx.log.metric(event="checkpoint", step=step, path=str(path))

    bar = None
    old_printer = None
    if progress and ctx.rank == 0:
        from ..progress import Progress

        bar = Progress(max(t.iterations - step, 1), "train", enabled=True)
        old_printer = getattr(ctx.log, "printer", None)
        if old_printer is not None:
            ctx.log.printer = bar.print

    # -- the timed loop ------------------------------------------------------------------------
    iters = t.iterations
    log_step, log_elapsed = step, clock.elapsed_s
    cap = schedule.cap_s
    try:
        clock.start()
        while True:
            last = step >= iters or (stop_after is not None and step >= stop_after)
            if evaluate is not None and t.val_loss_every > 0 and (last or step % t.val_loss_every == 0):
                with clock.paused():
                    metrics = dict(evaluate(model))
                    model.train()
                entry = {"step": step, "train_seconds": clock.elapsed_s, **metrics}
                result.val_history.append(entry)
                shown = " ".join(f"{k}:{v:.4f}" for k, v in metrics.items() if isinstance(v, float))
                ctx.log.info(f"step:{step}/{iters} {shown} train_time:{clock.elapsed_s * 1000:.0f}ms")
                ctx.log.metric(event="val", phase="train", **entry)
            if last:
                break
            mul = schedule(step, clock.elapsed_s)
            mom = momentum(step)
            loss = stepper(loader, mul, mom)
            step += 1
            tokens += step_tokens
            elapsed = clock.elapsed_s
            ctx.plugins.observe(
                "golf_on_step_end", model=model,
                progress=TrainProgress(step=step, elapsed_s=elapsed, frac=schedule.frac(step, elapsed), lr_mul=mul),
                ctx=ctx,
            )
            reached = cap is not None and clock.elapsed_s >= cap
            if cap is not None:
                reached = D.any_rank(reached, device)
            if stop_after is None and reached:
                stop_after = step
            final = step >= iters or stop_after is not None
            if t.log_every > 0 and (step % t.log_every == 0 or final):
                lval = D.all_reduce(loss.detach().clone(), "avg").item()
                elapsed = clock.elapsed_s
                dt = max(elapsed - log_elapsed, 1e-12)
                tok_s = (step - log_step) * step_tokens / dt
                step_avg_ms = 1000.0 * elapsed / max(step, 1)
                result.losses.append((step, lval))
                result.train_loss = lval
                ctx.log.info(
                    f"step:{step}/{iters} train_loss:{lval:.4f} lr_mul:{mul:.4f} train_time:{elapsed * 1000:.0f}ms "
                    f"step_avg:{step_avg_ms:.2f}ms tok/s:{tok_s:.0f}"
                )
                ctx.log.metric(event="train", step=step, train_loss=lval, lr_mul=mul, muon_momentum=mom,
                               train_time_s=elapsed, step_avg_ms=step_avg_ms, tok_s=tok_s)
                log_step, log_elapsed = step, elapsed
            if bar is not None:
                bar.update(1, info=f"loss {result.train_loss:.4f}" if result.train_loss is not None else "")
            if ckpt_root is not None and step % t.checkpoint_every == 0:
                with clock.paused():
                    checkpoint()
    finally:
        clock.pause()
        if bar is not None:
            bar.close()
            if old_printer is not None:
                ctx.log.printer = old_printer

    result.steps = step
    result.train_seconds = clock.elapsed_s
    result.tokens = tokens
    result.stopped_by = "wallclock" if (stop_after is not None and step < iters) else "iterations"
    if result.stopped_by == "wallclock":
        ctx.log.info(f"stopping_early: wallclock_cap train_time:{clock.elapsed_s * 1000:.0f}ms step:{step}/{iters}")
    if device.type == "cuda":
        result.peak_memory_mib = torch.cuda.max_memory_allocated(device) / 2**20
        ctx.log.info(f"peak memory allocated: {result.peak_memory_mib:.0f} MiB")
    ctx.log.metric(event="train_end", steps=step, train_seconds=result.train_seconds, stopped_by=result.stopped_by,
                   tokens=tokens, warmup_seconds=warmup_seconds)
    ctx.plugins.observe("golf_on_train_end", model=model, ctx=ctx)
    return result
