"""golf plugin ``varlen-attn``: PR #1530's document-masked attention and document-packing loader."""
from __future__ import annotations

from typing import Any, Optional

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core.api import DocumentMask, PluginError
from pydantic import Field

from .loader import DocumentPackingLoader


class VarlenAttnOptions(Options):
    """Options of ``varlen-attn`` (defaults: PR #1530)."""

    bos_id: int = Field(1, ge=0, description="the token that starts a document (1 in the SP8192 shards)")
    segment_len: Optional[int] = Field(
        None, ge=1, description="cut a document's segment every this many tokens; None: [train] train_seq_len (#1530)")
    eval: bool = Field(True, description="keep attention inside documents at evaluation too (#1530 does)")


def _mask(ctx: Any, opts: VarlenAttnOptions) -> DocumentMask:
    length = opts.segment_len if opts.segment_len is not None else int(ctx.recipe.train.train_seq_len)
    return DocumentMask(bos_id=opts.bos_id, max_len=length)


def _install(model: Any, mask: Optional[DocumentMask]) -> None:
    if not hasattr(model, "set_document_mask"):
        raise PluginError(f"varlen-attn: the model ({type(model).__name__}) has no set_document_mask(); "
                          f"it cannot keep attention inside documents")
    model.set_document_mask(mask)


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="varlen-attn",
        options=VarlenAttnOptions,
        summary="#1530: attention only within BOS-delimited documents (FA3 varlen / masked SDPA), "
                "document-packing training loader",
        lineage=["#1530"],
        legality="fixed-predictor",
        required_on_load=True,
        reported_delta="~0.001 nats and ~2% faster steps (#1530 README)",
        conflicts=["shuffled-loader", "coprime-loader"],
    ))


@hookimpl
def golf_build_model(model: Any, ctx: Any, opts: VarlenAttnOptions) -> Any:
    """Install the document mask (training, and the decoded model too: this hook runs there again)."""
    _install(model, _mask(ctx, opts))
    return model


@hookimpl
def golf_on_artifact_load(model: Any, opts: VarlenAttnOptions) -> Any:
    """With ``eval = false``, score with attention over whole windows."""
    if not opts.eval:
        _install(model, None)
    return model


@hookimpl
def golf_make_loader(ctx: Any, opts: VarlenAttnOptions, purpose: str) -> Any:
    """#1530's packing loader (training and calibration alike)."""
    loader = DocumentPackingLoader(ctx.data.train_files, ctx.rank, ctx.world_size, bos_id=opts.bos_id)
    log = getattr(ctx, "log", None)
    if log is not None:
        log.info(f"varlen-attn: purpose:{purpose} shards:{len(loader.files)} bos_id:{opts.bos_id}")
    return loader
