"""Through ``golf run`` and ``golf eval``: every post-#1413 quantizer option of ``gptq`` with the
budget fit, the ``pergroup`` codec, on a model with ``attn_gate_w`` tensors; the artifact decodes
into a fresh model (the score comes from it), ``golf eval`` gives the same score from the file
alone, and the decoders ship in the run's script (its code bytes count them)."""
from __future__ import annotations

import pytest

FIT_TOL = 0.005


@pytest.mark.slow  # a tiny end-to-end run, calibration and a fitted GPTQ (about a minute on 2 cores)
def test_frontier_quantizers_and_pergroup_decode_exactly(tmp_path):
    from golf_core.commands.eval import evaluate_artifact
    from golf_core.export.shipping import ship_recipe
    from golf_core.plugins import activate
    from golf_core.recipe import apply_override, validate_recipe_data
    from golf_core.run import run_recipe
    from golf_core.tiny import apply_tiny

    gptq = {"fit": True, "hessian_clip_lambda": 0.175, "mlp_clip_sigmas": 12.0, "attn_clip_sigmas": 13.0,
            "embed_bits": 7, "embed_clip_sigmas": 15.0, "gate_int8": True, "lqer_top_k": 3,
            "calibration_batches": 2}
    data = apply_tiny({"plugins": ["attn-gate", "gptq", "pergroup"], "options": {"gptq": gptq, "pergroup": {"backend": "zpaq"}},
                       "artifact": {"compressor": "brotli"}})
    for o in ("train.iterations=8", "train.warmup_steps=1", "eval.max_tokens=4097", "train.log_every=0"):
        apply_override(data, o)
    recipe = validate_recipe_data(data, "frontier.toml")
    recipe.tiny = True
    code = ship_recipe(recipe, activate(recipe)).code_bytes
    cap = recipe.artifact.cap_bytes = code + 100_000
    out = tmp_path / "run"
    result = run_recipe(recipe, out, echo=False, progress=False)
    shipped = result["code"]["modules"]
    assert {"golf_pergroup.codec", "golf_pergroup.simsort", "golf_gptq.lqer", "golf_gptq.sdclip"} <= set(shipped)
    assert result["under_cap"] and cap * (1 - FIT_TOL) <= result["artifact_bytes"] <= cap
    g = result["gptq"]
    assert g["fit"]["converged"] and g["quantized_tensors"] > 0
    from golf_core.api import deserialize_quantized
    from golf_core.quant.artifact import read_artifact
    from golf_pergroup import unpack_pergroup

    art = read_artifact(out / "artifact.bin")
    assert art.codec == "pergroup+zpaq"
    entries = deserialize_quantized(unpack_pergroup(art.payload, "zpaq")).entries
    assert sum(e["codec"] == "per_row_lqer" for e in entries.values()) == 3
    assert sum(e.get("method") == "gate_int8_row" for e in entries.values()) == recipe.model.num_layers
    assert entries["tok_emb.weight"]["bits"] == 7
    again = evaluate_artifact(out / "artifact.bin")
    assert again["val_bpb"] == result["val_bpb"]
