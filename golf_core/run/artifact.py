"""``artifact.bin``: quantize, serialize and compress a model into it; decode it into a fresh model.

Quantization, compression and their inverses are exclusive hooks: the active plugin's
implementation, else the core's (``golf_core.defaults``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .. import __version__, rundir
from ..context import RunContext
from ..errors import ArtifactError, GolfError
from .build import build_model

#: Hooks through which a plugin changes what an artifact decodes to or how it is scored.
EVAL_HOOKS = ("golf_build_model", "golf_dequantize", "golf_decompress", "golf_on_artifact_load", "golf_eval_adapt")


def rebuild_info(ctx: RunContext) -> list[dict[str, Any]]:
    """Every active plugin with its version and options, and which of its hooks matter when
    the artifact is decoded and scored (``golf eval`` refuses to run without those)."""
    ap = ctx.plugins
    return [
        {"name": n, "version": ap.entries[n].version, "options": ap.options[n].model_dump(mode="json"),
         "required_on_load": ap.info(n).required_on_load,
         "eval_hooks": [h for h in EVAL_HOOKS if h in ap.entries[n].hooks]}
        for n in ap.order
    ]


def artifact_for(ctx: RunContext, codec: str, payload: bytes):
    """The ``Artifact`` container a run writes around a compressed payload (header: model
    config, the plugins needed to rebuild and score it, golf version, the resolved recipe)."""
    from ..quant.artifact import Artifact

    return Artifact(codec=codec, payload=payload,
                    model={**ctx.recipe.model.model_dump(mode="json"), "vocab_size": ctx.recipe.data.vocab_size},
                    plugins=rebuild_info(ctx),
                    extra={"golf_core": __version__, "recipe_sha256": ctx.recipe.sha256(), "recipe": ctx.recipe.to_dict()})


def compress(data: bytes, ctx: RunContext) -> tuple[str, bytes]:
    """The run's ``golf_compress`` (the active plugin's, else the core's): ``(codec, blob)``."""
    return ctx.plugins.exclusive("golf_compress", data=data, ctx=ctx)


def write_artifact(model: nn.Module, ctx: RunContext, path: Path) -> dict[str, Any]:
    """Quantize, serialize and compress ``model`` into ``path`` (main rank); return byte figures
    (``model_bytes``, ``serialized_bytes``) and the ``quantized`` model."""
    from ..quant.artifact import pack_artifact
    from ..quant.serialize import serialize_quantized

    with ctx.in_phase("quantize"):
        qm = ctx.plugins.exclusive("golf_quantize", model=model, ctx=ctx)
    raw = serialize_quantized(qm)
    with ctx.in_phase("compress"):
        codec, blob = compress(raw, ctx)
    data = pack_artifact(artifact_for(ctx, codec, blob))
    if ctx.is_main:
        rundir.write_bytes_atomic(path, data)
    return {"model_bytes": len(data), "serialized_bytes": len(raw), "quantized": qm}


def read_quantized(path: Path, ctx: RunContext):
    """Read ``artifact.bin`` and decode it (``golf_decompress``) into a ``QuantizedModel``."""
    from ..quant.artifact import read_artifact
    from ..quant.serialize import deserialize_quantized

    art = read_artifact(path)
    raw = ctx.plugins.exclusive("golf_decompress", codec=art.codec, data=art.payload, ctx=ctx)
    try:
        return deserialize_quantized(raw)
    except GolfError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure is a corrupt artifact
        raise ArtifactError(f"{path}: cannot decode the model payload: {e}") from None


def load_artifact_into_fresh_model(path: Path, ctx: RunContext) -> nn.Module:
    """Build a fresh model (with every ``golf_build_model`` transform) and load the weights
    decoded from ``artifact.bin``; then the ``golf_on_artifact_load`` transforms."""
    qm = read_quantized(path, ctx)
    model = build_model(ctx.recipe, ctx.plugins, ctx)
    state = ctx.plugins.exclusive("golf_dequantize", quantized=qm, ctx=ctx)
    template = model.state_dict()
    missing = sorted(set(template) - set(state))
    unexpected = sorted(set(state) - set(template))
    if missing or unexpected:
        culprit = (missing or unexpected)[0]
        raise ArtifactError(f"{path}: artifact does not fit the rebuilt model ({'missing' if missing else 'unexpected'} {culprit!r})")
    state = {k: v.to(dtype=template[k].dtype, device=template[k].device) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return on_artifact_load(model, ctx)


def on_artifact_load(model: nn.Module, ctx: RunContext) -> nn.Module:
    """The ``golf_on_artifact_load`` transforms (in recipe order) on a model holding decoded weights."""
    with ctx.in_phase("load"):
        return ctx.plugins.transform("golf_on_artifact_load", "model", model, ctx=ctx)
