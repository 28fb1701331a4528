"""The TTT forward is the model's own forward plus the adapters, for every installed plugin and
every shipped recipe (the #1787 README: a TTT forward without the attention gate scored 1.908
BPB): with every ``B = 0`` it equals ``forward_logits`` exactly; each target, alone non-zero,
changes the logits; it runs one adapter slot per virtual layer; and q/k/v/head adapters equal
the model with merged weights, o/mlp a hand-written bypass."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from golf_core.context import RunContext
from golf_core.model import GPT, GPTConfig
from golf_core.plugins import activate, registry
from golf_core.recipe import load_recipe
from golf_core.run.build import build_model
from golf_core.testkit.contract import tiny_recipe
from golf_lora_ttt import TARGETS, LoRABank, attached, bank_shape, ttt_logits, virtual_layers

REPO = Path(__file__).resolve().parents[3]
RECIPES = sorted((REPO / "recipes").glob("*.toml"))
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _installed() -> list[str]:
    return sorted(n for n, p in registry().plugins.items() if p.ok)


def _model(recipe):
    plugins = activate(recipe)
    torch.manual_seed(0)
    model = build_model(recipe, plugins, RunContext(recipe=recipe, plugins=plugins)).float().eval()
    _wake(model)
    return model


def _wake(model):
    """Zero-initialised tensors (output projections) get small random values: they would hide an adapter."""
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)


def _check_forward(model, vocab, seq):
    layouts = [False] + ([True] if model.schedule.has_loop else [])
    for looping in layouts:
        model.looping_active = looping
        s = bank_shape(model)
        g = torch.Generator().manual_seed(1)
        x = torch.randint(0, vocab, (2, seq), generator=g)
        bank = LoRABank(2, s["slots"], s["dim"], s["kv_dim"], s["vocab"], rank=4)
        with torch.no_grad():
            want = model.forward_logits(x)
            got = ttt_logits(model, bank, x)         # also asserts one slot per virtual layer
        assert torch.equal(got, want), f"zero LoRA changed the forward (looping={looping})"
        assert s["slots"] == virtual_layers(model)
        for t in TARGETS:
            b = copy.deepcopy(bank)
            with torch.no_grad():
                mods = [b.head] if t == "head" else list(b.layers[t])
                for m in mods:
                    m.B.normal_(generator=g)
                moved = (ttt_logits(model, b, x) - want).abs().max()
            assert moved > 0, f"the {t} adapter does not reach the forward (looping={looping})"


@pytest.mark.parametrize("name", _installed())
def test_each_installed_plugin_keeps_the_forward(name):
    """Every installed plugin alone in a tiny recipe (plugins that need others are covered by the recipes)."""
    try:
        recipe = tiny_recipe([name])
        model = _model(recipe)
    except Exception as e:  # noqa: BLE001 - a plugin that cannot run alone
        pytest.skip(f"{name} does not build alone: {type(e).__name__}: {e}")
    _check_forward(model, recipe.data.vocab_size, 32)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_keeps_the_forward(path):
    recipe = load_recipe(path, tiny=True)
    missing = [n for n in recipe.plugins if n not in registry().plugins or not registry().plugins[n].ok]
    if missing:
        pytest.skip(f"plugins not installed: {missing}")
    _check_forward(_model(recipe), recipe.data.vocab_size, 32)


def _tiny_untied():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=40, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1, tie_embeddings=False)
    m = GPT(cfg).double()
    _wake(m)
    return m.eval()


def _random_bank(m, alpha=None):
    s = bank_shape(m)
    bank = LoRABank(2, s["slots"], s["dim"], s["kv_dim"], s["vocab"], rank=3, alpha=alpha).double()
    with torch.no_grad():
        for a in bank.adapters():
            a.B.normal_(0, 0.3)
    return bank


def test_qkv_and_head_adapters_equal_merged_weights():
    m = _tiny_untied()
    bank = _random_bank(m, alpha=6.0)
    for t in ("o", "mlp"):
        del bank.layers[t]
    x = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = ttt_logits(m, bank, x)
        for r in range(2):
            ref = copy.deepcopy(m)
            for i, blk in enumerate(ref.blocks):
                for t, lin in (("q", blk.attn.c_q), ("k", blk.attn.c_k), ("v", blk.attn.c_v)):
                    a = bank.layers[t][i]
                    lin.weight += 2.0 * a.B[r] @ a.A[r]         # scale alpha / rank = 6 / 3
            ref.lm_head.weight += 2.0 * bank.head.B[r] @ bank.head.A[r]
            torch.testing.assert_close(got[r], ref.forward_logits(x[r:r + 1])[0], rtol=1e-10, atol=1e-12)


class _Bypass(nn.Module):
    """``inner(h) + (h @ A^T) @ B^T``: the reference's own o / mlp bypass."""

    def __init__(self, inner, A, B):
        super().__init__()
        self.inner, self.A, self.B = inner, A, B

    def forward(self, h):
        return self.inner(h) + (h @ self.A.T) @ self.B.T


def test_o_and_mlp_adapters_are_bypasses_of_the_block_inputs():
    m = _tiny_untied()
    bank = _random_bank(m)
    for t in ("q", "k", "v"):
        del bank.layers[t]
    bank.head = None
    x = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = ttt_logits(m, bank, x)
        for r in range(2):
            ref = copy.deepcopy(m)
            for i, blk in enumerate(ref.blocks):
                o, mlp = bank.layers["o"][i], bank.layers["mlp"][i]
                blk.attn = _Bypass(blk.attn, o.A[r], o.B[r])
                blk.mlp = _Bypass(blk.mlp, mlp.A[r], mlp.B[r])
            torch.testing.assert_close(got[r], ref.forward_logits(x[r:r + 1])[0], rtol=1e-10, atol=1e-12)


def test_hooks_are_removed_and_the_head_restored():
    m = _tiny_untied()
    bank = _random_bank(m)
    x = torch.randint(0, 40, (2, 8))
    with torch.no_grad():
        before = m.forward_logits(x)
        with attached(m, bank):
            assert not torch.equal(m.forward_logits(x), before)
        assert torch.equal(m.forward_logits(x), before) and "raw_logits" not in vars(m)
    with pytest.raises(ValueError, match="rows"):
        ttt_logits(m, bank, x[:1])
