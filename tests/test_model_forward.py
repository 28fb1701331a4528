"""The whole forward against an independent float64 re-implementation written from the formulas
of pg_core §4.2 (baseline) and §5.2-5.3 (the PR #1394 seams: partial RoPE, XSA, LN scale,
sigmoid-gated skips, leaky-ReLU², looped schedule), with the seams filled the way plugins will."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from golf_core.model import GPT, GPTConfig, LayerSchedule, Rotary, Skips

EPS64 = torch.finfo(torch.float64).eps


# ---- seam implementations as plugins would write them ---------------------------------------

class XSA(nn.Module):
    def forward(self, y, v):
        B, T, H, D = y.shape
        Hkv = v.size(2)
        yg = y.reshape(B, T, Hkv, H // Hkv, D)
        vn = F.normalize(v, dim=-1).unsqueeze(3)
        return (yg - (yg * vn).sum(-1, keepdim=True) * vn).reshape(B, T, H, D)


class GatedSkips(Skips):
    def __init__(self, num_skips, dim):
        super().__init__(num_skips, dim)
        self.skip_gates = nn.Parameter(torch.zeros(num_skips, dim))

    def forward(self, i, x, skip):
        g = torch.sigmoid(self.skip_gates[i].to(x.dtype))[None, None, :]
        return torch.lerp(self.skip_weights[i].to(x.dtype)[None, None, :] * skip, x, g)


class LeakyReLUSquared(nn.Module):
    def forward(self, x):
        return F.leaky_relu(x, 0.5).square()


# ---- the independent reference ---------------------------------------------------------------

def rms(x):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + EPS64)


def reference(P, cfg, ids, rope_dims=None, xsa=False, ln_scales=None, gated=False, leaky=False, layout=None):
    """float64 logits and final hidden of the model described by the parameter dict P."""
    d, H, Hkv = cfg.model_dim, cfg.num_heads, cfg.num_kv_heads
    D, group, L = d // H, H // Hkv, cfg.num_layers
    rd = rope_dims or D
    half = rd // 2
    enc, dec = layout or (list(range(L // 2)), list(range(L // 2, L)))
    n_skip = P["skips.skip_weights"].shape[0]
    B, T = ids.shape

    def rope(u):  # [T, heads, D]
        out = u.clone()
        for t in range(T):
            for j in range(half):
                th = t * cfg.rope_base ** (-2.0 * j / rd)
                a, b = u[t, :, j], u[t, :, j + half]
                out[t, :, j] = a * math.cos(th) + b * math.sin(th)
                out[t, :, j + half] = -a * math.sin(th) + b * math.cos(th)
        return out

    def attention(i, xin):
        p = f"blocks.{i}.attn."
        y = torch.zeros(B, T, H, D, dtype=torch.float64)
        for b in range(B):
            q = rope(rms((xin[b] @ P[p + "c_q.weight"].T).view(T, H, D)))
            k = rope(rms((xin[b] @ P[p + "c_k.weight"].T).view(T, Hkv, D)))
            v = (xin[b] @ P[p + "c_v.weight"].T).view(T, Hkv, D)
            q = q * P[p + "q_gain"][None, :, None]
            for h in range(H):
                g = h // group
                for t in range(T):
                    s = (k[: t + 1, g] @ q[t, h]) / math.sqrt(D)
                    e = torch.exp(s - s.max())
                    y[b, t, h] = (e / e.sum()) @ v[: t + 1, g]
                    if xsa:
                        vn = v[t, g] / v[t, g].norm()
                        y[b, t, h] = y[b, t, h] - (y[b, t, h] @ vn) * vn
        return y.reshape(B, T, d) @ P[p + "proj.weight"].T

    def mlp(i, xin):
        h = xin @ P[f"blocks.{i}.mlp.fc.weight"].T
        h = torch.where(h > 0, h, 0.5 * h) ** 2 if leaky else torch.clamp(h, min=0) ** 2
        return h @ P[f"blocks.{i}.mlp.proj.weight"].T

    def block(i, x, x0):
        mix = P[f"blocks.{i}.resid_mix"]
        x = mix[0] * x + mix[1] * x0
        s = ln_scales[i] if ln_scales else 1.0
        x = x + P[f"blocks.{i}.attn_scale"] * attention(i, rms(x) * s)
        return x + P[f"blocks.{i}.mlp_scale"] * mlp(i, rms(x) * s)

    x = rms(P["tok_emb.weight"][ids])
    x0, stack = x, []
    for i in enc:
        x = block(i, x, x0)
        stack.append(x)
    for j, i in enumerate(dec):
        if j < n_skip and stack:
            w, sk = P["skips.skip_weights"][j], stack.pop()
            if gated:
                g = torch.sigmoid(P["skips.skip_gates"][j])
                x = g * x + (1 - g) * w * sk
            else:
                x = x + w * sk
        x = block(i, x, x0)
    h = rms(x)
    z = h @ (P["tok_emb.weight"] if cfg.tie_embeddings else P["lm_head.weight"]).T
    return cfg.logit_softcap * torch.tanh(z / cfg.logit_softcap), h


def reference_loss(logits, targets):
    z = logits.reshape(-1, logits.size(-1))
    m = z.max(-1, keepdim=True).values
    lse = (m + torch.log(torch.exp(z - m).sum(-1, keepdim=True))).squeeze(-1)
    return (lse - z[torch.arange(z.size(0)), targets.reshape(-1)]).mean()


# ---- helpers ---------------------------------------------------------------------------------

CFG = GPTConfig(vocab_size=37, num_layers=5, model_dim=32, num_heads=4, num_kv_heads=2, mlp_mult=1.5,
                logit_softcap=3.0, rope_base=100.0)


def randomize(model, seed=0):
    """Give every parameter a non-trivial value (zero-init projections would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            if name.endswith("resid_mix"):
                p.copy_(torch.stack([torch.ones(p.shape[1]), torch.zeros(p.shape[1])]).to(p.dtype) + 0.3 * r)
            elif name.endswith(("attn_scale", "mlp_scale", "skip_weights")):
                p.copy_(1 + 0.3 * r)
            elif name.endswith("q_gain"):
                p.copy_(0.5 + 2.5 * torch.rand(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
            elif name.endswith("skip_gates"):
                p.copy_(r)
            elif name == "tok_emb.weight":
                p.copy_(r)
            else:
                p.copy_(r * 0.5 / math.sqrt(p.shape[1]) * 2)


def exact_rope(model):
    """float64 model with float64-exact RoPE frequencies (the fp32 ones are checked in test_model_rotary)."""
    model.double()
    for b in model.blocks:
        rot = b.attn.rotary
        rot.inv_freq = torch.tensor([rot.base ** (-2.0 * j / rot.rope_dims) for j in range(rot.rope_dims // 2)],
                                    dtype=torch.float64)
    return model


def params64(model):
    return {n: p.detach().double() for n, p in model.named_parameters()}


def tokens(B=2, T=9, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, CFG.vocab_size, (B, T), generator=g), torch.randint(0, CFG.vocab_size, (B, T), generator=g)


# ---- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tied", [True, False])
def test_baseline_forward_matches_float64_reference(tied):
    cfg = GPTConfig(**{**CFG.to_dict(), "tie_embeddings": tied})
    model = GPT(cfg)
    randomize(model)
    exact_rope(model)
    x, y = tokens()
    ref_logits, ref_h = reference(params64(model), cfg, x)
    torch.testing.assert_close(model.forward_hidden(x), ref_h, rtol=0, atol=1e-10)
    torch.testing.assert_close(model.forward_logits(x), ref_logits, rtol=0, atol=1e-10)
    torch.testing.assert_close(model(x, y), reference_loss(ref_logits, y).float(), rtol=1e-6, atol=1e-6)


def test_float32_model_close_to_reference():
    model = GPT(CFG)
    randomize(model)
    x, _ = tokens()
    ref_logits, _ = reference(params64(model), CFG, x)
    assert model.forward_logits(x).dtype == torch.float32
    torch.testing.assert_close(model.forward_logits(x).double(), ref_logits, rtol=0, atol=2e-4)


@pytest.mark.parametrize("looping", [False, True])
def test_pr1394_seams_match_float64_reference(looping):
    model = GPT(CFG)
    L, D = CFG.num_layers, CFG.model_dim // CFG.num_heads
    virt = [0] + [1, 2] * 3 + [3, 4]                       # loop blocks 1..2, NUM_LOOPS=2
    model.set_schedule(LayerSchedule(range(L // 2), range(L // 2, L), virt[:len(virt) // 2], virt[len(virt) // 2:]))
    model.skips = GatedSkips(model.skips.num_skips, model.skips.dim)
    for i, b in enumerate(model.blocks):
        b.attn.rotary = Rotary(D, base=CFG.rope_base, rope_dims=4)
        b.attn.out_transform = XSA()
        b.ln_scale = 1.0 / math.sqrt(i + 1)
        b.mlp.activation = LeakyReLUSquared()
    model.looping_active = looping
    randomize(model, seed=5)
    exact_rope(model)
    x, y = tokens(seed=4)
    layout = (virt[:4], virt[4:]) if looping else None
    ref_logits, _ = reference(params64(model), CFG, x, rope_dims=4, xsa=True, gated=True, leaky=True,
                              ln_scales=[1.0 / math.sqrt(i + 1) for i in range(L)], layout=layout)
    assert model.skips.num_skips == 4
    torch.testing.assert_close(model.forward_logits(x), ref_logits, rtol=0, atol=1e-10)
    torch.testing.assert_close(model(x, y), reference_loss(ref_logits, y).float(), rtol=1e-6, atol=1e-6)


def test_hidden_then_logits_equals_forward_logits():
    model = GPT(CFG)
    randomize(model)
    x, _ = tokens()
    h = model.forward_hidden(x)
    assert h.shape == (2, 9, CFG.model_dim)
    assert torch.equal(model.compute_logits(h), model.forward_logits(x))
    # an eval-time adapter (SLOT) adds a delta to the hidden and reuses the head
    delta = torch.randn(1, 1, CFG.model_dim)
    torch.testing.assert_close(model.compute_logits(h + delta).double(),
                               reference(params64(model), CFG, x)[1].add(delta.double()).matmul(
                                   params64(model)["tok_emb.weight"].T).div(3.0).tanh().mul(3.0),
                               rtol=0, atol=1e-5)


def test_loss_is_cross_entropy_of_logits():
    model = GPT(CFG)
    randomize(model)
    x, y = tokens()
    logits = model.forward_logits(x)
    assert logits.abs().max() <= CFG.logit_softcap
    torch.testing.assert_close(model(x, y).double(), reference_loss(logits.double(), y), rtol=1e-6, atol=1e-6)


def test_causality_future_tokens_do_not_change_past_logits():
    model = GPT(CFG)
    randomize(model)
    x, _ = tokens()
    x2 = x.clone()
    x2[:, 6:] = (x2[:, 6:] + 1) % CFG.vocab_size
    a, b = model.forward_logits(x), model.forward_logits(x2)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])
