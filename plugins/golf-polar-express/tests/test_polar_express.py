"""polar-express: Muon's Newton-Schulz with #1787's per-iteration table against an independent
float64 reference (the scalar polynomials applied to the singular values), and the plugin."""
from __future__ import annotations

import pytest
import torch

from golf_core.testkit import plugin_problems, tiny_run_problems
from golf_core.train.loop import configure_optimizers
from golf_core.train.muon import NS_EPS, zeropower_via_newtonschulz5
from golf_core.train.testing import build_model, make_train_context, tiny_recipe
from golf_polar_express import POLAR_EXPRESS, plugin


def reference(G: torch.Tensor, steps: int) -> torch.Tensor:
    """U p_k(...p_1(s / (||G||_F + eps))) V^T in float64, with p_i(x) = a_i x + b_i x^3 + c_i x^5
    for the first min(steps, 5) tuples: what the matrix iteration does to each singular value."""
    G = G.double()
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    s = S / (torch.linalg.matrix_norm(G) + NS_EPS)
    for a, b, c in POLAR_EXPRESS[:steps]:
        s = a * s + b * s ** 3 + c * s ** 5
    return U @ torch.diag(s) @ Vh


@pytest.mark.parametrize("shape", [(24, 24), (16, 40), (40, 16)])
@pytest.mark.parametrize("steps", [1, 3, 5, 8])
@pytest.mark.parametrize("batched", [False, True])
def test_float64_iteration_equals_the_singular_value_polynomials(shape, steps, batched):
    G = torch.randn(*shape, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)
    got = zeropower_via_newtonschulz5(G, steps, dtype=torch.float64, coefficients=POLAR_EXPRESS, batched=batched)
    assert got.shape == G.shape
    assert (got - reference(G, steps)).abs().max().item() < 1e-11


def test_five_iterations_bring_the_singular_values_near_one():
    G = torch.randn(64, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = torch.linalg.svdvals(zeropower_via_newtonschulz5(G, 5, dtype=torch.float64, coefficients=POLAR_EXPRESS))
    ns5 = torch.linalg.svdvals(zeropower_via_newtonschulz5(G, 5, dtype=torch.float64))
    assert 0.8 < s.min() and s.max() < 1.2
    assert (s - 1).abs().max() < (ns5 - 1).abs().max()  # closer to orthogonal than the fixed NS5


def test_bf16_forms_stay_near_the_reference():
    G = torch.randn(64, 96, generator=torch.Generator().manual_seed(1))
    ref = reference(G, 5)
    for batched in (False, True):
        got = zeropower_via_newtonschulz5(G, 5, coefficients=POLAR_EXPRESS, batched=batched)
        assert got.dtype == torch.bfloat16 and (got.double() - ref).abs().max().item() < 0.05


def test_the_plugin_installs_the_table_on_every_muon():
    for batched in (True, False):
        recipe = tiny_recipe().model_copy(deep=True)
        recipe.options = {"polar-express": {"batched_form": batched}}
        ctx = make_train_context(recipe, [("polar-express", plugin)])
        opt = configure_optimizers(build_model(ctx, seed=0), ctx)
        assert opt.muons() and all(m.ns_coefficients == POLAR_EXPRESS and m.ns_batched is batched for m in opt.muons())


def test_keeps_the_golf_plugin_contract():
    assert plugin_problems("polar-express") == []


def test_runs_alone_in_a_tiny_recipe(tmp_path):
    assert tiny_run_problems("polar-express", tmp_path) == []
