"""golf plugin ``ema``: fp32 EMA of the weights, updated every step, swapped in at pre-quant."""
from __future__ import annotations

from typing import Any

from golf_core import Options, StashKey, TechniqueInfo, hookimpl
from golf_core.api import PluginError
from pydantic import Field

from .ema import DEFAULT_DECAY, WeightEMA

#: The run's EMA, between the train and pre-quant phases.
EMA_STATE: StashKey[WeightEMA] = StashKey("ema.state")
#: True when the EMA in the stash came from a checkpoint (so train start must keep it).
EMA_RESTORED: StashKey[bool] = StashKey("ema.restored")

#: Steps of the #1394 runs (4986-4992, pg_core.md §5.10); ``--tiny`` keeps the half-life at
#: the same fraction of the run.
REFERENCE_STEPS = 5000


class EMAOptions(Options):
    """Options of ``ema`` (default: PR #1394)."""

    decay: float = Field(DEFAULT_DECAY, ge=0.0, lt=1.0, description="weight of the old average at every step (0.997: half-life ~231 steps)")


def _tiny(opts: EMAOptions, recipe: Any) -> EMAOptions:
    """Under --tiny: decay**(5000/iterations), the same half-life relative to the run length."""
    iters = max(int(recipe.train.iterations), 1)
    return EMAOptions(decay=min(opts.decay, opts.decay ** (REFERENCE_STEPS / iters)))


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="ema",
        options=EMAOptions,
        summary="fp32 EMA of the whole state dict (decay 0.997, every step, from the initial weights), applied before quantization",
        lineage=["#198", "#1306", "#1394"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="-0.001 to -0.0014 BPB vs the raw final weights (#1306, #1423, #1394 logs); ~140 MB GPU memory at 36M params",
        tiny=_tiny,
    ))


def _log(ctx: Any, msg: str) -> None:
    log = getattr(ctx, "log", None)
    if log is not None:
        log.info(msg)


@hookimpl
def golf_on_train_start(model: Any, ctx: Any, opts: EMAOptions) -> None:
    """Start the average from the model's (restored) initial weights, or keep a resumed one."""
    ema = ctx.stash.get(EMA_STATE)
    if ema is not None and ctx.stash.get(EMA_RESTORED, False):
        device = next(iter(model.state_dict().values())).device
        ema.to(device)
        ema.decay = opts.decay
        _log(ctx, f"ema: resumed decay:{opts.decay} updates:{ema.updates}")
        return
    ctx.stash[EMA_STATE] = WeightEMA(model, decay=opts.decay)
    ctx.stash[EMA_RESTORED] = False
    _log(ctx, f"ema: started decay:{opts.decay} tensors:{len(ctx.stash[EMA_STATE].shadow)}")


@hookimpl
def golf_on_step_end(model: Any, ctx: Any, opts: EMAOptions) -> None:
    """``ema = decay * ema + (1 - decay) * w`` after every optimizer step."""
    ema = ctx.stash.get(EMA_STATE)
    if ema is None:
        raise PluginError("ema: golf_on_step_end was called before golf_on_train_start")
    ema.update(model)


@hookimpl
def golf_pre_quant(model: Any, ctx: Any, opts: EMAOptions) -> Any:
    """Load the averaged weights into the model (cast to each entry's dtype)."""
    ema = ctx.stash.get(EMA_STATE)
    if ema is None:
        _log(ctx, "ema: no average was taken (training never started); weights unchanged")
        return model
    ema.copy_to(model)
    _log(ctx, f"ema: applied EMA weights decay:{ema.decay} updates:{ema.updates}")
    return model


@hookimpl
def golf_state_dict(ctx: Any, opts: EMAOptions) -> Any:
    """The average for a checkpoint."""
    ema = ctx.stash.get(EMA_STATE)
    return None if ema is None else ema.state_dict()


@hookimpl
def golf_load_state_dict(state: Any, ctx: Any, opts: EMAOptions) -> None:
    """Restore the average of a checkpoint; train start keeps it instead of restarting."""
    ema = ctx.stash.get(EMA_STATE)
    if ema is None:
        ema = WeightEMA.from_state_dict(state, decay=opts.decay)
    else:
        ema.load_state_dict(state)
    ctx.stash[EMA_STATE] = ema
    ctx.stash[EMA_RESTORED] = True
    _log(ctx, f"ema: restored from checkpoint updates:{ema.updates}")
