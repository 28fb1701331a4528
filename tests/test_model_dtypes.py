"""Init (pg_core §4.2 "Init") and the dtype layout of prepare_for_device (pg_core §4.2 "Dtypes")."""
import torch
from torch import nn

from golf_core.model import CastedLinear, GPT, GPTConfig, prepare_for_device, resolve_dtype

CFG = GPTConfig(vocab_size=64, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2, qk_gain_init=1.5)


def test_init_values():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=1024, num_layers=2, model_dim=128, num_heads=4, num_kv_heads=2))
    w = model.tok_emb.weight
    assert abs(w.std().item() - 0.005) < 2e-4 and abs(w.mean().item()) < 2e-4
    for b in model.blocks:
        assert torch.count_nonzero(b.attn.proj.weight) == 0 and torch.count_nonzero(b.mlp.proj.weight) == 0
        assert torch.all(b.attn.q_gain == 1.5) and b.attn.q_gain.dtype == torch.float32
        assert torch.all(b.attn_scale == 1) and torch.all(b.mlp_scale == 1)
        assert torch.equal(b.resid_mix, torch.stack([torch.ones(128), torch.zeros(128)]))
        assert b.ln_scale == 1.0
    assert torch.all(model.skips.skip_weights == 1)


def test_init_draws_random_numbers_in_the_baseline_order():
    """Same seed -> same weights as the baseline script: Embedding, then per block c_q, c_k, c_v,
    proj, fc, proj (PyTorch default Linear init), then the tied embedding's normal(0, std)."""
    torch.manual_seed(1234)
    model = GPT(CFG)
    torch.manual_seed(1234)
    nn.Embedding(CFG.vocab_size, CFG.model_dim)
    d, kv, hid = CFG.model_dim, CFG.kv_dim, CFG.mlp_hidden
    expect = []
    for _ in range(CFG.num_layers):
        expect.append([nn.Linear(i, o, bias=False).weight.detach().clone()
                       for i, o in ((d, d), (d, kv), (d, kv), (d, d), (d, hid), (hid, d))])
    emb = torch.empty(CFG.vocab_size, CFG.model_dim).normal_(0.0, 0.005)
    assert torch.equal(model.tok_emb.weight, emb)
    for b, (q, k, v, _, fc, _) in zip(model.blocks, expect):
        assert torch.equal(b.attn.c_q.weight, q) and torch.equal(b.attn.c_k.weight, k)
        assert torch.equal(b.attn.c_v.weight, v) and torch.equal(b.mlp.fc.weight, fc)


def test_resolve_dtype():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", torch.device("cuda", 0)) == torch.bfloat16
    assert resolve_dtype("fp32", "cuda") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16


def test_cpu_auto_is_all_float32():
    model = prepare_for_device(GPT(CFG), "cpu")
    assert model.compute_dtype == torch.float32 and model.attention_backend == "sdpa"
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {b.dtype for b in model.buffers()} == {torch.float32}


def test_bf16_layout_like_the_baseline():
    torch.manual_seed(0)
    model = GPT(CFG)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prepare_for_device(model, "cpu", dtype="bf16")
    assert model.compute_dtype == torch.bfloat16
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert dtypes.pop("tok_emb.weight") == torch.bfloat16
    assert set(dtypes.values()) == {torch.float32}  # CastedLinear, control and 1-D params
    for m in model.modules():
        if isinstance(m, CastedLinear):
            assert m.weight.dtype == torch.float32
    # the records' .bfloat16() round trip: fp32 matrices hold bf16-representable values
    w = model.blocks[0].attn.c_q.weight
    assert torch.equal(w, before["blocks.0.attn.c_q.weight"].bfloat16().float())
    assert model.blocks[0].attn.rotary.inv_freq.dtype == torch.bfloat16  # buffers cast like model.bfloat16()
    x = torch.randint(0, 64, (2, 8))
    loss = model(x, x)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.tok_emb.weight.grad.dtype == torch.bfloat16


def test_plugin_control_patterns_stay_float32():
    model = GPT(CFG)
    model.extra_gate = nn.Parameter(torch.zeros(4, 32))
    model.golf_control_patterns = ("extra_gate",)
    prepare_for_device(model, "cpu", dtype="bf16")
    assert model.extra_gate.dtype == torch.float32
