"""The model a recipe describes: the baseline GPT changed by the ``golf_build_model`` transforms."""
from __future__ import annotations

import torch
from torch import nn

from ..context import RunContext
from ..plugins import ActivePlugins
from ..recipe import Recipe


def build_model(recipe: Recipe, plugins: ActivePlugins, ctx: RunContext) -> nn.Module:
    """The baseline GPT from ``[model]``, changed by every ``golf_build_model`` transform in
    recipe order, then laid out in the run's dtypes on its device."""
    from ..model import prepare_for_device

    with ctx.in_phase("build"):
        model = _build_bare(recipe, plugins, ctx)
        prepare_for_device(model, ctx.device, dtype=recipe.model.dtype)
        if ctx.device.type == "cuda" and ctx.dtype == torch.bfloat16 and getattr(model, "attention_backend", "") == "sdpa":
            from ..model import use_baseline_sdpa_kernels

            use_baseline_sdpa_kernels()  # the baseline's flash-only SDPA kernel
    return model


def count_params(recipe: Recipe, plugins: ActivePlugins) -> int:
    """Parameter count of the recipe's model (built on the meta device, no data needed)."""
    from ..model import count_parameters

    ctx = RunContext(recipe=recipe, plugins=plugins, device=torch.device("cpu"))
    with torch.device("meta"):
        model = _build_bare(recipe, plugins, ctx)
    return count_parameters(model)


def _build_bare(recipe: Recipe, plugins: ActivePlugins, ctx: RunContext) -> nn.Module:
    from ..model import GPT, GPTConfig

    cfg = GPTConfig.from_section(recipe.model, recipe.data.vocab_size)
    from ..model.seam_owners import seam_owner_check

    model = GPT(cfg)
    return plugins.transform("golf_build_model", "model", model, ctx=ctx, after=seam_owner_check(model))
