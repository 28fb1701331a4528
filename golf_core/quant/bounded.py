"""Decompression with a ceiling: an artifact is untrusted input, and a few kilobytes of zlib,
lzma or brotli can expand to gigabytes (a "decompression bomb").

Each codec is driven through its streaming decoder with an output limit (zlib's ``max_length``,
lzma's ``max_length``, brotli's ``output_buffer_limit``), so at most ``max_bytes + 1`` bytes are
ever produced. The ceiling for a model comes from its declared size (:func:`max_decoded_bytes`):
no honest serialization needs more than 8 bytes per parameter (an fp32 value plus an fp32 scale);
the declared size is the baseline GPT of the recorded ``[model]`` table, counted twice to leave
room for what plugins add (:func:`declared_limit`; counted without calling any plugin hook).
"""
from __future__ import annotations

import lzma
import zlib

import brotli

from ..errors import ArtifactError

#: Bytes per declared parameter a serialized model may take at most (fp32 value + fp32 scale).
BYTES_PER_PARAM = 8
#: Room for the serialization header, tensor names and per-tensor tables.
SLACK_BYTES = 16 << 20


def max_decoded_bytes(num_params: int) -> int:
    """The largest decompressed payload accepted for a model of ``num_params`` parameters."""
    return BYTES_PER_PARAM * int(num_params) + SLACK_BYTES


def declared_limit(recipe) -> int:
    """The decompression ceiling for an artifact of ``recipe``: twice its baseline parameters."""
    import torch

    from ..model import GPT, GPTConfig, count_parameters

    with torch.device("meta"):
        n = count_parameters(GPT(GPTConfig.from_section(recipe.model, recipe.data.vocab_size)))
    return max_decoded_bytes(2 * n)


def _too_big(name: str, max_bytes: int) -> ArtifactError:
    return ArtifactError(f"{name} payload expands past {max_bytes} bytes, more than the model it declares can "
                         f"take: refused (a decompression bomb or a corrupt artifact)")


def _zlib(data: bytes, max_bytes: int) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, max_bytes + 1)
    if len(out) > max_bytes or d.unconsumed_tail:
        raise _too_big("zlib", max_bytes)
    if not d.eof:
        raise ArtifactError("zlib payload does not decompress: the stream is truncated")
    return out


def _lzma(data: bytes, max_bytes: int) -> bytes:
    d = lzma.LZMADecompressor()
    out = d.decompress(data, max_length=max_bytes + 1)
    if len(out) > max_bytes or (not d.eof and not d.needs_input):
        raise _too_big("lzma", max_bytes)
    if not d.eof:
        raise ArtifactError("lzma payload does not decompress: the stream is truncated")
    return out


def _brotli(data: bytes, max_bytes: int) -> bytes:
    d = brotli.Decompressor()
    out = d.process(data, output_buffer_limit=max_bytes + 1)
    if len(out) > max_bytes:
        raise _too_big("brotli", max_bytes)
    if not d.is_finished():
        if not d.can_accept_more_data() and d.process(b"", output_buffer_limit=1):
            raise _too_big("brotli", max_bytes)
        raise ArtifactError("brotli payload does not decompress: the stream is truncated")
    return out


_DECODERS = {"zlib": _zlib, "lzma": _lzma, "brotli": _brotli}


def bounded_decompress(data: bytes, name: str, max_bytes: int) -> bytes:
    """Decompress ``data`` with compressor ``name``, producing at most ``max_bytes`` bytes.

    ``ArtifactError`` (one line) when the output would be larger, the stream is corrupt or
    truncated, or the compressor is unknown.
    """
    try:
        decode = _DECODERS[name]
    except KeyError:
        raise ArtifactError(f"unknown compressor {name!r}; known: {', '.join(_DECODERS)}") from None
    try:
        return decode(data, int(max_bytes))
    except ArtifactError:
        raise
    except Exception as e:  # zlib.error, lzma.LZMAError, brotli.error
        raise ArtifactError(f"{name} payload does not decompress: {e}") from None
