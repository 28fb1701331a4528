"""The core's defaults, as a built-in plugin: what every exclusive hook falls back to.

``ActivePlugins`` registers this module with every plugin manager under :data:`NAME`, after
the recipe's plugins and outside its ``plugins`` list: it is always active, never listed by
``golf plugins`` nor recorded in a manifest, and an exclusive hook calls it only when no
active plugin implements that hook. It implements exactly the exclusive hooks:

* ``golf_make_loader``: the baseline's sequential stream (``golf_core.data.loaders``);
* ``golf_quantize`` / ``golf_dequantize``: the baseline's per-row int8 (``golf_core.quant``);
* ``golf_compress`` / ``golf_decompress``: ``[artifact] byte_shuffle`` then
  ``[artifact] compressor`` (zlib, lzma or brotli);
* ``golf_eval_adapt``: the fixed model over every window (``golf_core.eval.score``).

Imports are lazy so that a run imports (and its exported script ships) only what it uses.
"""
from __future__ import annotations

from typing import Any

from .hookcalls import DEFAULTS_NAME
from .hookspecs import hookimpl

#: The name the built-in plugin is registered under.
NAME = DEFAULTS_NAME


@hookimpl
def golf_make_loader(ctx: Any, purpose: str) -> Any:
    """The baseline's sequential loader over ``ctx.data.train_files`` (same stream for every purpose)."""
    from .data.loaders import SequentialLoader

    return SequentialLoader(ctx.data.train_files, ctx.rank, ctx.world_size)


@hookimpl
def golf_quantize(model: Any, ctx: Any) -> Any:
    """Per-row int8 of the large float matrices; control tensors (the same list the optimizer
    routes by: the baseline's plus the model's extras) stay in float."""
    from .quant.int8 import quantize_state_dict_int8
    from .train.optim import control_patterns

    return quantize_state_dict_int8(model.state_dict(), control_patterns=control_patterns(model))


@hookimpl
def golf_dequantize(quantized: Any) -> Any:
    """Decode every codec of ``golf_core.quant`` into a float state dict."""
    from .quant.dequant import dequantize

    return dequantize(quantized)


@hookimpl
def golf_compress(data: bytes, ctx: Any) -> Any:
    """``[artifact] byte_shuffle`` (BSHF stride 2), then ``[artifact] compressor``; returns ``(codec, blob)``."""
    from .quant.compress import compress_bytes

    art = ctx.recipe.artifact
    return compress_bytes(data, art.compressor, 2 if art.byte_shuffle else 0)


@hookimpl
def golf_decompress(codec: str, data: bytes, ctx: Any) -> Any:
    """Invert :func:`golf_compress` for any codec name it writes, never decoding more than the
    recipe's declared model can need (a decompression bomb fails in one line)."""
    from .quant.bounded import declared_limit
    from .quant.compress import decompress_bytes

    return decompress_bytes(codec, data, max_bytes=declared_limit(ctx.recipe))


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any) -> Any:
    """Score every window with the fixed model (no adaptation)."""
    from .eval.score import score_fixed

    return score_fixed(model=model, session=session, ctx=ctx)
