"""golf plugin ``pergroup``: per-group ZPAQ compression of the quantized matrices with an L1
similarity row sort (#1855), as the run's ``golf_compress`` / ``golf_decompress``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from golf_core import GolfError, Options, TechniqueInfo, hookimpl
from golf_core.api import ArtifactError, declared_limit

from .backends import BACKENDS, check_backend
from .codec import GROUP_ORDER, SIMSORT, pack_pergroup, unpack_pergroup

CODEC_PREFIX = "pergroup+"


class PerGroupOptions(Options):
    """Per-group compression; defaults: #1855's groups and sorted groups, ZPAQ through the zpaq package."""

    backend: Literal["zpaq", "lrzip", "brotli", "lzma"] = Field(
        "zpaq", description="compressor of each group: zpaq (PyPI zpaq, level 5, in memory), lrzip (the system "
        "binary, lrzip -z -L 9, byte-identical to #1855; needs lrzip on PATH), brotli or lzma")
    groups: list[str] = Field(list(GROUP_ORDER), description="storage-key suffixes (after blocks.<i>.; '_' + key "
                              "outside blocks) whose int8 tensors form one stream each, in this order")
    simsort: list[str] = Field(list(SIMSORT), description="groups whose rows are put in the greedy L1 order")

    @model_validator(mode="after")
    def _backend_available(self) -> "PerGroupOptions":
        # the system binary is checked when the recipe is validated; zpaq is a pip dependency of
        # this plugin (an exported script lists it in requirements.txt), checked when it runs
        if self.backend == "lrzip":
            try:
                check_backend(self.backend)
            except GolfError as e:
                raise ValueError(str(e)) from None
        unknown = sorted(set(self.simsort) - set(self.groups))
        if unknown:
            raise ValueError(f"simsort names groups that are not in groups: {unknown}")
        return self


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="pergroup", options=PerGroupOptions,
        summary="per-group compression: int8 codes grouped by tensor role, rows L1-similarity sorted, "
                "columns first, each group ZPAQ-compressed; the rest brotli-11",
        lineage=["#1586", "#1667", "#1729", "#1855"], legality="fixed-predictor", required_on_load=True,
        reported_delta="#1855: about 280 KB smaller than brotli; 75-100 s to compress, 20-24 s to decompress (lrzip)",
    ))


@hookimpl
def golf_compress(data, opts):
    """The per-group container of the serialized model; codec ``pergroup+<backend>``."""
    return CODEC_PREFIX + opts.backend, pack_pergroup(data, opts.backend, opts.groups, opts.simsort)


@hookimpl
def golf_decompress(codec, data, ctx):
    """Invert ``golf_compress`` with the backend named in the codec, never producing more than
    the recipe's declared model can need."""
    if not codec.startswith(CODEC_PREFIX) or codec[len(CODEC_PREFIX):] not in BACKENDS:
        raise ArtifactError(f"pergroup cannot decode codec {codec!r} (it writes {CODEC_PREFIX}<{'|'.join(BACKENDS)}>)")
    backend = codec[len(CODEC_PREFIX):]
    try:
        check_backend(backend)
    except GolfError as e:
        raise ArtifactError(str(e)) from None
    return unpack_pergroup(data, backend, max_bytes=declared_limit(ctx.recipe))
