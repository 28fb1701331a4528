"""golf plugin ``leaky-relu-sq``: MLP activation ``leaky_relu(x, slope)**2`` (pg_core §5.2)."""
from __future__ import annotations

from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core.api import FusedSquaredReLUMLP, enable_triton_mlp
from golf_leaky_relu_sq.activation import install_leaky_relu_sq


class LeakyReLUSqOptions(Options):
    """Options of ``leaky-relu-sq``."""

    negative_slope: float = Field(0.5, ge=0, description="slope of the leaky ReLU before squaring (0.5 in #549/#1394; 0 = relu²)")


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="leaky-relu-sq", options=LeakyReLUSqOptions,
        summary="MLP activation leaky_relu(x, negative_slope) squared instead of relu squared",
        lineage=["#549", "#1394"], legality="fixed-predictor", required_on_load=True,
        reported_delta="part of the #549 and #1394 stacks; no isolated ablation in the seeds",
    ))


@hookimpl
def golf_build_model(model, opts, ctx):
    """Install the activation on every block's MLP; on CUDA, where golf's Triton kernel runs and
    equals the plain maths (``[model] fused_kernels = "auto"``), also the fused training MLP."""
    install_leaky_relu_sq(model, opts.negative_slope)
    if ctx.device.type == "cuda" and bias_free(model):
        if enable_triton_mlp(ctx.device, ctx.recipe.model.fused_kernels).used:
            for block in model.blocks[: model.config.num_layers]:  # the blocks install_leaky_relu_sq set
                block.mlp.fused = FusedSquaredReLUMLP(opts.negative_slope)
    return model


def bias_free(model) -> bool:
    """The fused MLP has no bias terms: every block's ``fc`` and ``proj`` must be bias-free."""
    return all(b.mlp.fc.bias is None and b.mlp.proj.bias is None for b in model.blocks)
