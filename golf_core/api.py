"""The declared plugin API: the only golf names a technique plugin may import.

Plugins import from ``golf_core`` (``hookimpl``, ``Options``, ``TechniqueInfo``, ``StashKey``,
``GolfError``) and from this module; everything deeper is the core's private business and may
move without notice. Anything a plugin needs that is not here is added here (and documented)
rather than imported from a deeper module.
"""
from .data.loaders import read_window, shard_tokens
from .data.shards import num_tokens as shard_num_tokens
from .errors import ArtifactError, DataError, GolfError, PluginError, RecipeError
from .eval.score import window_logits, window_nll
from .hookspecs import hookimpl
from .model import CastedLinear, LayerSchedule, Rotary, Skips, is_control_name
from .options import NoOptions, Options
from .quant.artifact import pack_artifact
from .quant.dequant import Decoder, decode_entry, dequantize
from .quant.intk import clip_range, quantize_rows_rtn, sdclip_scale
from .quant.quantized import QUANT_FORMAT, QuantizedModel, dtype_from_name, dtype_name
from .quant.report import quant_report, write_quant_report
from .quant.serialize import serialize_quantized
from .stash import Stash, StashKey
from .technique import TechniqueInfo
from .defaults import golf_make_loader as default_loader
from .train.muon import ROW_NORM_EPS, Muon, row_normalize
from .train.optim import OptimizerSet
from .train.schedule import MomentumWarmup

__all__ = [
    "ArtifactError", "CastedLinear", "DataError", "Decoder", "GolfError", "LayerSchedule", "MomentumWarmup",
    "Muon", "NoOptions", "OptimizerSet", "Options", "PluginError", "QUANT_FORMAT", "QuantizedModel",
    "ROW_NORM_EPS", "RecipeError", "Rotary", "Skips", "Stash", "StashKey", "TechniqueInfo", "clip_range",
    "decode_entry", "default_loader", "dequantize", "dtype_from_name", "dtype_name", "hookimpl",
    "is_control_name", "pack_artifact", "quant_report", "quantize_rows_rtn", "read_window",
    "row_normalize", "sdclip_scale", "serialize_quantized", "shard_num_tokens", "shard_tokens",
    "window_logits", "window_nll", "write_quant_report",
]
