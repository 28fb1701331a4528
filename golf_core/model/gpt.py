"""``GPT``: the challenge's naive baseline (pg_core §4.2) with named seams for plugins.

::

    x = rms_norm(embed_transform(tok_emb(ids), ids))   # embed_transform: identity seam (raw embeddings)
    x = embed_post_norm(x, ids); x0 = x                # embed_post_norm: identity seam (normed stream)
    x = trunk(x, x0, blocks, skips, *schedule.active()):       # the default Trunk:
        for i in encoder:  x = blocks[i](x, x0); push(x)
        for j, i in enumerate(decoder):
            if j < skips.num_skips and stack: x = skips(j, x, pop())
            x = blocks[i](x, x0)
    h = final_norm(x)                                   # forward_hidden
    logits = softcap * tanh((h @ tok_emb.weight.T) / softcap)   # compute_logits (tied)
    loss = cross_entropy(logits.float(), targets)       # forward

With a document mask (``set_document_mask``, PR #1530) every attention layer stays inside the
segments of ``cu_seqlens``: the ones passed in (the training loop computes them outside the
compiled graph) or, when none are passed, the ones the mask derives from ``input_ids`` (BOS
starts a document; every row start starts a segment).

In training with ``model.fused_ce`` set (``prepare_for_device``: Triton on CUDA, probe equal to
the reference) the loss is the fused ``golf::softcap_ce`` op on the raw logits instead
(``golf_core.model.softcap_ce``: the same CE up to float32 rounding).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typing import TYPE_CHECKING, Optional

from golf_core.errors import GolfError
from golf_core.model.block import Block
from golf_core.model.config import GPTConfig
from golf_core.model.layers import CastedLinear, RMSNorm, rms_norm
from golf_core.model.schedule import LayerSchedule
from golf_core.model.seams import IdentityEmbed
from golf_core.model.self_attention import CausalSelfAttention
from golf_core.model.skips import Skips
from golf_core.model.trunk import Trunk

if TYPE_CHECKING:
    from golf_core.model.documents import DocumentMask


class GPT(nn.Module):
    """The baseline GPT. Build with ``GPT(GPTConfig.from_section(recipe.model, vocab_size))``.

    Construction order (and so RNG use under a seed) follows the baseline script: skip weights
    (no RNG; first, so that ``parameters()`` order is the records'), the trunk, ``tok_emb``, blocks
    (``c_q, c_k, c_v, proj, fc, proj`` each), ``lm_head``, then the init
    (tied embedding ``normal(0, tied_embed_init_std)``, zero-init output projections; other
    linears keep PyTorch's default).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        d = config.model_dim
        # skips before tok_emb: draws no RNG, and puts the skip weights first in parameters()
        # and state_dict() order, as the records (whose skip tensors are GPT's own parameters)
        self.schedule = LayerSchedule.unet(config.num_layers)
        self.skips: nn.Module = Skips(self.schedule.num_skips, d)
        # the trunk next (no parameters by default): a lane variant's tensors then follow the
        # skips, where the records register theirs (#1477 lane_merge, #1529 lambdas)
        self.trunk: nn.Module = Trunk()
        self.tok_emb = nn.Embedding(config.vocab_size, d)
        self.blocks = nn.ModuleList([
            Block(d, config.num_heads, config.num_kv_heads, config.mlp_hidden, config.rope_base,
                  config.qk_gain_init, layer_idx=i)
            for i in range(config.num_layers)
        ])
        self.embed_transform: nn.Module = IdentityEmbed()
        self.embed_post_norm: nn.Module = IdentityEmbed()
        self.final_norm = RMSNorm()
        self.lm_head = None if config.tie_embeddings else CastedLinear(d, config.vocab_size, zero_init=True)
        self.attention_backend = "sdpa"  # resolved by prepare_for_device
        self.compute_dtype = torch.float32  # set by prepare_for_device
        self.fused_ce = False  # set by prepare_for_device
        self.document_mask: Optional["DocumentMask"] = None  # set_document_mask
        self._init_weights()

    def _init_weights(self) -> None:
        if self.config.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=self.config.tied_embed_init_std)
        for module in self.modules():
            if isinstance(module, nn.Linear) and getattr(module, "zero_init", False):
                nn.init.zeros_(module.weight)

    # ---- seams ------------------------------------------------------------------------------

    def set_schedule(self, schedule: LayerSchedule) -> None:
        """Install a layer schedule; re-creates ``self.skips`` (same type, via ``skips.rebuild``)
        when the schedule needs a different number of skip slots. Call it in ``golf_build_model``,
        before training: rebuilt skips are freshly initialized."""
        schedule.validate(len(self.blocks))
        self.schedule = schedule
        if schedule.num_skips != self.skips.num_skips:
            if not hasattr(self.skips, "rebuild"):
                raise GolfError(f"set_schedule: model.skips ({type(self.skips).__name__}) has no rebuild(num_skips); subclass golf_core.model.Skips")
            self.skips = self.skips.rebuild(schedule.num_skips)

    @property
    def looping_active(self) -> bool:
        """The schedule's looped-layout switch (``model.schedule.looping_active``)."""
        return self.schedule.looping_active

    @looping_active.setter
    def looping_active(self, value: bool) -> None:
        self.schedule.looping_active = value

    def set_attention_backend(self, name: str) -> None:
        """Run every ``CausalSelfAttention`` with backend ``name`` (``flash3``/``flash2``/``sdpa``);
        ``prepare_for_device`` calls this with the resolved ``[model] attention_backend``."""
        self.attention_backend = name
        for module in self.modules():
            if isinstance(module, CausalSelfAttention):
                module.backend = name

    def set_document_mask(self, mask: Optional["DocumentMask"]) -> None:
        """Keep attention inside documents (``mask``), or attend over whole rows (``None``)."""
        self.document_mask = mask

    def documents(self, input_ids: Tensor, cu_seqlens: Optional[Tensor] = None) -> tuple[Optional[Tensor], int]:
        """``(cu_seqlens, max_seqlen)`` of a batch: ``(None, 0)`` without a document mask; the
        given ``cu_seqlens``, else those the mask derives from ``input_ids``."""
        mask = self.document_mask
        if mask is None:
            return None, 0
        if cu_seqlens is None:
            cu_seqlens = mask.cu_seqlens(input_ids)
        return cu_seqlens, mask.max_seqlen(input_ids.size(1))

    # ---- forward ----------------------------------------------------------------------------

    def forward_hidden(self, input_ids: Tensor, cu_seqlens: Optional[Tensor] = None) -> Tensor:
        """Final-normed hidden states ``[B, T, model_dim]`` for token ids ``[B, T]``
        (``cu_seqlens``: see ``documents``)."""
        cu, max_seqlen = self.documents(input_ids, cu_seqlens)
        x = rms_norm(self.embed_transform(self.tok_emb(input_ids), input_ids))
        x = self.embed_post_norm(x, input_ids)
        encoder, decoder = self.schedule.active()
        x = self.trunk(x, x, self.blocks, self.skips, encoder, decoder, cu, max_seqlen)
        return self.final_norm(x)

    def raw_logits(self, hidden: Tensor) -> Tensor:
        """Logits before the softcap: ``hidden @ tok_emb.weight.T`` (tied) or ``lm_head(hidden)``."""
        if self.lm_head is None:
            return F.linear(hidden, self.tok_emb.weight)
        return self.lm_head(hidden)

    def compute_logits(self, hidden: Tensor) -> Tensor:
        """Soft-capped logits ``cap * tanh(z / cap)`` with ``z = raw_logits(hidden)``; shape
        ``[..., vocab_size]``."""
        cap = self.config.logit_softcap
        return cap * torch.tanh(self.raw_logits(hidden) / cap)

    def forward_logits(self, input_ids: Tensor, cu_seqlens: Optional[Tensor] = None) -> Tensor:
        """``compute_logits(forward_hidden(input_ids))``: ``[B, T, vocab_size]``."""
        return self.compute_logits(self.forward_hidden(input_ids, cu_seqlens))

    def forward(self, input_ids: Tensor, target_ids: Tensor, cu_seqlens: Optional[Tensor] = None) -> Tensor:
        """Mean cross-entropy of ``target_ids`` under the logits, computed in float32
        (``cu_seqlens``: see ``documents``)."""
        if self.fused_ce and self.training:
            from golf_core.model.softcap_ce import softcapped_cross_entropy  # imported by prepare_for_device

            z = self.raw_logits(self.forward_hidden(input_ids, cu_seqlens))
            return softcapped_cross_entropy(z.reshape(-1, z.size(-1)), target_ids.reshape(-1),
                                            self.config.logit_softcap, fused=True)
        logits = self.forward_logits(input_ids, cu_seqlens)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target_ids.reshape(-1), reduction="mean")


def build_model(model_section, vocab_size: int) -> GPT:
    """``GPT(GPTConfig.from_section(model_section, vocab_size))``."""
    if vocab_size is None:
        raise GolfError("build_model: vocab_size is required ([data] vocab_size)")
    return GPT(GPTConfig.from_section(model_section, vocab_size))
