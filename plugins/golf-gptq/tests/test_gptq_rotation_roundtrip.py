"""Rotated GPTQ through serialize + artifact.bin restores the weights; the objective is invariant."""
from __future__ import annotations

import torch

from golf_core.errors import ArtifactError
from golf_core.quant import build_artifact, decode_artifact, dequantize, pack_artifact, unpack_artifact
from golf_gptq import GPTQConfig, GPTQModelQuantizer, gptq_quantize_weight, hessian_error
from golf_gptq import (CODEC, HadamardTransform, block_plan, decode_hadamard, rotate, rotate_hessian,
                      tensor_signs, unrotate)


def setup_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {"tok_emb.weight": torch.randn(96, 48, generator=g) * 0.05,
          "blocks.0.attn.c_q.weight": torch.randn(40, 48, generator=g) * 0.05,
          "blocks.0.mlp.proj.weight": torch.randn(48, 100, generator=g) * 0.05,  # fan-in 100: blocks 64+32+4
          "blocks.0.attn.q_gain": torch.full((4,), 1.5),
          "blocks.0.resid_mix": torch.rand(2, 48, generator=g)}
    H = {}
    for name in ("tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.proj.weight"):
        n = sd[name].shape[1]
        X = torch.randn(500, n, generator=g) @ (torch.eye(n) + 0.3 * torch.randn(n, n, generator=g))
        H[name] = X.T @ X / 10
    return sd, H


def test_round_trip_through_artifact_restores_weights():
    sd, H = setup_state()
    cfg = GPTQConfig(min_numel=200, bits=6, clip_sigmas=12.85)
    qm = GPTQModelQuantizer(sd, H, cfg, HadamardTransform(seed=5)).quantize()
    assert qm.entries["blocks.0.mlp.proj.weight"]["codec"] == CODEC
    assert qm.entries["blocks.0.mlp.proj.weight"]["rotation"]["blocks"] == [64, 32, 4]
    assert qm.entries["blocks.0.resid_mix"]["codec"] == "raw"
    art = unpack_artifact(pack_artifact(build_artifact(qm, "brotli", True, model={"x": 1})))
    back = decode_artifact(art)
    with_plugin = dequantize(back, template=sd, decoders={CODEC: decode_hadamard})
    # the decode equals (q*s) R^T computed densely, and stays close to the original weights
    for name in H:
        e = back.entries[name]
        signs = tensor_signs(5, name, sd[name].shape[1])
        R = rotate(torch.eye(sd[name].shape[1], dtype=torch.float64), signs, e["rotation"]["blocks"])
        dense = (back.tensors[e["q"]].double() * back.tensors[e["scale"]].double()[:, None]) @ R.T
        assert torch.allclose(with_plugin[name].double(), dense, atol=1e-6)
        # the Hessian-weighted error of the restored weights is the one GPTQ saw in rotated space
        Wr = sd[name].double() @ R
        Hr = R.T @ H[name].double() @ R
        qs = back.tensors[e["q"]].double() * back.tensors[e["scale"]].double()[:, None]
        assert abs(hessian_error(sd[name], with_plugin[name], H[name]) - hessian_error(Wr, qs, Hr)) \
            < 1e-4 * hessian_error(Wr, qs, Hr)
        rel = float((with_plugin[name] - sd[name]).norm() / sd[name].norm())
        assert rel < 0.3, (name, rel)
    assert torch.equal(with_plugin["blocks.0.attn.q_gain"], sd["blocks.0.attn.q_gain"])  # fp16-exact value
    # without the plugin's decoder the core refuses by name
    try:
        dequantize(back, template=sd)
    except ArtifactError as err:
        assert "hadamard_per_row" in str(err)
    else:
        raise AssertionError("core decoded a rotated entry")


def test_rotation_preserves_the_gptq_objective():
    sd, H = setup_state(1)
    name = "blocks.0.mlp.proj.weight"
    W, Hn = sd[name].double(), H[name].double()
    signs, blocks = tensor_signs(0, name, 100), block_plan(100)
    Wr, Hr = rotate(W, signs, blocks), rotate_hessian(Hn, signs, blocks)
    # an error E in the rotated space costs the same as E R^T in the original space
    E = torch.randn_like(W) * 0.01
    cost_rot = hessian_error(Wr, Wr - E, Hr)
    cost_orig = hessian_error(W, W - unrotate(E, signs, blocks), Hn)
    assert abs(cost_rot - cost_orig) < 1e-9 * max(cost_orig, 1.0)
    q, s = gptq_quantize_weight(Wr, Hr, bits=6, clip_sigmas=12.85)
    assert q.abs().max() <= 31


def test_decoder_rejects_bad_rotation_metadata():
    sd, H = setup_state()
    qm = GPTQModelQuantizer(sd, H, GPTQConfig(min_numel=200), HadamardTransform()).quantize()
    qm.entries["blocks.0.attn.c_q.weight"]["rotation"]["blocks"] = [32, 8]
    try:
        dequantize(qm, decoders={CODEC: decode_hadamard})
    except ArtifactError as err:
        assert "do not fit 48 columns" in str(err)
    else:
        raise AssertionError("bad block plan accepted")
