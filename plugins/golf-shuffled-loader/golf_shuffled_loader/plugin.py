"""golf plugin ``shuffled-loader``: #1394's ShuffledSequenceLoader as the run's training loader."""
from __future__ import annotations

from typing import Any

from golf_core import Options, TechniqueInfo, hookimpl
from pydantic import Field

from .loader import ShuffledSequenceLoader


class ShuffledLoaderOptions(Options):
    """Options of ``shuffled-loader`` (default: PR #1394)."""

    seed_with_rank_only: bool = Field(
        True, description="true: PCG64(rank) as #1394, the same data order for every [train] seed; false: PCG64([seed, rank])")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="shuffled-loader",
        options=ShuffledLoaderOptions,
        summary="#1394 loader: shards [rank::W], random phase + permutation per shard, shard sampled by windows left",
        lineage=["#1394"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="no isolated ablation; the README calls it simpler than the coprime loader it replaced",
        conflicts=["coprime-loader"],
    ))


@hookimpl
def golf_make_loader(ctx: Any, opts: ShuffledLoaderOptions, purpose: str) -> Any:
    """A fresh loader (training and calibration alike: calibration sees the first training batches)."""
    seed = None if opts.seed_with_rank_only else int(ctx.recipe.train.seed)
    loader = ShuffledSequenceLoader(ctx.data.train_files, ctx.rank, ctx.world_size,
                                    seq_len=int(ctx.recipe.train.train_seq_len), seed=seed)
    log = getattr(ctx, "log", None)
    if log is not None:
        how = "PCG64(rank), not the run seed" if seed is None else f"PCG64([{seed}, rank])"
        log.info(f"shuffled-loader: purpose:{purpose} rank_shards:{len(loader.files)} rng:{how}")
    return loader
