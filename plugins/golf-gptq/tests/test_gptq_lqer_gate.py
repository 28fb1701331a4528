"""LQER (#1797), quant-gate (#1736) and per-group clip sigmas (#1626) against float64 / brute-force
references written from the definitions, and their decode through the plugin's decoders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golf_core.api import dequantize, serialize_quantized
from golf_core.quant.serialize import deserialize_quantized
from golf_core.quant.intk import sdclip_scale
from golf_gptq import GPTQConfig, GPTQModelQuantizer
from golf_gptq.lqer import LQERConfig, low_rank, pack_asym, pack_sym
from golf_gptq.plugin import DECODERS


def _off_tie(x: np.ndarray) -> np.ndarray:
    """Elements not within 1e-4 of a rounding tie (float32 and float64 may round those apart)."""
    return np.abs(np.abs(x - np.floor(x)) - 0.5) > 1e-4


def test_low_rank_is_the_best_rank_r_approximation():
    g = torch.Generator().manual_seed(0)
    E = torch.randn(48, 128, generator=g, dtype=torch.float64)
    A, B = low_rank(E, 4)
    s = np.linalg.svd(E.numpy(), compute_uv=False)
    # Eckart-Young: the residual of the best rank-4 approximation is the tail of the spectrum
    assert np.isclose(float(torch.linalg.norm(E - A @ B)), np.sqrt((s[4:] ** 2).sum()), rtol=1e-10)
    assert A.shape == (48, 4) and B.shape == (4, 128)


def test_asym_packing_matches_the_definition():
    g = torch.Generator().manual_seed(1)
    A, B = torch.randn(96, 4, generator=g), torch.randn(4, 128, generator=g)
    c = pack_asym(A, B, 64)
    sA = np.float16(np.abs(A.numpy()).max() / 1.5)
    assert c.sA.numpy() == sA
    x = A.double().numpy() / np.float64(sA)
    ok = _off_tie(x)
    assert np.array_equal(c.qA.numpy()[ok], np.clip(np.round(x), -2, 1)[ok])
    Bg = B.double().numpy().reshape(-1, 64)
    sB = (np.abs(Bg).max(axis=1) / 7.5).astype(np.float16)
    np.testing.assert_allclose(c.sB.double().numpy(), sB.astype(np.float64), rtol=1e-3)
    y = Bg / sB.astype(np.float64)[:, None]
    ok = _off_tie(y)
    assert np.array_equal(c.qB.numpy().reshape(-1, 64)[ok], np.clip(np.round(y), -8, 7)[ok])
    assert c.qA.min() >= -2 and c.qA.max() <= 1 and c.qB.min() >= -8 and c.qB.max() <= 7


def test_sym_packing_matches_the_definition():
    g = torch.Generator().manual_seed(2)
    A, B = torch.randn(10, 3, generator=g), torch.randn(3, 30, generator=g)
    c = pack_sym(A, B, 4)
    for M, q, s in ((A, c.qA, c.sA), (B, c.qB, c.sB)):
        ref_s = (np.abs(M.double().numpy()).max(axis=1) / 7).astype(np.float16)
        assert np.array_equal(s.numpy(), ref_s)
        x = M.double().numpy() / ref_s.astype(np.float64)[:, None]
        ok = _off_tie(x)
        assert np.array_equal(q.numpy()[ok], np.clip(np.round(x), -7, 7)[ok])


def _state(seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {"tok_emb.weight": torch.randn(256, 64, generator=g) * 0.05,
          "blocks.0.attn.c_q.weight": torch.randn(64, 64, generator=g) * 0.05,
          "blocks.0.attn.attn_gate_w": torch.randn(8, 12, generator=g),
          "blocks.0.mlp.fc.weight": torch.randn(256, 64, generator=g) * 0.05,
          "blocks.0.mlp.proj.weight": torch.randn(64, 256, generator=g) * 0.05 * torch.linspace(0.1, 4, 64)[:, None],
          "blocks.0.attn_scale": torch.ones(64)}
    hs = {}
    for n, t in sd.items():
        if t.ndim == 2 and t.numel() > 1000:
            X = torch.randn(400, t.shape[1], generator=g)
            hs[n] = X.T @ X
    return sd, hs


def test_lqer_corrects_the_k_largest_errors_and_decodes():
    sd, hs = _state()
    base = GPTQModelQuantizer(sd, hs, GPTQConfig(min_numel=1000)).quantize()
    qm = GPTQModelQuantizer(sd, hs, GPTQConfig(min_numel=1000, lqer=LQERConfig(top_k=2))).quantize()
    # brute force: the two largest ||W - q s||_F of the uncorrected quantization
    errs = {}
    for n, e in base.entries.items():
        if "q" in e:
            deq = base.tensors[e["q"]].double() * base.tensors[e["scale"]].double()[:, None]
            errs[n] = float(torch.linalg.norm(sd[n].double() - deq))
    top = sorted(errs, key=errs.get, reverse=True)[:2]
    assert sorted(n for n, e in qm.entries.items() if e["codec"] == "per_row_lqer") == sorted(top)
    assert qm.meta["gptq"]["lqer"] == sorted(top)
    rt = deserialize_quantized(serialize_quantized(qm))  # what artifact.bin gives back
    dec = dequantize(rt, decoders=DECODERS)
    for n in top:
        e = qm.entries[n]
        t = {k: rt.tensors[e[k]].double() for k in ("q", "scale", "lqA", "lqAs", "lqB", "lqBs")}
        ref = t["q"] * t["scale"][:, None] + (t["lqA"] * t["lqAs"]) @ (
            (t["lqB"].reshape(-1, 64) * t["lqBs"][:, None]).reshape(t["lqB"].shape))
        assert torch.allclose(dec[n].double(), ref, atol=1e-6)
        deq0 = base.tensors[n + ".q"].double() * base.tensors[n + ".scale"].double()[:, None]
        assert torch.linalg.norm(sd[n].double() - dec[n].double()) < torch.linalg.norm(sd[n].double() - deq0)
    for n in set(errs) - set(top):
        assert torch.equal(qm.tensors[n + ".q"], base.tensors[n + ".q"])


def test_quant_gate_int8_rows_by_name_pattern():
    sd, hs = _state(1)
    gate = "blocks.0.attn.attn_gate_w"
    off = GPTQModelQuantizer(sd, hs, GPTQConfig(min_numel=1000)).quantize()
    assert off.entries[gate]["codec"] == "raw" and off.tensors[gate].dtype == torch.float16
    qm = GPTQModelQuantizer(sd, hs, GPTQConfig(min_numel=1000, gate_int8=True)).quantize()
    e = qm.entries[gate]
    assert e["codec"] == "per_row" and e["method"] == "gate_int8_row"
    W = sd[gate].double().numpy()
    s = (np.abs(W).max(axis=1) / 127).astype(np.float16)
    assert np.array_equal(qm.tensors[e["scale"]].numpy(), s)
    x = W / s.astype(np.float64)[:, None]
    ok = _off_tie(x)
    assert np.array_equal(qm.tensors[e["q"]].numpy()[ok], np.clip(np.round(x), -127, 127)[ok])
    dec = dequantize(qm, decoders=DECODERS)[gate].double().numpy()
    np.testing.assert_allclose(dec, qm.tensors[e["q"]].double().numpy() * s.astype(np.float64)[:, None], rtol=1e-7)
    # another pattern, or a size outside the range, leaves it in fp16
    for cfg in (GPTQConfig(min_numel=1000, gate_int8=True, gate_pattern="*.other_gate"),
                GPTQConfig(min_numel=1000, gate_int8=True, gate_min_numel=100)):
        assert GPTQModelQuantizer(sd, hs, cfg).quantize().entries[gate]["codec"] == "raw"


def test_per_group_clip_sigmas_and_fit_scaling():
    sd, hs = _state(2)
    cfg = GPTQConfig(min_numel=1000, mlp_clip_sigmas=12.0, attn_clip_sigmas=13.0, embed_bits=7, embed_clip_sigmas=15.0)
    quant = GPTQModelQuantizer(sd, hs, cfg)
    qm = quant.quantize()
    want = {"tok_emb.weight": (7, 15.0), "blocks.0.attn.c_q.weight": (6, 13.0),
            "blocks.0.mlp.fc.weight": (6, 12.0), "blocks.0.mlp.proj.weight": (6, 12.0)}
    for n, (bits, k) in want.items():
        e = qm.entries[n]
        assert (e["bits"], e["clip_sigmas"]) == (bits, k)
        assert torch.equal(qm.tensors[e["scale"]], sdclip_scale(sd[n], bits, k))
        assert int(qm.tensors[e["q"]].abs().max()) <= 2 ** (bits - 1) - 1
    # the budget fit's k scales the MLP and attention multipliers together; the embedding keeps its own
    qm2 = quant.quantize(12.85 * 2)
    assert qm2.entries["blocks.0.mlp.fc.weight"]["clip_sigmas"] == pytest.approx(24.0)
    assert qm2.entries["blocks.0.attn.c_q.weight"]["clip_sigmas"] == pytest.approx(26.0)
    assert qm2.entries["tok_emb.weight"]["clip_sigmas"] == 15.0


def test_gate_on_a_model_with_an_attention_gate_decodes_into_it(tiny_model_with_gate):
    model = tiny_model_with_gate
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    qm = GPTQModelQuantizer(sd, {}, GPTQConfig(min_numel=10**9, gate_int8=True)).quantize()
    gates = [n for n, e in qm.entries.items() if e.get("method") == "gate_int8_row"]
    assert gates == [n for n in sd if n.endswith(".attn_gate_w")] and gates
    dec = dequantize(deserialize_quantized(serialize_quantized(qm)), model.state_dict(), decoders=DECODERS)
    model.load_state_dict(dec, strict=True)


@pytest.fixture
def tiny_model_with_gate():
    """The core GPT with an ``attn_gate_w`` [heads, 12] parameter on every attention module
    (the shape of #1787's sparse gate)."""
    from golf_core.model import build_model
    from golf_core.train.testing import tiny_recipe

    recipe = tiny_recipe(vocab_size=64, model={"model_dim": 32, "num_heads": 4, "num_kv_heads": 2, "num_layers": 2})
    torch.manual_seed(0)
    model = build_model(recipe.model, recipe.data.vocab_size)
    for block in model.blocks:
        block.attn.register_parameter("attn_gate_w", torch.nn.Parameter(torch.randn(4, 12)))
    return model
