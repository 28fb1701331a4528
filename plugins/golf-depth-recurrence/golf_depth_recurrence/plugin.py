"""golf plugin ``depth-recurrence``: looped layers with shared weights (techniques §2; pg_core §5.3).

Phases:

* build: install the schedule (and, #1204 form with untie, the untied passes); looping is off.
* compile warmup: one extra warmup state with looping on, so both graphs exist before the clock.
* train start: looping off (or as a resumed checkpoint left it).
* step end: switch looping on once ``progress.frac >= enable_at`` (#1394) or
  ``progress.step >= start_step`` (#1204; untied weights are copied from the shared ones then);
  progressive (#1412, ``phase2_at > 0``): stage 1 (segment twice) at ``enable_at``, the full
  loop at ``phase2_at``.
* train end: on (if the run ended before the switch), so pre-quant eval, calibration and the
  artifact all see the looped model, as #1394's GPTQ calibration does.
* artifact load: on.
* checkpoints: the looping flag and whether untied weights were primed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from golf_core import GolfError, Options, StashKey, TechniqueInfo, hookimpl
from golf_depth_recurrence.install import install_loop, install_repeat, prime_untied, sync_untied
from golf_depth_recurrence.progressive import ProgressiveSchedule, install_progressive


class DepthRecurrenceOptions(Options):
    """Options of ``depth-recurrence``. ``mode`` picks the form; the other form's keys are unused."""

    mode: Literal["fraction", "step"] = Field(
        "fraction", description="'fraction': #1394 form (num_loops/loop_start/loop_end/enable_at); 'step': #1204 form (recur_layers/start_step/untie_mlp)")
    num_loops: int = Field(2, ge=1, description="fraction mode: extra passes of the segment (it runs num_loops + 1 times)")
    loop_start: int = Field(4, ge=0, description="fraction mode: first physical layer of the looped segment")
    loop_end: int = Field(5, ge=0, description="fraction mode: last physical layer of the looped segment (inclusive)")
    enable_at: float = Field(0.5, ge=0.0, le=1.0, description="fraction mode: switch looping on when progress.frac (training clock) reaches this")
    phase2_at: float = Field(0.0, ge=0.0, le=1.0, description="fraction mode: 0 = off; > 0 = progressive recurrence (#1412 LOOP_PHASE2_AT): from enable_at the segment runs twice, from phase2_at num_loops + 1 times")
    recur_layers: list[int] = Field(default_factory=lambda: [4, 5], description="step mode: physical layers that run once more")
    start_step: int = Field(3000, ge=0, description="step mode: switch recurrence on after this many steps")
    untie_mlp: Literal["none", "down", "full"] = Field(
        "none", description="step mode: give the repeated passes their own MLP weights (down: proj only; full: fc and proj)")

    @model_validator(mode="after")
    def _check(self) -> "DepthRecurrenceOptions":
        if self.loop_start > self.loop_end:
            raise ValueError(f"loop_start {self.loop_start} is after loop_end {self.loop_end}")
        if not self.recur_layers or min(self.recur_layers) < 0 or len(set(self.recur_layers)) != len(self.recur_layers):
            raise ValueError(f"recur_layers {self.recur_layers} must be distinct non-negative layer indices")
        if self.phase2_at > 0 and (self.mode != "fraction" or self.phase2_at < self.enable_at):
            raise ValueError(f"phase2_at {self.phase2_at} needs mode = 'fraction' and phase2_at >= enable_at ({self.enable_at})")
        if self.mode == "fraction" and self.untie_mlp != "none":
            raise ValueError("untie_mlp needs mode = 'step' (the #1204 form); #1394's loops are fully shared")
        return self


def hinge_segment(num_layers: int, length: int) -> tuple[int, int]:
    """A ``length``-layer segment ending at the U-Net hinge ``L//2`` (where #1394 loops 4,5 of 11)."""
    length = max(1, min(length, num_layers))
    end = min(num_layers - 1, num_layers // 2)
    return max(0, end - length + 1), end


def _tiny(opts: DepthRecurrenceOptions, recipe: Any) -> DepthRecurrenceOptions:
    """Fit the looped layers into the model (a segment of the same length at the hinge when
    they do not fit) and start #1204-style recurrence at half of the tiny run's steps."""
    L = recipe.model.num_layers
    upd: dict[str, Any] = {}
    if opts.loop_end >= L:
        upd["loop_start"], upd["loop_end"] = hinge_segment(L, opts.loop_end - opts.loop_start + 1)
    if max(opts.recur_layers) >= L:
        s, e = hinge_segment(L, len(opts.recur_layers))
        upd["recur_layers"] = list(range(s, e + 1))
    upd["start_step"] = min(opts.start_step, recipe.train.iterations // 2)
    return opts.model_copy(update=upd)


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="depth-recurrence", options=DepthRecurrenceOptions,
        summary="run a segment of layers several times with shared weights, switched on during training",
        lineage=["#1204", "#1260", "#1285", "#1394", "#1412", "#1493"], legality="fixed-predictor", required_on_load=True,
        reported_delta="-0.002..-0.003 BPB (#1204/#1260); ~1.4x step time once on (#1394: 7.74M -> 5.5M tok/s)",
        tiny=_tiny,
    ))


@dataclass
class _LoopRun:
    """Private state of one run: the trained model, the switch event, a pending resume state."""

    model: Any = None
    primed: bool = False
    enabled_step: Optional[int] = None
    enabled_frac: Optional[float] = None
    phase2_step: Optional[int] = None
    phase2_frac: Optional[float] = None
    pending: Optional[dict] = None


LOOP_RUN: StashKey[_LoopRun] = StashKey("depth-recurrence")


def _run(ctx) -> _LoopRun:
    return ctx.stash.setdefault(LOOP_RUN, _LoopRun())


def _unwrap(model: Any) -> Any:
    """The plain GPT under torch.compile / DDP wrappers."""
    for attr in ("_orig_mod", "module"):
        while hasattr(model, attr) and hasattr(getattr(model, attr), "schedule"):
            model = getattr(model, attr)
    return model


def _switch_on(model: Any, opts: DepthRecurrenceOptions, run: _LoopRun) -> None:
    if opts.mode == "step" and opts.untie_mlp != "none" and not run.primed:
        prime_untied(model)
        run.primed = True
    model.looping_active = True


@hookimpl
def golf_build_model(model, opts):
    """Install the looped schedule (looping off)."""
    L = model.config.num_layers
    if opts.mode == "fraction":
        if opts.loop_end >= L:
            raise GolfError(f"options.depth-recurrence.loop_end = {opts.loop_end}: the model has {L} layers (0..{L - 1})")
        if opts.phase2_at > 0:
            install_progressive(model, opts.num_loops, opts.loop_start, opts.loop_end)
        else:
            install_loop(model, opts.num_loops, opts.loop_start, opts.loop_end)
    else:
        if max(opts.recur_layers) >= L:
            raise GolfError(f"options.depth-recurrence.recur_layers = {opts.recur_layers}: the model has {L} layers (0..{L - 1})")
        install_repeat(model, opts.recur_layers, opts.untie_mlp)
    return model


@hookimpl
def golf_compile_warmup(model, ctx, opts):
    """One extra warmup state: looping on (so its compiled graph exists before the clock)."""
    m = _unwrap(model)
    sync_untied(m)
    _run(ctx).model = m

    def enter_stage(stage):
        def enter(target):
            """Turn looping on (at ``stage`` of a progressive schedule); return the restorer."""
            t = _unwrap(target)
            prev = t.looping_active
            progressive = isinstance(t.schedule, ProgressiveSchedule)
            prev_stage = t.schedule.stage if progressive else None
            if progressive:
                t.schedule.stage = stage
            t.looping_active = True

            def exit_():
                """Restore the looping flag (and the stage)."""
                t.looping_active = prev
                if progressive:
                    t.schedule.stage = prev_stage

            return exit_

        return enter

    if isinstance(m.schedule, ProgressiveSchedule):
        return [enter_stage(k) for k in range(1, len(m.schedule.stages) + 1)]
    return [enter_stage(None)]


@hookimpl
def golf_on_train_start(model, ctx, opts):
    """Looping off for a fresh run (a resumed run's flags arrive through ``golf_load_state_dict``,
    before or after this hook)."""
    m = _unwrap(model)
    run = _run(ctx)
    run.model = m
    sync_untied(m)
    m.looping_active = False
    if run.pending is not None:
        _apply_state(run, run.pending)


def _apply_state(run: _LoopRun, state: dict) -> None:
    run.pending = None
    run.primed = bool(state.get("primed", False))
    run.enabled_step = state.get("enabled_step")
    run.enabled_frac = state.get("enabled_frac")
    run.phase2_step = state.get("phase2_step")
    run.phase2_frac = state.get("phase2_frac")
    if isinstance(run.model.schedule, ProgressiveSchedule) and state.get("stage") is not None:
        run.model.schedule.stage = int(state["stage"])
    run.model.looping_active = bool(state.get("looping_active", False))


@hookimpl
def golf_on_step_end(model, progress, ctx, opts):
    """Switch looping on at ``enable_at`` of the clock (fraction) or after ``start_step`` steps;
    progressive: stage 1 at ``enable_at``, stage 2 at ``phase2_at`` (one switch per step, as #1412)."""
    m = _unwrap(model)
    progressive = isinstance(m.schedule, ProgressiveSchedule)
    if m.looping_active:
        if progressive and m.schedule.stage < len(m.schedule.stages) and progress.frac >= opts.phase2_at:
            m.schedule.stage = len(m.schedule.stages)
            run = _run(ctx)
            run.phase2_step, run.phase2_frac = int(progress.step), float(progress.frac)
            ctx.log.info(f"layer_loop:phase2 step:{progress.step} frac:{progress.frac:.3f}")
            ctx.log.metric(event="layer_loop", step=int(progress.step), frac=float(progress.frac), stage=m.schedule.stage)
        return
    if opts.mode == "fraction":
        due = progress.frac >= opts.enable_at
    else:
        due = progress.step >= opts.start_step
    if not due:
        return
    run = _run(ctx)
    if progressive:
        m.schedule.stage = 1
    _switch_on(m, opts, run)
    run.enabled_step, run.enabled_frac = int(progress.step), float(progress.frac)
    ctx.log.info(f"layer_loop:enabled step:{progress.step} frac:{progress.frac:.3f}")
    ctx.log.metric(event="layer_loop", step=int(progress.step), frac=float(progress.frac), looping_active=True)


@hookimpl
def golf_on_train_end(model, ctx, opts):
    """Keep looping on after training (pre-quant eval, calibration, artifact)."""
    m = _unwrap(model)
    sync_untied(m)
    if isinstance(m.schedule, ProgressiveSchedule) and m.schedule.stage != len(m.schedule.stages):
        m.schedule.stage = len(m.schedule.stages)
        ctx.log.info("layer_loop:phase2 at train end (the phase-2 point was not reached)")
    if not m.looping_active:
        _switch_on(m, opts, _run(ctx))
        ctx.log.info("layer_loop:enabled at train end (the switch point was not reached)")


@hookimpl
def golf_state_dict(ctx, opts):
    """The looping flag (and progressive stage), whether untied weights were primed, and when
    looping switched on."""
    run = _run(ctx)
    active = bool(run.model.looping_active) if run.model is not None else False
    stage = run.model.schedule.stage if run.model is not None and isinstance(run.model.schedule, ProgressiveSchedule) else None
    return {"looping_active": active, "primed": run.primed, "enabled_step": run.enabled_step,
            "enabled_frac": run.enabled_frac, "stage": stage, "phase2_step": run.phase2_step,
            "phase2_frac": run.phase2_frac}


@hookimpl
def golf_load_state_dict(state, ctx, opts):
    """Restore the checkpoint's flags onto the training model (or keep them until
    ``golf_on_train_start`` names the model)."""
    run = _run(ctx)
    run.pending = dict(state)
    if run.model is not None:
        _apply_state(run, run.pending)


@hookimpl
def golf_on_artifact_load(model, ctx, opts):
    """The decoded model evaluates with looping on."""
    m = _unwrap(model)
    sync_untied(m)
    if isinstance(m.schedule, ProgressiveSchedule):
        m.schedule.stage = len(m.schedule.stages)
    m.looping_active = True
    return model


@hookimpl
def golf_summary(result, ctx, opts):
    """Record when looping switched on."""
    run = _run(ctx)
    result["depth-recurrence"] = {"mode": opts.mode, "enabled_step": run.enabled_step, "enabled_frac": run.enabled_frac}
    if opts.phase2_at > 0:
        result["depth-recurrence"].update(phase2_step=run.phase2_step, phase2_frac=run.phase2_frac)
