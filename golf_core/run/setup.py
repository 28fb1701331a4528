"""A run's context (plugins activated, distributed state, device, log) and a run directory's recipe."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from .. import rundir
from ..context import RunContext, resolve_device
from ..plugins import PluginRegistry, activate
from ..recipe import Recipe


def make_context(recipe: Recipe, out_dir: Optional[Path], *, reg: Optional[PluginRegistry] = None,
                 echo: bool = True) -> RunContext:
    """Activate the recipe's plugins, set up distributed state and logs."""
    from ..train.distributed import init_distributed

    plugins = activate(recipe, reg)
    # write back the validated (and, under --tiny, scaled) options so resolved.toml repeats the run
    recipe.options = {**recipe.options, **{n: o.model_dump(mode="json") for n, o in plugins.options.items()}}
    dist = init_distributed(recipe.train.device)
    device = resolve_device(recipe.train.device, dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif recipe.train.cpu_threads:
        torch.set_num_threads(recipe.train.cpu_threads)
    log = rundir.RunLog(out_dir, is_main=dist.rank == 0, echo=echo)
    from ..services import attach

    return attach(RunContext(recipe=recipe, plugins=plugins, device=device, out_dir=out_dir, rank=dist.rank,
                             world_size=dist.world_size, local_rank=dist.local_rank, log=log))

