"""golf plugin ``gptq``: full-Hessian GPTQ with SDClip (#1394), calibration sources, budget fit,
and the optional randomized Hadamard rotation (``rotation = "hadamard"``, formerly ``mr-gptq``)."""
from __future__ import annotations

from typing import Optional

from golf_core import TechniqueInfo, hookimpl
from golf_core.api import dequantize

from .flow import TRAIN_SECONDS, run_gptq, summarize
from .hadamard import CODEC, HadamardTransform, decode_hadamard
from .lqer import LQER_CODEC, decode_lqer
from .options import GPTQOptions, tiny_options

#: Entry decoders beyond the core's: the rotated per-row codec and the LQER-corrected one.
DECODERS = {CODEC: decode_hadamard, LQER_CODEC: decode_lqer}


def _legality(opts: GPTQOptions) -> str:
    return "trains-on-val" if opts.calibration == "val" else "fixed-predictor"


def transform_for(opts: GPTQOptions) -> Optional[HadamardTransform]:
    """The rotation the options ask for (``None`` for ``rotation = "none"``)."""
    if opts.rotation == "none":
        return None
    return HadamardTransform(opts.rotation_seed, opts.hadamard_max_block, opts.hadamard_min_block,
                             opts.rotate_embedding, opts.embed_pattern)


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="gptq", options=GPTQOptions,
        summary="full-Hessian GPTQ with SDClip scales: int6 matrices, int8 tied embedding (final-norm Hessian), fp16 rest; "
                "optional randomized block Walsh-Hadamard rotation (rotation = \"hadamard\")",
        lineage=["#1019", "#1060", "#1217", "#1394", "#1400", "#1224", "#586", "arXiv:2509.23202"],
        legality="fixed-predictor", required_on_load=True,
        reported_delta="int6 GPTQ+SDClip vs int8 RTN frees ~25% of the bytes for a bigger model; "
                       "#1394 quant gap +0.012 BPB (1.0900 -> 1.1024, non-sliding); train vs AR calibration -0.0007 (#1306 note); "
                       "Hadamard rotation: #1224 -0.00005, #586 +0.0005, neutral on Gaussian weights at equal bytes",
        tiny=tiny_options, legality_of=_legality,
        replaces={"mr-gptq": 'plugin "mr-gptq" was merged into "gptq": list "gptq" and set '
                             '[options.gptq] rotation = "hadamard" (its other options keep their names)'},
    ))


@hookimpl
def golf_on_step_end(progress, ctx):
    """Remember the timed training seconds: calibration on training data is counted after them."""
    ctx.stash[TRAIN_SECONDS] = progress.elapsed_s


@hookimpl
def golf_quantize(model, ctx, opts):
    """Calibrate, collect Hessians, (rotate,) GPTQ every large matrix, fit ``k`` if the option ``fit`` is on."""
    return run_gptq(model, ctx, opts, transform=transform_for(opts), decoders=DECODERS)


@hookimpl
def golf_dequantize(quantized, ctx, opts):
    """Decode the core codecs and the rotated entries (signs regenerated from the stored seed)."""
    return dequantize(quantized, decoders=DECODERS)


@hookimpl
def golf_summary(result, ctx, opts):
    """Add ``result["gptq"]``: calibration, k (fitted or not), rotation, timings, the quantization gap."""
    summarize(result, ctx, "gptq")
