"""golf plugin ``attn-gate``: per-head gates on the attention output (T7 output, T8 dense, T9 sparse)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from golf_core import Options, TechniqueInfo, hookimpl
from golf_attn_gate.gates import install_attn_gate


class AttnGateOptions(Options):
    """Options of ``attn-gate``; the forms are mutually exclusive, as in the records (R1787 L946)."""

    mode: Literal["output", "dense", "sparse"] = Field(
        "sparse", description="'output': 2*sigmoid(W.src[:window]) (#1667); 'dense': sigmoid(W.x), W [H, dim] "
                              "(#1736); 'sparse': sigmoid(scale*W.x[:window]) (#1787 and later)")
    window: int = Field(12, ge=1, description="output/sparse: leading input channels the gate reads (GATE_WINDOW, 12)")
    src: Literal["proj", "q"] = Field("proj", description="output mode: gate input, the attention input ('proj') or the raw query projection ('q') (GATE_ATTN_SRC)")
    init_std: float = Field(0.0, ge=0.0, description="dense: normal init std of W (GATED_ATTN_INIT_STD, 0.005 as run in #1736); sparse: 0 = zero init")
    scale: float = Field(1.0, description="sparse: logit scale (SPARSE_ATTN_GATE_SCALE; 1.0 in #1787/#1851, 0.5 in #1855)")

    @model_validator(mode="after")
    def _check(self) -> "AttnGateOptions":
        if self.mode == "dense" and self.init_std <= 0:
            raise ValueError("mode 'dense' needs init_std > 0 (0.005 in #1736): a zero W gives every head the same gate")
        return self


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="attn-gate", options=AttnGateOptions,
        summary="per-head sigmoid gate on the attention output before the projection (output, dense or sparse form)",
        lineage=["#1667", "#1736", "#1769", "#1787", "#1851", "#1855"], legality="fixed-predictor", required_on_load=True,
        reported_delta="sparse (#1787): ~44 KB smaller than dense at no measurable BPB cost; output/dense not isolated",
    ))


@hookimpl
def golf_build_model(model, opts):
    """Install the gate of ``mode`` on every block's attention (``block.attn.out_gate``)."""
    install_attn_gate(model, opts.mode, opts.window, opts.src, opts.init_std, opts.scale)
    return model
