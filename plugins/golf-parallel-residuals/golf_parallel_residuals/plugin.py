"""golf plugin ``parallel-residuals``: GPT-J single lane (#1412), split lanes (#1477), routed lanes (#1529)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_parallel_residuals.trunks import install_parallel


class ParallelResidualsOptions(Options):
    """Options of ``parallel-residuals``."""

    mode: Literal["gptj", "split", "routed"] = Field(
        "routed", description="'gptj': one stream, attention and MLP read the same input (#1412); 'split': "
                              "attention lane + MLP lane merged by a learned scalar (#1477); 'routed': two lanes "
                              "with 4 learned routing lambdas per layer (#1529 and later)")
    start_layer: int = Field(8, ge=0, description="first physical block that runs in parallel (7 in #1412/#1477/#1493/#1514, 8 from #1529)")
    resid_init: float = Field(1.1, description="routed mode: initial parallel_resid_lambdas (1.1 in #1529)")
    skip_placement: Literal["both-lanes", "lane0"] = Field(
        "both-lanes", description="lane modes: the U-Net skip of the first parallel decoder block; 'both-lanes': added "
                                  "before the lanes fork (#1477, #1529); 'lane0': the lanes fork first and the skip goes "
                                  "to lane0 only (#1530 and every later record)")


def _tiny(opts: ParallelResidualsOptions, recipe: Any) -> ParallelResidualsOptions:
    """When the start layer is past a shallower tiny model, start just after the U-Net hinge ``L//2``."""
    L = recipe.model.num_layers
    if opts.start_layer < L:
        return opts
    return opts.model_copy(update={"start_layer": min(L - 1, L // 2 + 1)})


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="parallel-residuals", options=ParallelResidualsOptions,
        summary="attention and MLP side by side from a start layer: one GPT-J stream, split lanes, or routed lanes",
        lineage=["#1412", "#1477", "#1493", "#1514", "#1529", "#1530"], legality="fixed-predictor", required_on_load=True,
        reported_delta="#1477 split lanes -0.0006 vs #1413; #1529 routed lanes -0.0040 vs #1514; #1412 gptj not isolated",
        tiny=_tiny,
    ))


@hookimpl
def golf_build_model(model, opts):
    """Install the trunk of ``mode`` (its lambdas are control tensors)."""
    install_parallel(model, opts.mode, opts.start_layer, opts.resid_init, opts.skip_placement)
    return model
