"""Per-row int-k with SDClip + round-to-nearest against a float64 reference (pg_core.md §5.7)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golf_core.quant import dequantize, quantize_state_dict_intk, quantize_tensor_intk, sdclip_scale
from golf_core.quant.report import code_entropy_bits


def ref_sdclip(w: np.ndarray, bits: int, k: float):
    cr = 2 ** (bits - 1) - 1
    rows, cols = w.shape
    scale = np.zeros(rows)
    q = np.zeros((rows, cols), dtype=np.int64)
    raw = np.zeros((rows, cols))
    for r in range(rows):
        mean = sum(w[r]) / cols
        std = math.sqrt(sum((x - mean) ** 2 for x in w[r]) / (cols - 1))
        scale[r] = float(np.float16(max(k * std / cr, 1e-10)))
        for c in range(cols):
            raw[r, c] = w[r, c] / scale[r]
            q[r, c] = int(min(max(np.round(raw[r, c]), -cr), cr))
    return q, scale, raw


@pytest.mark.parametrize("bits,k", [(6, 12.85), (8, 20.0), (4, 3.0), (5, 1.5)])
def test_matches_float64_reference(bits, k):
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(40, 300, generator=g) * 0.05
    w[3] *= 20  # a loud row
    w[5, 7] = 2.0  # an outlier that the clip cuts
    q, s = quantize_tensor_intk(w, bits, k)
    assert q.dtype == torch.int8 and s.dtype == torch.float16
    q_ref, s_ref, raw = ref_sdclip(w.double().numpy(), bits, k)
    # scales: fp16 values equal (the float32 std can straddle an fp16 midpoint: then one ulp)
    sd = np.abs(s.double().numpy() - s_ref)
    assert np.all(sd <= np.spacing(s_ref.astype(np.float16)).astype(np.float64) * 1.01)
    assert (sd > 0).sum() <= 1
    same = sd == 0
    qd = q.numpy().astype(np.int64) - q_ref
    assert np.all(qd[same] == 0) or np.all(np.abs(np.abs(raw[same][qd[same] != 0] % 1) - 0.5) < 1e-4)
    assert np.abs(qd).max() <= 1
    cr = 2 ** (bits - 1) - 1
    assert int(q.abs().max()) <= cr


def test_scale_uses_fp16_rounded_value():
    w = torch.randn(8, 1000) * 0.0123
    s = sdclip_scale(w, 6, 12.85)
    q, _ = quantize_tensor_intk(w, 6, 12.85)
    # codes are the rounding against the fp16 scale, not the float32 one
    assert torch.equal(q, torch.clamp(torch.round(w / s.float()[:, None]), -31, 31).to(torch.int8))


def test_entropy_falls_with_k():
    w = torch.randn(256, 512) * 0.02
    ents = [code_entropy_bits(quantize_tensor_intk(w, 6, k)[0]) for k in (4.0, 8.0, 12.85, 20.0)]
    assert all(a > b for a, b in zip(ents, ents[1:]))


def test_state_dict_rules():
    g = torch.Generator().manual_seed(0)
    sd = {"tok_emb.weight": torch.randn(600, 128, generator=g).bfloat16(),
          "blocks.0.attn.c_q.weight": torch.randn(300, 300, generator=g),
          "blocks.0.attn.q_gain": torch.full((4,), 1.5),
          "blocks.0.resid_mix": torch.rand(2, 128, generator=g),
          "tiny.weight": torch.randn(16, 16, generator=g)}
    qm = quantize_state_dict_intk(sd, keep_float_max_numel=1000)
    e = qm.entries
    assert e["tok_emb.weight"]["bits"] == 8 and e["tok_emb.weight"]["clip_sigmas"] == 20.0
    assert e["blocks.0.attn.c_q.weight"]["bits"] == 6 and e["blocks.0.attn.c_q.weight"]["clip_sigmas"] == 12.85
    assert int(qm.tensors["blocks.0.attn.c_q.weight.q"].abs().max()) <= 31
    for name in ("blocks.0.attn.q_gain", "blocks.0.resid_mix", "tiny.weight"):  # #1394: all fp16
        assert e[name]["codec"] == "raw" and qm.tensors[name].dtype == torch.float16
    out = dequantize(qm, template=sd)
    assert out["tok_emb.weight"].dtype == torch.bfloat16
    err = (out["blocks.0.attn.c_q.weight"] - sd["blocks.0.attn.c_q.weight"]).abs()
    s = qm.tensors["blocks.0.attn.c_q.weight.scale"].float()[:, None]
    inside = sd["blocks.0.attn.c_q.weight"].abs() <= 31 * s
    assert torch.all(err[inside] <= s.expand_as(err)[inside] * 0.5 * (1 + 1e-6))


def test_bad_bits():
    with pytest.raises(ValueError):
        quantize_tensor_intk(torch.randn(4, 4), 9, 1.0)
