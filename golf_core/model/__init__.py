"""The baseline GPT and its seams (pg_core §4.2; seams for the PR #1394 stack, §5.2-5.3).

Build and place::

    model = GPT(GPTConfig.from_section(recipe.model, vocab_size))
    ... golf_build_model plugins change seams here ...
    prepare_for_device(model, device)        # dtype layout + attention backend
    loss = model(x, y); h = model.forward_hidden(x); logits = model.compute_logits(h)

Seams (plain attributes; replace them in ``golf_build_model``, before ``prepare_for_device``):

==================================  =============================================  ==========================
seam                                 contract                                       baseline default
==================================  =============================================  ==========================
``block.attn.q_gain``                Parameter ``[H]``, multiplies q after RoPE      ``qk_gain_init`` (1.5)
``block.attn.rotary``                module ``(q, k) -> (q, k)`` on ``[B,T,h,D]``    ``Rotary(D)`` (full RoPE)
``block.attn.out_transform``         module ``(y [B,T,H,D], v [B,T,Hkv,D]) -> y``    ``IdentityOutput``
``block.attn.out_gate``              module ``(y, x, q_raw) -> y`` after out_transform ``IdentityGate``
``block.ln_scale``                   float multiplying both normed block inputs     ``1.0``
``block.mlp.activation``             module ``h -> h``                              ``ReLUSquared``
``block.mlp.fused``                  module ``(x, w1, w2) -> out``, training only   ``None`` (plain MLP)
``model.skips``                      module ``(i, x, skip) -> x`` with ``num_skips``  ``Skips`` (weighted add)
``model.schedule``                   ``LayerSchedule``; install with ``set_schedule``  ``LayerSchedule.unet(L)``
``model.looping_active``             switch of the schedule's looped layout         ``False``
``model.embed_transform``            module ``(e [B,T,d], ids) -> e`` before the norm  ``IdentityEmbed``
``model.embed_post_norm``            module ``(x [B,T,d], ids) -> x`` after the norm   ``IdentityEmbed``
                                     (``x0`` is its output)
``model.trunk``                      module running the blocks (``Trunk`` subclass)  ``Trunk`` (one stream)
==================================  =============================================  ==========================

Query head ``h`` reads KV head ``h // (H // Hkv)``; ``out_transform`` implementations must use
the same grouping (``y.reshape(B, T, Hkv, H // Hkv, D)``; ``y`` may be non-contiguous).

How a plugin fills each seam (in ``golf_build_model``)::

    for b in model.blocks: b.attn.q_gain.data.fill_(5.0)                       # QK-gain
    for b in model.blocks: b.attn.rotary = Rotary(b.attn.head_dim, cfg.rope_base, rope_dims=16)  # partial RoPE
    for b in model.blocks: b.attn.out_transform = XSA()                         # XSA: forward(y, v) -> y
    for i, b in enumerate(model.blocks): b.ln_scale = 1 / math.sqrt(i + 1)     # LN scale
    for b in model.blocks: b.mlp.activation = LeakyReLUSquared()               # activation
    for b in model.blocks: b.mlp.fused = FusedSquaredReLUMLP(0.5)              # fused kernel (CUDA, checked)
    model.skips = GatedSkips(model.skips.num_skips, model.skips.dim)           # Skips subclass, same ctor
    model.set_schedule(LayerSchedule(range(5), range(5, 11), enc_looped, dec_looped))  # resizes skips
    model.looping_active = True                                                # on_step_end / artifact load

``set_schedule`` and the skips swap commute: ``set_schedule`` rebuilds whatever ``Skips`` type is
installed via ``skips.rebuild(n)``. Parameters a plugin adds should carry a control-pattern name
(``CONTROL_TENSOR_PATTERNS``) or be listed in ``model.golf_control_patterns`` to stay fp32 and go
to the scalar optimizer.
"""
from golf_core.model.attention import BACKENDS, backend_available, causal_attention, resolve_backend, use_baseline_sdpa_kernels
from golf_core.model.block import Block
from golf_core.model.config import GPTConfig
from golf_core.model.dtypes import prepare_for_device, resolve_dtype, restore_fp32_params
from golf_core.model.flops import flops_per_token, matmul_params_per_token
from golf_core.model.gpt import GPT, build_model
from golf_core.model.layers import CastedLinear, RMSNorm, rms_norm
from golf_core.model.mlp import MLP, ReLUSquared
from golf_core.model.params import CONTROL_TENSOR_PATTERNS, count_parameters, is_control_name, is_scalar_param
from golf_core.model.rotary import Rotary, apply_rotary
from golf_core.model.schedule import LayerSchedule
from golf_core.model.seams import IdentityEmbed, IdentityGate, IdentityOutput, describe_seams
from golf_core.model.self_attention import CausalSelfAttention
from golf_core.model.skips import Skips
from golf_core.model.trunk import Trunk

__all__ = [
    "BACKENDS", "Block", "CONTROL_TENSOR_PATTERNS", "CastedLinear", "CausalSelfAttention", "GPT", "GPTConfig",
    "IdentityEmbed", "IdentityGate", "IdentityOutput", "LayerSchedule", "MLP", "RMSNorm", "ReLUSquared", "Rotary", "Skips", "Trunk", "apply_rotary",
    "backend_available", "build_model", "causal_attention", "count_parameters", "describe_seams", "flops_per_token",
    "is_control_name", "is_scalar_param", "matmul_params_per_token", "prepare_for_device", "resolve_backend", "resolve_dtype",
    "restore_fp32_params", "rms_norm", "use_baseline_sdpa_kernels",
]
