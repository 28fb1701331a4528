"""The declared plugin API: the only golf names a technique plugin may import.

Plugins import from ``golf_core`` (``hookimpl``, ``Options``, ``TechniqueInfo``, ``StashKey``,
``GolfError``) and from this module; every deeper module is the core's private business and may
move without notice (``.importlinter`` forbids plugins to import one; ``lint-imports`` runs in
the tests). What the run driver knows (code bytes, the artifact container, the active
compressor and loader) is asked of the run context: ``ctx.services`` (see below). A name a
plugin needs that is not here is added here, with its line in this table.

Errors
    ``GolfError``            base of every golf error (one line, names the culprit)
    ``ArtifactError``        an artifact that cannot be read or does not fit the model
    ``DataError``            missing or malformed shards, tokenizer or validation data
    ``PluginError``          a plugin that breaks the plugin contract
    ``RecipeError``          a recipe key or value the recipe or an Options model rejects

Plugin declaration
    ``hookimpl``             marker of a hook implementation (``golf_core.hookspecs``)
    ``Options``              base of a plugin's ``[options.<name>]`` model; ``NoOptions``: none
    ``NoOptions``            the Options model of a plugin without options
    ``TechniqueInfo``        what ``golf_register`` registers (name, options, lineage, legality)
    ``Stash``                ``ctx.stash``: per-run state shared between hooks
    ``StashKey``             a typed key into ``ctx.stash``
    ``RunContext``           the type of ``ctx`` (for annotations); ``ctx.services`` offers
                             ``code_bytes()``, ``compress(data)``, ``pack_artifact(codec, payload)``,
                             ``artifact_overhead(codec)`` and ``make_loader(purpose)``

Data
    ``shard_tokens``         the tokens of one shard file (memory-mapped)
    ``shard_num_tokens``     the token count of a shard from its header
    ``read_window``          ``n`` tokens of a shard from an offset
    ``bos_positions``        indices of every BOS (document start) in a 1-D token array
    ``DocumentMask``         keeps attention inside documents (``model.set_document_mask``)
    ``cu_seqlens_for``       the document segments of a ``[B, T]`` batch as FlashAttention's ``cu_seqlens``

Model seams
    ``CastedLinear``         the core's linear layer (fp32 weights, cast to the input dtype)
    ``LayerSchedule``        encoder/decoder block order (``model.set_schedule``)
    ``Rotary``               the rotary embedding seam (``attn.rotary``)
    ``Skips``                the U-Net skip seam (``model.skips``); subclass to change the merge
    ``Trunk``                the seam that runs the blocks (``model.trunk``); subclass for lanes
    ``is_control_name``      whether a parameter name is a control tensor (fp32, scalar optimizer)
    ``SoftcapHead``          a detached, soft-capped output head ``head(h, bias=None)``
    ``head_of``              the frozen ``SoftcapHead`` of a model (tied embedding or ``lm_head``)

Training and adapting
    ``Muon``                 the core Muon optimizer (seams: ``preconditioners``, ``weight_decay``,
                             ``ns_coefficients``, ``ns_batched``)
    ``OptimizerSet``         the named optimizers ``golf_configure_optimizers`` transforms
                             (``step_schedules``: per-step ``fn(optimizers, frac)``)
    ``MomentumWarmup``       Muon's linear momentum warmup
    ``trainable_parameters`` every parameter except those of the first ``freeze_blocks`` blocks
    ``training_only``        ``requires_grad`` on given parameters only; flags and mode restored
    ``grad_only_for``        ``requires_grad`` on given parameters only; flags restored
    ``frozen``               every parameter ``requires_grad = False`` for a block
    ``bank_clip_order``      parameters in a banked record's ``parameters()`` order, each bank a tuple
    ``banked_clip_order``    the same for a ``[train] muon_arithmetic`` value (``None``: not banked)
    ``clip_banked_``         clip gradients to a total norm taken as over the record's banks

Distributed (each is the identity / a no-op in a single process)
    ``is_distributed``       torch.distributed initialized with more than one process
    ``get_rank``             this process's rank
    ``get_world_size``       the number of processes
    ``all_reduce``           in-place all-reduce (``sum``, ``max``, ``min``, ``avg``)
    ``any_rank``             a flag OR-ed over ranks
    ``max_over_ranks``       an integer's maximum over ranks
    ``token_mean_grads``     summed gradients to the token-weighted mean over ranks
    ``reduce_device``        where a collective's small tensors live (CUDA under NCCL, else CPU)
    ``barrier``              wait for every rank
    ``broadcast_object``     a picklable object from one rank to all

Evaluation
    ``BOS_ID``               the token id that starts every document
    ``Document``             a document of the validation stream: its targets ``[target_lo, target_hi)``
    ``length_batches``       #1530's document queue: length-sorted groups, longest first, with their index
    ``length_order``         the groups of ``length_batches`` (what ``session.declare_order`` takes)
    ``window_logits``        a window batch's logits under a model (what adapters hand the session)
    ``window_nll``           per-position NLL of a window batch under a model

Quantization and artifacts
    ``QuantizedModel``       what ``golf_quantize`` returns: tensors plus decode ``meta``
    ``QUANT_FORMAT``         the format tag of a ``QuantizedModel``'s meta
    ``dtype_name``           a torch dtype to its name in the meta
    ``dtype_from_name``      the inverse of ``dtype_name``
    ``quantize_rows_rtn``    round-to-nearest per-row quantization at a given scale
    ``sdclip_scale``         SDClip per-row step ``k * std(row) / (2^(b-1) - 1)``
    ``clip_range``           the integer code range of ``b`` bits
    ``passthrough_entry``    a tensor stored as-is (fp16 or fp32) in a ``QuantizedModel``
    ``Decoder``              the type of an entry decoder ``golf_dequantize`` may add
    ``decode_entry``         decode one entry with the core's codecs
    ``dequantize``           a ``QuantizedModel`` to a float state dict (extra decoders allowed)
    ``serialize_quantized``  a ``QuantizedModel`` to the bytes ``golf_compress`` receives
    ``deserialize_quantized`` those bytes back to a ``QuantizedModel`` (a structure-aware ``golf_compress``)
    ``bounded_decompress``   zlib/lzma/brotli decompression that refuses more than ``max_bytes`` (bombs)
    ``declared_limit``       the decompression ceiling of a recipe's model (what ``golf_decompress`` may produce)
    ``pack_artifact``        an ``Artifact`` container to bytes (prefer ``ctx.services.pack_artifact``)
    ``quant_report``         per-tensor bits, error and compressed bytes of a ``QuantizedModel``
    ``write_quant_report``   write that report as JSON
    ``KernelCheck``          one decision about a fused GPU kernel (used or why not)
    ``fused_kernel_check``   decide once per kernel and device whether golf's Triton kernel runs
    ``triton_unavailable``   why Triton kernels cannot run on a device (None when they can)
    ``FusedSquaredReLUMLP``  ``block.mlp.fused``: the fused (leaky) ReLU² training MLP op
    ``enable_triton_mlp``    register its Triton kernel on CUDA after the probe; returns the decision
"""
from .context import RunContext
from .model.documents import DocumentMask, bos_positions, cu_seqlens_for
from .data.loaders import read_window, shard_tokens
from .data.shards import num_tokens as shard_num_tokens
from .errors import ArtifactError, DataError, GolfError, PluginError, RecipeError
from .data.tokenizer import BOS_ID
from .eval.documents import Document, length_batches, length_order
from .eval.score import window_logits, window_nll
from .hookspecs import hookimpl
from .model.fused import KernelCheck, fused_kernel_check, triton_unavailable
from .model.fused_mlp import FusedSquaredReLUMLP, enable_triton_mlp
from .model import CastedLinear, LayerSchedule, Rotary, Skips, Trunk, is_control_name
from .model.head import SoftcapHead, head_of
from .options import NoOptions, Options
from .quant.artifact import pack_artifact
from .quant.bounded import bounded_decompress, declared_limit
from .quant.dequant import Decoder, decode_entry, dequantize
from .quant.int8 import passthrough_entry
from .quant.intk import clip_range, quantize_rows_rtn, sdclip_scale
from .quant.quantized import QUANT_FORMAT, QuantizedModel, dtype_from_name, dtype_name
from .quant.report import quant_report, write_quant_report
from .quant.serialize import deserialize_quantized, serialize_quantized
from .stash import Stash, StashKey
from .technique import TechniqueInfo
from .train.distributed import (all_reduce, any_rank, barrier, broadcast_object, get_rank, get_world_size,
                                is_distributed, max_over_ranks, reduce_device, token_mean_grads)
from .train.banks import bank_clip_order, banked_clip_order, clip_banked_
from .train.freeze import frozen, grad_only_for, trainable_parameters, training_only
from .train.muon import Muon
from .train.optim import OptimizerSet
from .train.schedule import MomentumWarmup

__all__ = [
    "BOS_ID", "Document", "length_batches", "length_order", "bank_clip_order", "banked_clip_order", "clip_banked_",
    "ArtifactError", "CastedLinear", "DocumentMask", "bos_positions", "cu_seqlens_for", "FusedSquaredReLUMLP", "KernelCheck", "DataError", "Decoder", "GolfError", "LayerSchedule", "MomentumWarmup",
    "Muon", "NoOptions", "OptimizerSet", "Options", "PluginError", "QUANT_FORMAT", "QuantizedModel",
    "RecipeError", "Rotary", "RunContext", "Skips", "SoftcapHead", "Stash",
    "StashKey", "TechniqueInfo", "Trunk", "all_reduce", "any_rank", "barrier", "broadcast_object", "clip_range",
    "decode_entry", "dequantize", "dtype_from_name", "dtype_name", "enable_triton_mlp", "frozen", "fused_kernel_check", "get_rank", "get_world_size",
    "grad_only_for", "head_of", "hookimpl", "is_control_name", "is_distributed", "max_over_ranks", "pack_artifact",
    "passthrough_entry", "quant_report", "quantize_rows_rtn", "read_window", "reduce_device",
    "sdclip_scale", "bounded_decompress", "declared_limit", "deserialize_quantized", "serialize_quantized", "shard_num_tokens", "shard_tokens", "token_mean_grads",
    "trainable_parameters", "training_only", "triton_unavailable", "window_logits", "window_nll", "write_quant_report",
]
