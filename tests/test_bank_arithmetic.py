"""``[train] muon_arithmetic = "banks"``: the rounding of the #1019 lineage's Parallel Muon over
parameter banks (openai/parameter-golf PR #1229, #1306, #1423), checked against a reference that
stacks golf's per-layer matrices into 3-D banks and runs the lineage's stated arithmetic on them
(bf16 momentum, batched Newton-Schulz with ``c*(A@A)``, shape scale in the fp32 step size) and
``torch.nn.utils.clip_grad_norm_`` over the banks in the record's parameter order."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from golf_core import tomlio
from golf_core.config import TrainSection
from golf_core.model import GPT, GPTConfig
from golf_core.train.banks import bank_clip_order
from golf_core.train.muon import zeropower_via_newtonschulz5
from golf_core.train.optim import build_optimizers

REPO = Path(__file__).resolve().parent.parent
LAYERS = 3
#: golf's per-layer matrices of each bank, in bank order (Q of every layer, then out; K then V; ...)
BANK_MEMBERS = (("attn.c_q", "attn.proj"), ("attn.c_k", "attn.c_v"), ("mlp.fc",), ("mlp.proj",))


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=96, num_layers=LAYERS, model_dim=64, num_heads=4, num_kv_heads=2))


def _with_grads(model: GPT, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        # magnitudes spread over 6 decades, so summation order shows in the norm's last bits
        p.grad = torch.randn(p.shape, generator=g) * 10.0 ** torch.randint(-3, 3, (), generator=g).item()


def _banks(model: GPT, what: str) -> list[torch.Tensor]:
    named = dict(model.named_parameters())
    get = (lambda p: p.grad) if what == "grad" else (lambda p: p.detach())
    return [torch.stack([get(named[f"blocks.{i}.{s}.weight"]) for s in members for i in range(LAYERS)])
            for members in BANK_MEMBERS]


def _reference_ns(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Batched quintic Newton-Schulz over a (B, M, N) bank, b*A + c*(A@A), bf16."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.bfloat16()
    tr = X.size(-2) > X.size(-1)
    if tr:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.mT if tr else X


def test_batched_order_is_the_same_maths_in_float64_and_another_rounding_in_bf16():
    G = torch.randn(48, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = [zeropower_via_newtonschulz5(G, dtype=torch.float64, batched=s) for s in (False, True)]
    assert torch.allclose(exact[0], exact[1], rtol=0, atol=1e-12)
    bf = [zeropower_via_newtonschulz5(G.float(), batched=s) for s in (False, True)]
    assert not torch.equal(bf[0], bf[1])
    assert torch.equal(bf[1], _reference_ns(G.float().unsqueeze(0))[0])


def test_bank_clip_order_is_the_banked_models_parameter_order():
    m = _model()
    order = bank_clip_order(m)
    named = {id(p): n for n, p in m.named_parameters()}
    flat = [named[id(e)] if not isinstance(e, tuple) else tuple(named[id(q)] for q in e) for e in order]
    assert flat[0] == "skips.skip_weights"
    assert flat[1] == tuple(f"blocks.{i}.attn.c_q.weight" for i in range(LAYERS)) + tuple(f"blocks.{i}.attn.proj.weight" for i in range(LAYERS))
    assert flat[2] == tuple(f"blocks.{i}.attn.c_k.weight" for i in range(LAYERS)) + tuple(f"blocks.{i}.attn.c_v.weight" for i in range(LAYERS))
    assert [len(e) for e in flat[3:5]] == [LAYERS, LAYERS]
    assert flat[5] == "tok_emb.weight" and flat[6].startswith("blocks.0.")
    assert sum(len(e) if isinstance(e, tuple) else 1 for e in flat) == len(named)


def test_banked_clip_equals_clip_grad_norm_on_the_stacked_banks():
    train = TrainSection(grad_clip_norm=0.3, muon_arithmetic="banks")
    m = _model()
    _with_grads(m, seed=4)
    # the banked model's parameters() with the same gradients: skips, 4 banks, embedding, block tensors
    banked = [torch.nn.Parameter(t.clone()) for t in _banks(m, "weight")]
    for p, g in zip(banked, _banks(m, "grad")):
        p.grad = g.clone()
    named = dict(m.named_parameters())
    rest = [n for n in named if n.startswith("blocks.") and not any(f".{s}." in n for ms in BANK_MEMBERS for s in ms)]
    ref = [named["skips.skip_weights"], *banked, named["tok_emb.weight"], *[named[n] for n in rest]]
    ref = [p if any(p is b for b in banked) else torch.nn.Parameter(p.detach().clone()) for p in ref]
    for r, n in zip(ref, ["skips.skip_weights", None, None, None, None, "tok_emb.weight", *rest]):
        if n is not None:
            r.grad = named[n].grad.clone()
    want = torch.nn.utils.clip_grad_norm_(ref, 0.3)
    got = build_optimizers(m, train).clip_grads()
    assert torch.equal(got, want) and float(want) > 0.3
    for b, g in zip(banked, _banks(m, "grad")):
        assert torch.equal(b.grad, g)


@pytest.mark.parametrize("wd", [0.0, 0.04])
def test_bank_muon_steps_equal_the_batched_reference(wd):
    train = TrainSection(matrix_lr=0.025, muon_momentum=0.95, muon_arithmetic="banks")
    m = _model()
    opt = build_optimizers(m, train)["muon"]
    for g in opt.param_groups:
        g["weight_decay"] = wd
    weights = _banks(m, "weight")
    moms = [torch.zeros_like(w, dtype=torch.bfloat16) for w in weights]
    for step in range(3):
        _with_grads(m, seed=10 + step)
        for k, (w, grad) in enumerate(zip(weights, _banks(m, "grad"))):
            g = grad.bfloat16()
            moms[k].mul_(0.95).add_(g)
            u = _reference_ns(g.add(moms[k], alpha=0.95))
            if wd:
                w.mul_(1.0 - 0.025 * wd)
            w.add_(u.float(), alpha=-0.025 * max(1.0, w.size(-2) / w.size(-1)) ** 0.5)
        opt.step()
        for w, got in zip(weights, _banks(m, "weight")):
            assert torch.equal(got, w), step


def test_bank_lineage_recipes_use_the_bank_arithmetic():
    for name in ("pr1229", "pr1306", "pr1306-causal"):
        assert tomlio.load_file(REPO / "recipes" / f"{name}.toml")["train"]["muon_arithmetic"] == "banks", name
    assert tomlio.load_file(REPO / "recipes" / "pr1394.toml")["train"].get("muon_arithmetic", "per-matrix") == "per-matrix"


def test_banks_first_clip_equals_clip_grad_norm_on_the_banks_then_the_rest():
    """``banks-first`` (#1529, #1530 and later register their banks before every other tensor):
    the bank Muon arithmetic, and the clip over [4 banks, skips, embedding, block tensors]."""
    train = TrainSection(grad_clip_norm=0.3, muon_arithmetic="banks-first")
    m = _model()
    _with_grads(m, seed=2)  # a draw whose total norm differs in the last bit between the two orders
    banked = [torch.nn.Parameter(t.clone()) for t in _banks(m, "weight")]
    for p, g in zip(banked, _banks(m, "grad")):
        p.grad = g.clone()
    members = {f"blocks.{i}.{s}.weight" for ms in BANK_MEMBERS for s in ms for i in range(LAYERS)}
    rest = []
    for n, p in m.named_parameters():  # golf's order of the rest is the record's: skips, embedding, blocks
        if n not in members:
            r = torch.nn.Parameter(p.detach().clone())
            r.grad = p.grad.clone()
            rest.append(r)
    want = torch.nn.utils.clip_grad_norm_([*banked, *rest], 0.3)
    opt = build_optimizers(m, train)
    got = opt.clip_grads()
    assert torch.equal(got, want) and float(want) > 0.3
    assert opt.optimizers["muon"].bank_arithmetic
    m2 = _model()
    _with_grads(m2, seed=2)
    assert not torch.equal(build_optimizers(m2, TrainSection(grad_clip_norm=0.3, muon_arithmetic="banks")).clip_grads(), want)
    first = bank_clip_order(m, banks_first=True)[0]
    assert isinstance(first, tuple) and first[0] is dict(m.named_parameters())["blocks.0.attn.c_q.weight"]


@pytest.mark.parametrize("name", ["pr1530", "pr1610", "pr1626", "pr1667",
                                  "pr1729", "pr1736", "pr1787", "pr1851", "pr1855"])
def test_records_from_1530_train_with_their_bank_arithmetic_and_fp32_rope_angles(name):
    """#1530's code on builds its RoPE table from ``inv_freq.float()``; #1529's in the buffer's dtype."""
    from golf_core.recipe import load_recipe
    rec = load_recipe(name)
    assert rec.train.muon_arithmetic == "banks-first"
    assert rec.options["partial-rope"]["fp32_angles"] is True


def test_banks_first_order_places_smeargate_as_the_later_records_register_it():
    """#1851/#1855 (openai/parameter-golf records 2026-04-27_*) list their parameters as: the four
    banks, skip weights, skip gates, the routing lambdas, SmearGate's lambda, the embedding, the
    blocks, then SmearGate's gate (a module built after the blocks). The phases' clip sums norms in
    that order; any other order moves the clip coefficient by an ulp (bench/parity.md, "LoRA/phased TTT of #1667 and of the CaseOps records")."""
    from golf_core.recipe import load_recipe
    from golf_core.run import build_model, make_context
    rec = load_recipe(str(REPO / "recipes" / "pr1855.toml"), overrides=[
        "data.vocab_size=96", "model.model_dim=64", "model.num_heads=4", "model.num_kv_heads=2",
        "train.device=cpu", "model.dtype=fp32"])
    ctx = make_context(rec, None, echo=False)
    m = build_model(rec, ctx.plugins, ctx)
    name_of = {id(p): n for n, p in m.named_parameters()}
    order = bank_clip_order(m, banks_first=True)
    assert all(isinstance(t, tuple) for t in order[:4])
    rest = [name_of[id(p)] for p in order[4:]]
    head = ["skips.skip_weights", "skips.skip_gates", "trunk.parallel_post_lambdas", "trunk.parallel_resid_lambdas",
            "embed_transform.smear_lambda", "tok_emb.weight"]
    assert rest[:len(head)] == head
    assert rest[-1] == "embed_transform.smear_gate.weight"
    assert all(n.startswith("blocks.") for n in rest[len(head):-1])
    assert len(rest) + sum(len(t) for t in order[:4]) == sum(1 for p in m.parameters() if p.requires_grad)
