"""Through ``golf run`` (golf_core.run): gptq on the demo corpus with ``[options.gptq] fit``
lands within 0.5% under the cap, writes quant_report.json, and the score comes from artifact.bin."""
from __future__ import annotations

import json
import math

import pytest

FIT_TOL = 0.005


@pytest.mark.slow
def test_budget_fit_lands_just_under_the_cap(tmp_path):
    from golf_core.run import run_recipe
    from golf_core.export.shipping import ship_recipe
    from golf_core.plugins import activate
    from golf_core.recipe import apply_override, validate_recipe_data
    from golf_core.tiny import apply_tiny

    # --tiny baseline (9 x 64, vocab 1024): ~260k int6 weights + a 65k int8 embedding. A model
    # budget of 110 kB is well below its size at k = 12.85, so the fit must raise k.
    data = apply_tiny({"plugins": ["gptq"], "options": {"gptq": {"fit": True}},
                      "artifact": {"compressor": "brotli", "byte_shuffle": True}})
    for o in ("train.iterations=12", "train.warmup_steps=1", "eval.max_tokens=4097", "train.log_every=0"):
        apply_override(data, o)
    recipe = validate_recipe_data(data, "gptq-fit.toml")
    recipe.tiny = True
    code = ship_recipe(recipe, activate(recipe)).code_bytes  # the run's code bytes, give or take a module
    cap = recipe.artifact.cap_bytes = code + 110_000
    out = tmp_path / "run"
    result = run_recipe(recipe, out, echo=False, progress=False)
    assert result["code_bytes"] == result["code"]["code_bytes"]  # what the run shipped
    assert abs(result["code_bytes"] - code) < 5_000
    assert result["under_cap"] and cap * (1 - FIT_TOL) <= result["artifact_bytes"] <= cap, result["artifact_bytes"]
    fit = result["gptq"]["fit"]
    assert fit["k"] > 12.85 and fit["converged"]
    assert result["gptq"]["clip_sigmas"] == fit["k"]
    assert math.isfinite(result["gptq"]["quant_gap_bpb"])
    rep = json.loads((out / "quant_report.json").read_text())
    rows = {r["name"]: r for r in rep["tensors"]}
    assert rows["tok_emb.weight"]["bits"] == 8 and rows["blocks.0.mlp.fc.weight"]["bits"] == 6
    assert "hessian_error" in rows["blocks.0.mlp.fc.weight"] and "entropy_bits" in rows["blocks.0.mlp.fc.weight"]
    assert rep["gptq"]["quant_gap_bpb"] == result["gptq"]["quant_gap_bpb"]
    assert (out / "artifact.bin").stat().st_size == result["model_bytes"]
