"""The baseline int8 quantizer against an independent float64 re-implementation (pg_core.md §4.7)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golf_core.quant import (build_artifact, decode_artifact, dequantize, pack_artifact,
                             quantize_state_dict_int8, unpack_artifact)

CONTROL = ("attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes",
           "q_gain", "skip_weight", "skip_weights")
Q = 0.9999984
# torch.quantile (which the baseline calls) casts q to the input dtype; in float32 0.9999984 is
# 0.99999839067..., which moves the interpolated clip by ~1e-6 relative. The reference uses that q.
Q_REF = float(np.float32(Q))


# ---- the reference: written from the formulas, float64, explicit loops -----------------------

def ref_quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile of a 1-D float64 array (numpy/torch 'linear' method)."""
    v = sorted(float(x) for x in values)
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def ref_round_half_even(x: float) -> float:
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 == 1):
        return f + 1
    return f


def ref_quantize_matrix(w: np.ndarray):
    """Per row: clip at the quantile, step max(clip/127, 1/127), codes in ±127. Returns
    (q int, scale float64, scale as fp16, unrounded code values)."""
    rows, cols = w.shape
    q = np.zeros((rows, cols), dtype=np.int64)
    raw = np.zeros((rows, cols))
    scales = np.zeros(rows)
    for r in range(rows):
        clip = ref_quantile(np.abs(w[r]), Q_REF)
        step = max(clip / 127.0, 1.0 / 127.0)
        scales[r] = step
        for c in range(cols):
            x = min(max(w[r, c], -clip), clip) / step
            raw[r, c] = x
            q[r, c] = int(min(max(ref_round_half_even(x), -127), 127))
    return q, scales, scales.astype(np.float16), raw


def near_half(x: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    return np.abs(np.abs(x - np.floor(x)) - 0.5) < tol


def assert_matches_reference(name, w, qm):
    entry = qm.entries[name]
    assert entry["codec"] == "per_row"
    q = qm.tensors[entry["q"]]
    s = qm.tensors[entry["scale"]]
    assert q.dtype == torch.int8 and s.dtype == torch.float16
    w64 = w.double().numpy()
    q_ref, s64, s16_ref, raw = ref_quantize_matrix(w64)
    # scales: equal in fp16, except where float32 vs float64 arithmetic straddles an fp16
    # rounding midpoint (the float64 step within 1e-5 relative of it): then one fp16 ulp apart
    s_got = s.numpy()
    bad = s_got != s16_ref
    for r in np.nonzero(bad)[0]:
        lo, hi = sorted([float(s_got[r]), float(s16_ref[r])])
        assert float(np.nextafter(np.float16(lo), np.float16(1))) == hi
        assert abs(s64[r] - (lo + hi) / 2) < 1e-5 * s64[r]
    assert bad.sum() <= max(1, len(s_got) // 100)
    # codes: equal, except a ±1 at a rounding tie (within 1e-4 of .5) or in a straddling row
    qd = q.numpy().astype(np.int64) - q_ref
    assert np.abs(qd).max() <= 1
    assert np.all(near_half(raw[qd != 0] if not bad.any() else raw[~bad][qd[~bad] != 0]))
    assert (qd[~bad] != 0).mean() < 1e-4
    return q_ref, s16_ref


@pytest.fixture(scope="module")
def state_dict():
    g = torch.Generator().manual_seed(0)
    sd = {
        "tok_emb.weight": (torch.randn(160, 512, generator=g) * 0.3).to(torch.bfloat16),  # bf16, rows clip > 1?
        "blocks.0.attn.c_q.weight": torch.randn(256, 300, generator=g) * 2.0,              # clip > 1: no floor
        "blocks.0.mlp.fc.weight": torch.randn(300, 256, generator=g) * 0.02,                # clip < 1: floor 1/127
        "blocks.0.mlp.proj.weight": torch.distributions.StudentT(3.0).sample((200, 400)),   # heavy tails
        "blocks.0.attn_scale": torch.rand(512, generator=g),
        "blocks.0.resid_mix": torch.rand(2, 512, generator=g),
        "blocks.0.attn.q_gain": torch.full((8,), 1.5),
        "skip_weights": torch.rand(4, 512, generator=g).to(torch.bfloat16),
        "small.weight": torch.randn(256, 256, generator=g),                                 # 65,536: passthrough
        "small_half.weight": torch.randn(64, 64, generator=g).half(),
        "vec.big": torch.randn(65537, generator=g),                                          # per-tensor
        "step": torch.tensor(7, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
    }
    return sd


def test_per_row_matches_float64_reference(state_dict):
    qm = quantize_state_dict_int8(state_dict)
    for name in ("tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight"):
        assert_matches_reference(name, state_dict[name].float(), qm)


def test_scale_floor_applies_below_clip_one(state_dict):
    qm = quantize_state_dict_int8(state_dict)
    s = qm.tensors["blocks.0.mlp.fc.weight.scale"]
    assert torch.all(s == torch.tensor(1.0 / 127.0).half())
    s2 = qm.tensors["blocks.0.attn.c_q.weight.scale"].float()
    assert torch.all(s2 > 1.0 / 127.0 + 1e-4)


def test_passthrough_rules(state_dict):
    qm = quantize_state_dict_int8(state_dict)
    e = qm.entries
    for name in ("blocks.0.attn_scale", "blocks.0.resid_mix", "blocks.0.attn.q_gain", "skip_weights"):
        assert e[name]["codec"] == "raw"
        assert qm.tensors[name].dtype == torch.float32, name  # control patterns: fp32
        assert torch.equal(qm.tensors[name], state_dict[name].float())
    assert e["skip_weights"]["dtype"] == "bfloat16"
    assert e["small.weight"]["codec"] == "raw" and e["small.weight"]["dtype"] == "float32"
    assert qm.tensors["small.weight"].dtype == torch.float16
    assert torch.equal(qm.tensors["small.weight"], state_dict["small.weight"].half())
    assert qm.tensors["small_half.weight"].dtype == torch.float16
    assert torch.equal(qm.tensors["step"], state_dict["step"])
    assert torch.equal(qm.tensors["mask"], state_dict["mask"])
    assert e["vec.big"]["codec"] == "per_tensor"


def test_per_tensor_matches_reference(state_dict):
    qm = quantize_state_dict_int8(state_dict)
    w = state_dict["vec.big"].double().numpy()
    clip = ref_quantile(np.abs(w), Q_REF)
    step = clip / 127.0
    s = qm.tensors["vec.big.scale"]
    assert s.dtype == torch.float32 and s.ndim == 0
    assert abs(float(s) - step) <= 1e-6 * step
    raw = np.clip(w, -clip, clip) / step
    q_ref = np.clip(np.round(raw), -127, 127)
    qd = qm.tensors["vec.big.q"].numpy().astype(np.int64) - q_ref
    assert np.abs(qd).max() <= 1 and np.all(near_half(raw[qd != 0]))


def test_int8_zlib_round_trip_matches_reference(state_dict):
    """quantize -> serialize -> zlib -> artifact bytes -> decode -> dequantize, vs the reference."""
    qm = quantize_state_dict_int8(state_dict)
    art = build_artifact(qm, compressor="zlib", byte_shuffle=False, model={"num_layers": 1})
    assert art.codec == "zlib"
    back = decode_artifact(unpack_artifact(pack_artifact(art)))
    out = dequantize(back, template=state_dict)
    assert list(out) == list(state_dict)
    for name, ref in state_dict.items():
        assert out[name].dtype == ref.dtype and out[name].shape == ref.shape
    for name in ("tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight"):
        w = state_dict[name].double().numpy()
        q_ref, s64, s16, raw = ref_quantize_matrix(w)
        deq_ref = torch.from_numpy(q_ref.astype(np.float64) * s16.astype(np.float64)[:, None])
        deq_ref = deq_ref.to(state_dict[name].dtype)
        # identical except where the code differs by one at a rounding tie (one step apart,
        # plus the rounding of the target dtype)
        diff = (out[name].double() - deq_ref.double()).abs()
        steps = torch.from_numpy(s16.astype(np.float64))[:, None].expand_as(diff)
        ulp = 2.0 ** -7 if state_dict[name].dtype == torch.bfloat16 else 2.0 ** -23
        assert torch.all((diff == 0) | (diff <= steps * 1.01 + deq_ref.double().abs() * ulp))
        assert (diff != 0).double().mean() < 1e-2
        if state_dict[name].dtype == torch.float32:
            # the scheme's error bound inside the clip: half a float64 step, plus the code times
            # the step's fp16 rounding (codes are computed with the unrounded step)
            wt = torch.from_numpy(w)
            clip = torch.tensor([ref_quantile(np.abs(row), Q_REF) for row in w])[:, None]
            inside = wt.abs() <= clip
            err = (out[name].double() - wt).abs()
            s64t = torch.from_numpy(s64)[:, None].expand_as(err)
            bound = 0.5 * s64t + torch.from_numpy(np.abs(q_ref) + 1.0) * (steps - s64t).abs()
            assert torch.all(err[inside] <= bound[inside] * (1 + 1e-4) + 1e-7)
    for name in ("blocks.0.attn_scale", "small.weight", "step", "mask"):
        expect = state_dict[name] if name in ("blocks.0.attn_scale", "step", "mask") else state_dict[name].half().float()
        assert torch.equal(out[name], expect)


def test_zero_and_constant_rows():
    w = torch.zeros(300, 300)
    w[1] = 5.0
    qm = quantize_state_dict_int8({"m.weight": w})
    out = dequantize(qm)["m.weight"]
    assert torch.equal(out[0], torch.zeros(300))
    # constant row 5.0: clip 5, step 5/127 (fp16), code 127
    assert torch.all(qm.tensors["m.weight.q"][1] == 127)
    assert torch.allclose(out[1], torch.full((300,), 127 * float(torch.tensor(5 / 127).half())))
