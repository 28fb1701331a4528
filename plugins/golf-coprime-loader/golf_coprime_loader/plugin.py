"""golf plugin ``coprime-loader``: the #1060 coprime-stride loader as the run's training loader."""
from __future__ import annotations

from typing import Any, Optional

from golf_core import Options, TechniqueInfo, hookimpl
from pydantic import Field

from .loader import CoprimeLoader


class CoprimeLoaderOptions(Options):
    """Options of ``coprime-loader`` (defaults: PR #1060)."""

    seed: Optional[int] = Field(
        None, ge=0, description="PCG64 seed of the batch order; unset: the record's FNV-style hash of the sorted shard path strings")
    hash_dir: Optional[str] = Field(
        None, description="hash '<hash_dir>/<shard name>' instead of the real paths, e.g. './data/datasets/fineweb10B_sp8192' reproduces the record's order")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="coprime-loader",
        options=CoprimeLoaderOptions,
        summary="coprime-stride multi-shard loader: per-shard block permutations, shard mix 8->32 over 1800 batches",
        lineage=["#726", "#1060", "#1184"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="no isolated ablation; #726 1.1194 -> 1.1147 together with a TTT change; replaced by shuffled-loader in #1394",
        conflicts=["shuffled-loader"],
    ))


@hookimpl
def golf_make_loader(ctx: Any, opts: CoprimeLoaderOptions, purpose: str) -> Any:
    """A fresh loader over the run's training shards (training and calibration alike)."""
    loader = CoprimeLoader(ctx.data.train_files, ctx.rank, ctx.world_size, seed=opts.seed, hash_dir=opts.hash_dir)
    log = getattr(ctx, "log", None)
    if log is not None:
        src = "path hash" if loader.seed_from_paths else "option"
        log.info(f"coprime-loader: purpose:{purpose} shards:{len(loader.files)} seed:{loader.seed} ({src})")
    return loader
