"""golf plugin ``gptq``: full-Hessian GPTQ with SDClip (#1394), calibration sources, budget fit."""
from __future__ import annotations

from golf_core import TechniqueInfo, hookimpl

from .flow import run_gptq, summarize
from .options import GPTQOptions, tiny_options


def _legality(opts: GPTQOptions) -> str:
    return "trains-on-val" if opts.calibration == "val" else "fixed-predictor"


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="gptq", options=GPTQOptions,
        summary="full-Hessian GPTQ with SDClip scales: int6 matrices, int8 tied embedding (final-norm Hessian), fp16 rest",
        lineage=["#1019", "#1060", "#1217", "#1394"], legality="fixed-predictor",
        conflicts=["mr-gptq"], required_on_load=False,
        reported_delta="int6 GPTQ+SDClip vs int8 RTN frees ~25% of the bytes for a bigger model; "
                       "#1394 quant gap +0.012 BPB (1.0900 -> 1.1024, non-sliding); train vs AR calibration -0.0007 (#1306 note)",
        tiny=tiny_options, legality_of=_legality,
    ))


@hookimpl
def golf_quantize(model, ctx, opts):
    """Calibrate, collect Hessians, GPTQ every large matrix, fit ``k`` if the option ``fit`` is on."""
    return run_gptq(model, ctx, opts)


@hookimpl
def golf_summary(result, ctx, opts):
    """Add ``result["gptq"]``: calibration, k (fitted or not), timings, the quantization gap."""
    summarize(result, ctx, "gptq")
