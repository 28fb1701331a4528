"""gptq with ``rotation = "hadamard"`` (formerly mr-gptq) on a real (untrained) GPT: quantize with
rotation, decode through golf_dequantize after an artifact.bin round trip; the restored weights
match plain GPTQ's quality. The old plugin name fails with a hint naming the option."""
from __future__ import annotations

import pytest
import torch

from golf_core.quant import build_artifact, decode_artifact, dequantize, pack_artifact, unpack_artifact
from golf_core.train.testing import make_train_context, synthetic_shards, tiny_recipe
from golf_gptq import collect_hessians, hessian_errors
from golf_gptq.flow import calibration_batches
from golf_gptq import CODEC
from golf_gptq import plugin as gptq_plugin


def test_hooks_round_trip(tmp_path):
    from golf_core.model import build_model, prepare_for_device

    data = synthetic_shards(tmp_path / "d", vocab_size=128, train_tokens=20_000)
    recipe = tiny_recipe(vocab_size=128, model={"model_dim": 48, "num_heads": 4, "num_kv_heads": 2})
    ctx = make_train_context(recipe, [("gptq", gptq_plugin)], data=data, out_dir=tmp_path)
    torch.manual_seed(0)
    model = build_model(recipe.model, 128)
    prepare_for_device(model, "cpu", dtype="fp32")
    with torch.no_grad():  # give the zero-initialized projections some weight
        for name, p in model.named_parameters():
            if p.ndim == 2 and float(p.abs().sum()) == 0:
                p.normal_(0, 0.02)
    opts = gptq_plugin.GPTQOptions(rotation="hadamard", min_numel=0, calibration_batches=2, calibration_seqs=4, rotation_seed=11)
    assert ctx.plugins.info("gptq").required_on_load
    qm = gptq_plugin.golf_quantize(model=model, ctx=ctx, opts=opts)
    state = model.state_dict()
    e = qm.entries["blocks.0.mlp.proj.weight"]
    assert e["codec"] == CODEC and e["rotation"]["seed"] == 11 and e["rotation"]["blocks"] == [32, 32, 32]
    assert qm.entries["tok_emb.weight"]["codec"] == CODEC and qm.entries["tok_emb.weight"]["bits"] == 8
    back = decode_artifact(unpack_artifact(pack_artifact(build_artifact(qm, "brotli", True))))
    out = gptq_plugin.golf_dequantize(quantized=back, ctx=ctx, opts=opts)
    assert out.keys() == state.keys()
    H = collect_hessians(model, calibration_batches(model, ctx, opts), min_numel=0)
    errs = hessian_errors(out, state, H)
    assert errs and max(v["hessian_error_rel"] for v in errs.values()) < 0.05
    for name in state:
        assert out[name].shape == state[name].shape
    assert (tmp_path / "quant_report.json").is_file()
    result = {"val_bpb": 2.0, "pre_quant_val_bpb": 1.9}
    gptq_plugin.golf_summary(result=result, ctx=ctx, opts=opts)
    assert abs(result["gptq"]["quant_gap_bpb"] - 0.1) < 1e-12
    assert result["gptq"]["rotation"] == {"kind": "hadamard", "seed": 11}


def test_old_plugin_name_names_the_option():
    from golf_core.errors import PluginError, RecipeError
    from golf_core.plugins import PluginRegistry, activate
    from golf_core.recipe import Recipe

    reg = PluginRegistry()
    reg.add("gptq", gptq_plugin)
    with pytest.raises(PluginError, match=r'merged into "gptq".*rotation = "hadamard"'):
        activate(Recipe(plugins=["mr-gptq"]), reg)
    with pytest.raises(RecipeError, match=r'\[options.mr-gptq\].*rotation = "hadamard"'):
        activate(Recipe(plugins=["gptq"], options={"mr-gptq": {"rotation_seed": 1}}), reg)
