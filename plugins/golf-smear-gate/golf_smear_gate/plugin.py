"""golf plugin ``smear-gate``: input-dependent previous-token mix of the embeddings (T6)."""
from __future__ import annotations

from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_smear_gate.smear import install_smear_gate


class SmearGateOptions(Options):
    """Options of ``smear-gate``."""

    window: int = Field(12, ge=1, description="leading embedding channels the gate reads (GATE_WINDOW / SMEAR_GATE_WIDTH, 12)")
    bos_id: int = Field(1, ge=0, description="token id that starts a document (BOS, 1 in the challenge's tokenizers)")
    bos_fix: bool = Field(True, description="no smear into a BOS position (#1851/#1855); false = #1667's form, which leaks the previous document's last token into the next document's BOS")
    trainable: bool = Field(True, description="train the gate (#1851/#1855); false = #1667 as run: its optimizers take "
                                               "only the blocks' control tensors, so the top-level gate is never stepped "
                                               "and stays the identity (zero init)")


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="smear-gate", options=SmearGateOptions,
        summary="e_t += lam*sigmoid(w.e_t[:12])*e_{t-1} on the token embeddings, not into a BOS (zero init)",
        lineage=["#1667", "#1797", "#1851", "#1855"], legality="fixed-predictor", required_on_load=True,
        reported_delta="not isolated; #1797: the BOS fix costs +0.00255 BPB (the unfixed score was favourably biased)",
    ))


@hookimpl
def golf_build_model(model, opts):
    """Install the gate as ``model.embed_transform`` (its tensors are control tensors; frozen at
    their zero init when ``trainable`` is off)."""
    gate = install_smear_gate(model, opts.window, opts.bos_id, opts.bos_fix)
    if not opts.trainable:
        gate.requires_grad_(False)
    return model
