"""ortho-init: every eligible linear orthogonal (singular values 1), output projections zero,
and the RNG drawn in the records' module order so that a seed gives the records' weights."""
from pathlib import Path

import pytest
import torch
from torch import nn

from golf_core.model import GPT, GPTConfig
from golf_ortho_init import eligible_linears, orthogonal_init
from golf_ortho_init import plugin

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def _gpt(dim=128, layers=2, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=128, num_layers=layers, model_dim=dim, num_heads=4, num_kv_heads=2))


def test_registration_and_defaults():
    got = []
    plugin.golf_register(got.append)
    info = got[0]
    assert info.name == "ortho-init" and "#1394" in info.lineage and info.legality == "fixed-predictor"
    o = plugin.OrthoInitOptions()
    assert (o.gain, o.min_dim) == (1.0, 64)


def test_eligible_modules_are_qkv_and_fc_in_block_order():
    model = _gpt()
    assert [n for n, _ in eligible_linears(model)] == [
        f"blocks.{i}.{m}" for i in range(2) for m in ("attn.c_q", "attn.c_k", "attn.c_v", "mlp.fc")]


def test_small_linears_are_left_alone():
    """model_dim 32: no weight has both dims >= 64, nothing is drawn, the build still succeeds."""
    model = _gpt(dim=32)
    before = {n: p.clone() for n, p in model.named_parameters()}
    state = torch.get_rng_state()
    assert plugin.golf_build_model(model, plugin.OrthoInitOptions()) is model
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_rng_order_is_the_records():
    """Independent reference: after the same construction, orthogonal_ on fresh tensors drawn in
    named_modules order (c_q, c_k, c_v, fc per block) gives the same weights."""
    model = _gpt(seed=3)
    state = torch.get_rng_state()
    orthogonal_init(model)
    torch.set_rng_state(state)
    for name, lin in eligible_linears(model):
        expected = torch.empty_like(lin.weight)
        nn.init.orthogonal_(expected)
        assert torch.equal(lin.weight, expected), name


def test_gain_scales_the_singular_values():
    model = _gpt()
    orthogonal_init(model, gain=0.5)
    s = torch.linalg.svdvals(model.blocks[0].attn.c_q.weight.detach().double())
    torch.testing.assert_close(s, torch.full_like(s, 0.5), rtol=0, atol=1e-5)


def test_meta_device_counts_without_drawing():
    with torch.device("meta"):
        model = _gpt()
    assert len(orthogonal_init(model)) == 8


def test_pr1394_init_singular_values_and_zero_projections():
    """The pr1394 recipe's model on CPU: q/k/v/fc singular values all 1 (float64 SVD), the attention
    and MLP output projections all zero, std 1/sqrt(512) and 1/sqrt(2048) as an orthogonal matrix has."""
    from golf_core.context import RunContext
    from golf_core.run import build_model
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe

    recipe = load_recipe(RECIPES / "pr1394.toml", overrides=["train.device=cpu", "model.dtype=fp32"])
    plugins = activate(recipe)
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe, plugins, RunContext(recipe=recipe, plugins=plugins, device=torch.device("cpu")))
    for i, block in enumerate(model.blocks):
        for lin in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.fc):
            w = lin.weight.detach().double()
            if i == 0:  # float64 SVD on the first block (the others: the cheaper Gram check)
                s = torch.linalg.svdvals(w)
                assert len(s) == min(w.shape) and float((s - 1).abs().max()) < 1e-5
            else:  # orthonormal rows (or columns): the Gram matrix of the smaller side is I
                gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
                assert float((gram - torch.eye(len(gram), dtype=gram.dtype)).abs().max()) < 1e-5
        assert not block.attn.proj.weight.any() and not block.mlp.proj.weight.any()
    assert float(model.blocks[0].attn.c_q.weight.std()) == pytest.approx(512 ** -0.5, rel=1e-3)
    assert float(model.blocks[0].mlp.fc.weight.std()) == pytest.approx(2048 ** -0.5, rel=1e-3)


@pytest.mark.parametrize("name", ["pr1394", "pr1413", "pr1423", "pr1423-legal", "pr1229", "pr1306", "pr1306-causal"])
def test_every_record_recipe_of_the_lineage_uses_it(name):
    from golf_core import tomlio

    assert "ortho-init" in tomlio.load_file(RECIPES / f"{name}.toml")["plugins"]
