"""Quantization, serialization, compression and artifact accounting (the baseline's int8 + zlib,
per-row int-k with SDClip, BSHF byte shuffle, zlib/lzma/brotli, the ``artifact.bin`` container)."""
from .accounting import CAP_BYTES, ByteBudget, code_bytes, code_bytes_for, collect_source, ship_code, under_cap
from .artifact import (ARTIFACT_VERSION, Artifact, build_artifact, decode_artifact, pack_artifact,
                       read_artifact, unpack_artifact, write_artifact)
from .compress import COMPRESSORS, compress_bytes, decompress_bytes, get_compressor
from .dequant import decode_entry, dequantize
from .int8 import BASELINE_CONTROL_PATTERNS, quantize_state_dict_int8, quantize_tensor_int8
from .intk import quantize_state_dict_intk, quantize_tensor_intk, sdclip_scale
from .quantized import QUANT_FORMAT, QuantizedModel
from .report import quant_report, write_quant_report
from .serialize import deserialize_quantized, serialize_quantized
from .shuffle import byte_shuffle, byte_unshuffle

__all__ = [
    "ARTIFACT_VERSION", "Artifact", "BASELINE_CONTROL_PATTERNS", "ByteBudget", "CAP_BYTES", "COMPRESSORS",
    "QUANT_FORMAT", "QuantizedModel", "build_artifact", "byte_shuffle", "byte_unshuffle", "code_bytes",
    "code_bytes_for", "collect_source", "compress_bytes", "decode_artifact", "decode_entry", "decompress_bytes", "dequantize",
    "deserialize_quantized", "get_compressor", "pack_artifact", "quant_report", "quantize_state_dict_int8",
    "quantize_state_dict_intk", "quantize_tensor_int8", "quantize_tensor_intk", "read_artifact",
    "sdclip_scale", "serialize_quantized", "ship_code", "under_cap", "unpack_artifact", "write_artifact",
    "write_quant_report",
]
