"""golf plugin ``prequant-ttt``: AdamW fine-tune before quantization, on validation tokens (#1306 /
#1423, trains on validation data) or on a training slice inside the training clock."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field

from golf_core import Options, StashKey, TechniqueInfo, hookimpl

from .adapt import PrequantConfig, prequant_adapt
from .sequences import rank_sequences, training_slice

#: Timed training seconds after the last step (``progress.elapsed_s``), for the clock budget.
TRAIN_ELAPSED: StashKey[float] = StashKey("prequant-ttt.train_elapsed")
#: The run's summary entry.
STATS: StashKey[dict] = StashKey("prequant-ttt.stats")
#: Training-slice sequences kept under ``--tiny``.
TINY_SLICE_SEQS = 64


class PrequantTTTOptions(Options):
    """Options of ``prequant-ttt`` (defaults: PR #1306 / #1423, validation data)."""

    data: Literal["val", "train"] = Field("val", description="'val': validation tokens via ctx.read_validation, as #1306/#1423 (marks the run trains-on-val); 'train': the tail of a training shard, inside the training clock (#1554)")
    epochs: int = Field(6, ge=0, description="passes over the data (#1306/#1423: 6; #1554 train slice: 3)")
    lr: float = Field(5e-4, gt=0, description="AdamW peak learning rate (#1306/#1423: 5e-4)")
    freeze_blocks: int = Field(2, ge=0, description="blocks[0:N] are not trained (#1306/#1423: 2)")
    freeze_matrices: bool = Field(True, description="freeze the frozen blocks' matrices too; false: only their scales and "
                                  "gains, as #1306/#1423 did (their matrices live in model-level parameter banks, which "
                                  "freezing blocks[0:N] does not reach)")
    batch_seqs: int = Field(32, ge=1, description="sequences per micro-batch and rank (#1306: 32)")
    grad_clip: float = Field(1.0, ge=0, description="global grad-norm clip per step; 0: none (#1306: 1.0)")
    cosine: bool = Field(True, description="cosine from lr to 0.1 lr over the epochs, stepped per epoch (#1306: on)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (#1306: 0)")
    seq_len: Optional[int] = Field(None, ge=2, description="sequence length; unset: [train] train_seq_len (#1306/#1423: 2048)")
    train_tokens: int = Field(131072, ge=2, description="data='train': tokens taken from the end of the training shard (#1554: 131072)")
    train_shard: int = Field(-1, description="data='train': which training shard (index in name order; -1: the last, as #1554's fineweb_train_000079)")
    leave_seconds: float = Field(12.0, ge=0, description="data='train' under a wallclock cap: seconds of the training clock left for what follows (GPTQ calibration, #1394: 12)")
    max_seconds: Optional[float] = Field(None, gt=0, description="stop after this many seconds (between steps); unset: no limit besides the training clock")


def _legality(opts: PrequantTTTOptions) -> str:
    return "trains-on-val" if opts.data == "val" else "fixed-predictor"


def _tiny(opts: PrequantTTTOptions, recipe: Any) -> PrequantTTTOptions:
    """Under --tiny: a training slice of at most 64 tiny sequences."""
    seq = int(opts.seq_len or recipe.train.train_seq_len)
    return opts.model_copy(update={"train_tokens": min(opts.train_tokens, TINY_SLICE_SEQS * seq)})


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="prequant-ttt", options=PrequantTTTOptions,
        summary="AdamW fine-tune of the trained weights before quantization (6 epochs, lr 5e-4, 2 frozen blocks): on validation tokens (#1306/#1423) or a training slice in the clock",
        lineage=["#1006", "#1306", "#1364", "#1416", "#1423", "#1554"],
        legality="trains-on-val", legality_of=_legality, required_on_load=False, tiny=_tiny,
        reported_delta="on validation data: #1306 pre-quant 1.1364 -> 1.1095 (-0.027), #1423 1.1026 -> 1.0687 (-0.034), 84-112 s; "
                       "on a training slice: no at-scale measurement, about zero expected",
    ))


def config_of(opts: PrequantTTTOptions) -> PrequantConfig:
    """The ``PrequantConfig`` of the options."""
    return PrequantConfig(epochs=opts.epochs, lr=opts.lr, freeze_blocks=opts.freeze_blocks, batch_seqs=opts.batch_seqs,
                          grad_clip=opts.grad_clip, cosine=opts.cosine, weight_decay=opts.weight_decay,
                          freeze_matrices=opts.freeze_matrices)


def clock_budget(opts: PrequantTTTOptions, train: Any, train_elapsed: Optional[float]) -> Optional[float]:
    """Seconds the fine-tune may take (None: unlimited).

    data='train' under a wallclock cap: what is left of ``max_wallclock_seconds`` after the timed
    training seconds, minus ``leave_seconds`` (so it runs inside the training clock; give it time
    by raising ``[train] reserve_seconds`` above ``leave_seconds``). Always at most ``max_seconds``.
    """
    budget = opts.max_seconds
    if opts.data == "train" and train.max_wallclock_seconds > 0:
        left = train.max_wallclock_seconds - (train_elapsed or 0.0) - opts.leave_seconds
        budget = left if budget is None else min(budget, left)
    return budget


@hookimpl
def golf_on_train_start(ctx: Any, opts: PrequantTTTOptions) -> None:
    """Warn when data='train' under a cap has no clock time reserved for it."""
    t = ctx.recipe.train
    if opts.data == "train" and t.max_wallclock_seconds > 0 and t.reserve_seconds <= opts.leave_seconds:
        ctx.log.info(f"prequant-ttt: WARNING [train] reserve_seconds={t.reserve_seconds} leaves no training-clock time after "
                     f"leave_seconds={opts.leave_seconds}; raise reserve_seconds by the seconds the fine-tune needs")


@hookimpl
def golf_on_step_end(progress: Any, ctx: Any, opts: PrequantTTTOptions) -> None:
    """Remember the timed training seconds (for the clock budget)."""
    ctx.stash[TRAIN_ELAPSED] = float(progress.elapsed_s)


@hookimpl
def golf_pre_quant(model: Any, ctx: Any, opts: PrequantTTTOptions) -> Any:
    """Fine-tune the model on the chosen data."""
    seq_len = int(opts.seq_len or ctx.recipe.train.train_seq_len)
    if opts.data == "val":
        tokens = ctx.read_validation("prequant-ttt: AdamW fine-tune on validation tokens before quantization (#1306/#1423)")
        source = "validation"
    else:
        tokens = training_slice(ctx.data.train_files, opts.train_tokens, opts.train_shard)
        source = f"training shard {opts.train_shard} tail"
    x, y = rank_sequences(tokens, seq_len, ctx.rank, ctx.world_size)
    budget = clock_budget(opts, ctx.recipe.train, ctx.stash.get(TRAIN_ELAPSED))
    entry = {"data": opts.data, "tokens": int(tokens.numel()), "seq_len": seq_len, "budget_seconds": budget}
    if budget is not None and budget <= 0:
        ctx.log.info(f"prequant-ttt: skipped, no training-clock time left (budget {budget:.2f} s)")
        ctx.stash[STATS] = {**entry, "skipped": True, "steps": 0}
        return model
    ctx.log.info(f"prequant-ttt: data:{source} tokens:{tokens.numel()} seqs(rank):{x.shape[0]} epochs:{opts.epochs} "
                 f"lr:{opts.lr} freeze_blocks:{opts.freeze_blocks} budget_s:{budget}")
    stats = prequant_adapt(model, x, y, config_of(opts), device=ctx.device, autocast=ctx.autocast,
                           deadline_s=budget, log=ctx.log.info)
    for e, loss in enumerate(stats.epoch_loss):
        ctx.log.metric(event="prequant_ttt", epoch=e + 1, loss=loss)
    ctx.stash[STATS] = {**entry, "skipped": False, "steps": stats.steps, "epochs_done": stats.epochs_done,
                        "epoch_loss": stats.epoch_loss, "seconds": stats.seconds,
                        "stopped_by_deadline": stats.stopped_by_deadline, "trained_params": stats.trained_params}
    ctx.log.info(f"prequant-ttt: steps:{stats.steps} epochs:{stats.epochs_done} seconds:{stats.seconds:.2f}"
                 + (" (stopped by the clock)" if stats.stopped_by_deadline else ""))
    return model


@hookimpl
def golf_summary(result: dict, ctx: Any, opts: PrequantTTTOptions) -> None:
    """Add ``result["prequant-ttt"]``."""
    stats = ctx.stash.get(STATS)
    if stats is not None:
        result["prequant-ttt"] = stats
