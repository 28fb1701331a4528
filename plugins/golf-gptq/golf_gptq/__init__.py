"""GPTQ with SDClip for golf, usable without golf: ``gptq_quantize_weight(W, H)``,
``collect_hessians(model, batches)``, ``gptq_quantize_state_dict(state_dict, hessians)``,
``fit_clip_sigmas(size_at, budget, k0)``; the MR-GPTQ rotation: ``rotate(W, signs, blocks)``,
``rotate_hessian(H, ...)``, ``HadamardTransform`` (pass it to ``GPTQModelQuantizer``),
``decode_hadamard`` (a ``golf_core.api.dequantize`` decoder)."""
from .calibration import generate_sequences, token_batches
from .fit import FitResult, fit_clip_sigmas
from .hadamard import (CODEC, HadamardTransform, block_plan, decode_hadamard, fwht, rotate, rotate_hessian,
                       rotation_matrix, tensor_signs, unrotate)
from .gptq import PreparedHessian, gptq_quantize_prepared, gptq_quantize_weight, hessian_error, prepare_hessian
from .hessians import HessianCollector, collect_hessians, hessian_targets
from .quantize import GPTQConfig, GPTQModelQuantizer, WeightTransform, gptq_quantize_state_dict, hessian_errors

__version__ = "0.1.0"
__all__ = [
    "CODEC", "HadamardTransform", "block_plan", "decode_hadamard", "fwht", "rotate", "rotate_hessian",
    "rotation_matrix", "tensor_signs", "unrotate",
    "FitResult", "GPTQConfig", "GPTQModelQuantizer", "HessianCollector", "PreparedHessian", "WeightTransform",
    "collect_hessians", "fit_clip_sigmas", "generate_sequences", "gptq_quantize_prepared", "gptq_quantize_state_dict",
    "gptq_quantize_weight", "hessian_error", "hessian_errors", "hessian_targets", "prepare_hessian", "token_batches",
]
