"""MR-GPTQ for golf: randomized block Walsh-Hadamard rotation before GPTQ. Usable without golf:
``rotate(W, signs, blocks)``, ``rotate_hessian(H, ...)``, ``HadamardTransform`` (pass it to
``golf_gptq.GPTQModelQuantizer``), ``decode_hadamard`` (a ``golf_core.quant.dequantize`` decoder)."""
from .hadamard import (CODEC, HadamardTransform, block_plan, decode_hadamard, fwht, rotate, rotate_hessian,
                       rotation_matrix, tensor_signs, unrotate)

__version__ = "0.1.0"
__all__ = ["CODEC", "HadamardTransform", "block_plan", "decode_hadamard", "fwht", "rotate", "rotate_hessian",
           "rotation_matrix", "tensor_signs", "unrotate"]
