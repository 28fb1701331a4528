"""golf plugin ``mr-gptq``: randomized block Walsh-Hadamard rotation, then GPTQ (techniques.md §9)."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from golf_core import TechniqueInfo, hookimpl
from golf_core.quant.dequant import dequantize
from golf_gptq.flow import run_gptq, summarize
from golf_gptq.options import GPTQOptions, tiny_options

from .hadamard import CODEC, HadamardTransform, decode_hadamard


class MRGPTQOptions(GPTQOptions):
    """GPTQ's options plus the rotation's."""

    rotation_seed: int = Field(0, description="seed of the random signs (stored in the artifact; signs regenerated at load)")
    hadamard_max_block: Optional[int] = Field(None, ge=1, description="largest Hadamard block (a power of two); default: the largest power of two dividing the fan-in")
    hadamard_min_block: int = Field(16, ge=1, description="below this uniform block size the fan-in is split greedily into powers of two")
    rotate_embedding: bool = Field(True, description="rotate the tied embedding too (its Hessian is rotated with it)")


def _legality(opts: MRGPTQOptions) -> str:
    return "trains-on-val" if opts.calibration == "val" else "fixed-predictor"


def transform_for(opts: MRGPTQOptions) -> HadamardTransform:
    """The rotation the options describe."""
    return HadamardTransform(opts.rotation_seed, opts.hadamard_max_block, opts.hadamard_min_block,
                             opts.rotate_embedding, opts.embed_pattern)


DECODERS = {CODEC: decode_hadamard}


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="mr-gptq", options=MRGPTQOptions,
        summary="randomized block Walsh-Hadamard rotation (W R, R^T H R) before GPTQ; inverse applied at load",
        lineage=["#1400", "#1224", "#586", "arXiv:2509.23202"], legality="fixed-predictor",
        conflicts=["gptq"], required_on_load=True,
        reported_delta="#1400 claimed -0.015 BPB but its log shows a +0.019 quant gap after 53.8% ±1 pruning; "
                       "#1224 -0.00005 (MLP only); #586 +0.0005; neutral on Gaussian weights at equal bytes",
        tiny=tiny_options, legality_of=_legality,
    ))


@hookimpl
def golf_quantize(model, ctx, opts):
    """Rotate every GPTQ matrix and its Hessian, then run golf-gptq's flow (calibration, fit, report)."""
    return run_gptq(model, ctx, opts, transform=transform_for(opts), decoders=DECODERS, label="mr-gptq")


@hookimpl
def golf_dequantize(quantized, ctx, opts):
    """Decode the core codecs and the rotated entries (signs regenerated from the stored seed)."""
    return dequantize(quantized, decoders=DECODERS)


@hookimpl
def golf_summary(result, ctx, opts):
    """Add ``result["mr-gptq"]`` (calibration, k, timings, quantization gap)."""
    summarize(result, ctx, "mr-gptq")
