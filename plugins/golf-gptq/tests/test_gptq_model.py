"""GPTQ on a trained tiny model through the plugin's hooks: smaller loss gap and Hessian-weighted
error than round-to-nearest at the same bits, calibration sources, legality, artifact round trip.

The loss gap is measured in nats on the held-out stream; BPB is the same sum divided by a fixed
byte count and ln 2, so the ordering of the gaps is the ordering of the BPB gaps.
"""
from __future__ import annotations

import pytest
import torch

from golf_core.quant import build_artifact, decode_artifact, dequantize, pack_artifact, quantize_state_dict_intk, unpack_artifact
from golf_core.train.testing import heldout_loss, make_train_context
from golf_gptq import collect_hessians, hessian_errors
from golf_gptq import plugin as gptq_plugin
from golf_gptq.flow import SUMMARY
from golf_gptq.options import GPTQOptions


def model_with(recipe, data, state, plugins=()):
    from golf_core.model import build_model, prepare_for_device

    ctx = make_train_context(recipe, list(plugins), data=data)
    model = build_model(recipe.model, recipe.data.vocab_size)
    prepare_for_device(model, "cpu", dtype="fp32")
    model.load_state_dict(state)
    return ctx, model


def loss_of(recipe, data, state, decoded):
    _, m = model_with(recipe, data, state)
    m.load_state_dict({k: v.to(state[k].dtype) for k, v in decoded.items()})
    return heldout_loss(m, data, recipe.train.train_seq_len)


@pytest.mark.parametrize("bits,k", [(4, 4.0), (3, 3.0)])
def test_gptq_beats_rtn_on_a_trained_model(trained, bits, k):
    recipe, state, data = trained
    ctx, model = model_with(recipe, data, state, [("gptq", gptq_plugin)])
    opts = GPTQOptions(bits=bits, clip_sigmas=k, embed_bits=bits, embed_clip_sigmas=k, min_numel=0,
                       calibration_batches=8, calibration_seqs=8, report=False)
    qm = gptq_plugin.golf_quantize(model=model, ctx=ctx, opts=opts)
    rtn = quantize_state_dict_intk(state, bits=bits, clip_sigmas=k, embed_bits=bits, embed_clip_sigmas=k,
                                   keep_float_max_numel=0)
    # same scales, same tensors quantized
    for name, e in qm.entries.items():
        if e["codec"] == "per_row":
            assert torch.equal(qm.tensors[e["scale"]], rtn.tensors[rtn.entries[name]["scale"]])
    base = heldout_loss(model, data, recipe.train.train_seq_len)
    gap_gptq = loss_of(recipe, data, state, dequantize(qm)) - base
    gap_rtn = loss_of(recipe, data, state, dequantize(rtn)) - base
    assert gap_gptq < gap_rtn, (gap_gptq, gap_rtn)
    # Hessian-weighted error, on the same calibration Hessians
    from golf_gptq.flow import calibration_batches
    H = collect_hessians(model, calibration_batches(model, ctx, opts), min_numel=0)
    eg = hessian_errors(dequantize(qm), state, H)
    er = hessian_errors(dequantize(rtn), state, H)
    assert sum(v["hessian_error"] for v in eg.values()) < 0.9 * sum(v["hessian_error"] for v in er.values())
    assert set(eg) >= {"tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.1.mlp.proj.weight"}


def test_calibration_sources_and_legality(trained, tmp_path):
    recipe, state, data = trained
    for source in ("ar", "val"):
        ctx, model = model_with(recipe, data, state, [("gptq", gptq_plugin)])
        ctx.out_dir = tmp_path
        opts = GPTQOptions(min_numel=0, calibration=source, calibration_batches=2, calibration_seqs=4,
                           calibration_seq_len=32, ar_seqs=4, ar_batch=2)
        qm = gptq_plugin.golf_quantize(model=model, ctx=ctx, opts=opts)
        summary = ctx.stash[SUMMARY]
        assert summary["calibration"] == source and summary["hessians"] == 13  # 2 x 6 block linears + the embedding
        assert ctx.plugins.legality()["gptq"] == "fixed-predictor"  # recipe defaults: train
        track = ctx.plugins.info("gptq").track_for(opts)
        if source == "val":
            assert ctx.validation_reads and ctx.validation_reads[0]["reason"].startswith("gptq")
            assert track == "trains-on-val"
        else:
            assert not ctx.validation_reads and track == "fixed-predictor"
        assert (tmp_path / "quant_report.json").is_file()
        out = dequantize(qm, template=state)
        assert out.keys() == state.keys()


def test_artifact_round_trip_and_report(trained, tmp_path):
    import json

    recipe, state, data = trained
    ctx, model = model_with(recipe, data, state, [("gptq", gptq_plugin)])
    ctx.out_dir = tmp_path
    opts = GPTQOptions(min_numel=1024, calibration_batches=4, calibration_seqs=8)
    qm = gptq_plugin.golf_quantize(model=model, ctx=ctx, opts=opts)
    blob = pack_artifact(build_artifact(qm, "brotli", True, model={"vocab_size": 128}))
    back = dequantize(decode_artifact(unpack_artifact(blob)), template=state)
    direct = dequantize(qm, template=state)
    for name in state:
        assert torch.equal(back[name], direct[name])
    assert qm.entries["tok_emb.weight"]["bits"] == 8 and qm.entries["blocks.0.mlp.fc.weight"]["bits"] == 6
    assert qm.entries["blocks.0.attn.c_k.weight"]["codec"] == "per_row"  # 32 x 64 = 2048 > min_numel
    for name in ("blocks.0.resid_mix", "blocks.0.attn.q_gain"):  # small: fp16 passthrough (#1394)
        assert qm.entries[name]["codec"] == "raw" and qm.tensors[name].dtype == torch.float16
    rep = json.loads((tmp_path / "quant_report.json").read_text())
    rows = {r["name"]: r for r in rep["tensors"]}
    assert rows["blocks.1.mlp.proj.weight"]["hessian_error_rel"] > 0
    assert 0 < rows["blocks.1.mlp.proj.weight"]["entropy_bits"] < 6
    assert rep["gptq"]["calibration"] == "train" and rep["gptq"]["hessians"] == 13


def test_calibration_is_counted_inside_the_training_clock(trained):
    """#1787-#1855 reserve 0.5 s and collect Hessians for 3-5 s more: golf adds the calibration
    seconds to the timed training seconds and flags a run that ends past the cap."""
    from types import SimpleNamespace

    recipe, state, data = trained
    for reserve, elapsed, within in ((0.5, 600.0, False), (8.0, 592.0, True)):
        tr = recipe.train.model_copy(update={"max_wallclock_seconds": 600.0, "reserve_seconds": reserve})
        rec = recipe.model_copy(update={"train": tr})
        ctx, model = model_with(rec, data, state, [("gptq", gptq_plugin)])
        gptq_plugin.golf_on_step_end(progress=SimpleNamespace(step=10, elapsed_s=elapsed, frac=1.0, lr_mul=0.0), ctx=ctx)
        opts = GPTQOptions(min_numel=0, calibration="train", calibration_batches=2, calibration_seqs=4,
                           calibration_seq_len=32, report=False)
        gptq_plugin.golf_quantize(model=model, ctx=ctx, opts=opts)
        clock = ctx.stash[SUMMARY]["clock"]
        cal = ctx.stash[SUMMARY]["calibration_seconds"]
        assert clock["train_seconds"] == elapsed and clock["train_seconds_measured"]
        assert clock["train_data_seconds"] == pytest.approx(elapsed + cal, abs=2e-3)
        # a loop that used the whole 600 s leaves no time for calibration; 8 s of reserve do
        assert clock["within_clock"] == within, clock
