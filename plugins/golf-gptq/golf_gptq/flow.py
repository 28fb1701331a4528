"""The ``gptq`` run flow: calibrate, collect Hessians, quantize (fitting ``k`` to the byte
budget when the option ``fit`` is on), report; with ``rotation = "hadamard"`` every matrix and its
Hessian are rotated first (:mod:`golf_gptq.hadamard`).
"""
from __future__ import annotations

import json
import time
from typing import Any, Mapping, Optional

import torch
from torch import nn

from golf_core import StashKey
from golf_core.api import (Decoder, QuantizedModel, dequantize, quant_report, serialize_quantized,
                           write_quant_report)

from .calibration import generate_sequences, loader_batches, token_batches
from .fit import fit_clip_sigmas
from .hessians import collect_hessians
from .options import GPTQOptions
from .lqer import LQERConfig
from .quantize import GPTQConfig, GPTQModelQuantizer, WeightTransform, hessian_errors

#: The flow's summary, read back by ``golf_summary``.
SUMMARY = StashKey[dict]("gptq.summary")
#: Timed training seconds at the last step (``golf_on_step_end``), for the clock accounting.
TRAIN_SECONDS = StashKey[float]("gptq.train_seconds")
REPORT_FILE = "quant_report.json"


def config_from(opts: GPTQOptions) -> GPTQConfig:
    """The GPTQConfig of the plugin options."""
    return GPTQConfig(bits=opts.bits, clip_sigmas=opts.clip_sigmas, embed_bits=opts.embed_bits,
                      embed_clip_sigmas=opts.embed_clip_sigmas, embed_pattern=opts.embed_pattern,
                      min_numel=opts.min_numel, block_size=opts.block_size, damp=opts.damp,
                      act_order=opts.act_order, hessian_clip_lambda=opts.hessian_clip_lambda,
                      mlp_clip_sigmas=opts.mlp_clip_sigmas, attn_clip_sigmas=opts.attn_clip_sigmas,
                      mlp_pattern=opts.mlp_pattern, attn_pattern=opts.attn_pattern, gate_int8=opts.gate_int8,
                      gate_pattern=opts.gate_pattern, gate_min_numel=opts.gate_min_numel,
                      gate_max_numel=opts.gate_max_numel,
                      lqer=LQERConfig(top_k=opts.lqer_top_k, rank=opts.lqer_rank, asym=opts.lqer_asym,
                                      group=opts.lqer_group, factor_bits=opts.lqer_factor_bits),
                      scale_floor=opts.scale_floor, embed_gptq=opts.embed_gptq)


def calibration_batches(model: nn.Module, ctx: Any, opts: GPTQOptions) -> list[torch.Tensor]:
    """Token batches from the configured source (see :mod:`golf_gptq.calibration`)."""
    seq_len = opts.calibration_seq_len or ctx.recipe.train.train_seq_len
    if opts.calibration == "train":
        loader = ctx.services.make_loader("calibration")
        return list(loader_batches(loader, opts.calibration_batches, opts.calibration_seqs, seq_len))
    if opts.calibration == "val":
        tokens = ctx.read_validation("gptq calibration on validation tokens")
        return token_batches(tokens, opts.calibration_batches, opts.calibration_seqs, seq_len)
    vocab = ctx.recipe.data.vocab_size
    return generate_sequences(model, opts.ar_seqs, seq_len, vocab, batch=opts.ar_batch,
                              temperature=opts.ar_temperature, seed=opts.ar_seed, device=ctx.device,
                              autocast=ctx.autocast)


def calibration_hessians(model: nn.Module, batches: list[torch.Tensor], ctx: Any, opts: GPTQOptions) -> dict[str, torch.Tensor]:
    """The Hessians of the calibration batches, collected WITHOUT the run's autocast: the model
    runs in its own layout (bf16 weights and activations on a bf16 run, fp32 control tensors),
    as #1394's ``collect_hessians`` does; under autocast the norms would run in fp32 and the
    inputs of every linear would round differently. With ``calibration_document_mask`` off the
    model's document mask is lifted for the collection and put back afterwards."""
    mask = getattr(model, "document_mask", None)
    lift = mask is not None and not opts.calibration_document_mask
    if lift:
        model.set_document_mask(None)
    try:
        return collect_hessians(model, batches, opts.min_numel, opts.embed_name, autocast=None, device=ctx.device)
    finally:
        if lift:
            model.set_document_mask(mask)


def training_clock(train_seconds: Optional[float], calibration_seconds: float, cap_seconds: float,
                   reserve_seconds: float) -> dict[str, Any]:
    """The training-data clock of a run whose GPTQ calibrates on training data: training seconds
    plus calibration seconds must stay within ``cap_seconds`` (the Hessians read training data, so
    they are training). ``train_seconds`` None (no training in this process): the loop is assumed to
    have used its whole budget, ``cap - reserve``."""
    train_s = float(train_seconds) if train_seconds is not None else cap_seconds - reserve_seconds
    total = train_s + calibration_seconds
    return {"train_seconds": round(train_s, 3), "train_seconds_measured": train_seconds is not None,
            "calibration_seconds": round(calibration_seconds, 3), "train_data_seconds": round(total, 3),
            "cap_seconds": cap_seconds, "reserve_seconds": reserve_seconds, "within_clock": total <= cap_seconds}


def run_gptq(model: nn.Module, ctx: Any, opts: GPTQOptions, transform: Optional[WeightTransform] = None,
             decoders: Optional[Mapping[str, Decoder]] = None, label: str = "gptq") -> QuantizedModel:
    """Calibrate, collect Hessians, quantize (fit ``k`` when ``opts.fit``), report.

    Stores a summary under :data:`SUMMARY` in ``ctx.stash`` and, on the main rank, writes
    ``quant_report.json`` into ``ctx.out_dir``.
    """
    t0 = time.perf_counter()
    batches = calibration_batches(model, ctx, opts)
    hessians = calibration_hessians(model, batches, ctx, opts)
    t_cal = time.perf_counter() - t0
    tr = ctx.recipe.train
    n_tokens = sum(int(b.numel()) for b in batches)
    ctx.log.info(f"{label}:calibration source:{opts.calibration} batches:{len(batches)} tokens:{n_tokens} "
                 f"hessians:{len(hessians)} seconds:{t_cal:.2f}")
    within_reserve = None
    clock = None
    if opts.calibration == "train" and tr.max_wallclock_seconds > 0:
        within_reserve = t_cal <= tr.reserve_seconds
        clock = training_clock(ctx.stash.get(TRAIN_SECONDS), t_cal, tr.max_wallclock_seconds, tr.reserve_seconds)
        if not clock["within_clock"]:
            ctx.log.info(f"WARNING: {label} calibration read training data for {t_cal:.1f}s after "
                         f"{clock['train_seconds']:.1f}s of training: {clock['train_data_seconds']:.1f}s in all, over the "
                         f"{tr.max_wallclock_seconds:g}s training clock ([train] reserve_seconds {tr.reserve_seconds:g}); "
                         "this run does not count calibration inside the clock (#1787-#1855's 0.5 s reserve does not either)")
    state = {k: v.detach() for k, v in model.state_dict().items()}
    t1 = time.perf_counter()
    quantizer = GPTQModelQuantizer(state, hessians, config_from(opts), transform, device=ctx.device)
    fit_info = None
    k = opts.clip_sigmas

    def quantize(kk: float):
        # what the artifact holds at clip_sigmas kk: the fit's probes serialize exactly this
        q = quantizer.quantize(kk)
        q.meta.setdefault("gptq", {}).update({"calibration": opts.calibration})
        return q

    if opts.fit:
        code = ctx.services.code_bytes()  # the train_gpt.py that `golf export` writes for this run
        cap = ctx.recipe.artifact.cap_bytes

        def artifact_bytes(kk: float) -> int:
            codec, blob = ctx.services.compress(serialize_quantized(quantize(kk)))
            return code + len(blob) + ctx.services.artifact_overhead(codec)

        res = fit_clip_sigmas(artifact_bytes, cap, opts.clip_sigmas, tol=opts.fit_tolerance,
                              k_min=opts.fit_k_min, k_max=opts.fit_k_max)
        k = res.k
        fit_info = res.as_dict()
        ctx.log.info(f"{label}:fit clip_sigmas:{k:.4f} estimated_artifact_bytes:{res.size} cap:{cap} "
                     f"probes:{len(res.probes)} converged:{res.converged}")
        if not res.converged:
            ctx.log.info(f"WARNING: {label} fit did not land within {opts.fit_tolerance:.2%} under the cap")
    qm = quantize(k)
    t_q = time.perf_counter() - t1
    summary: dict[str, Any] = {
        "calibration": opts.calibration, "calibration_batches": len(batches), "calibration_tokens": n_tokens,
        "calibration_seconds": round(t_cal, 3), "within_reserve": within_reserve, "clock": clock,
        "hessians": len(hessians),
        "quantize_seconds": round(t_q, 3), "clip_sigmas": k, "embed_clip_sigmas": opts.embed_clip_sigmas,
        "bits": opts.bits, "embed_bits": opts.embed_bits, "quantized_tensors": len(quantizer.quantized_names()),
        "fit": fit_info,
    }
    if transform is not None:
        summary["rotation"] = {"kind": opts.rotation, "seed": opts.rotation_seed}
    if opts.report and ctx.is_main:
        decoded = dequantize(qm, decoders=decoders)
        herr = hessian_errors(decoded, state, hessians)
        comp = ctx.recipe.artifact.compressor if opts.report_compressor == "artifact" else opts.report_compressor
        rep = quant_report(qm, state, compressor=None if comp == "none" else comp,
                           byte_shuffle_stride=2 if ctx.recipe.artifact.byte_shuffle else 0, decoders=decoders,
                           hessian_error={n: v["hessian_error"] for n, v in herr.items()})
        for row in rep["tensors"]:
            if row["name"] in herr:
                row["hessian_error_rel"] = herr[row["name"]]["hessian_error_rel"]
        rep[label] = summary
        summary["hessian_error_total"] = sum(v["hessian_error"] for v in herr.values())
        if ctx.out_dir is not None:
            write_quant_report(ctx.out_dir / REPORT_FILE, rep)
    ctx.stash[SUMMARY] = summary
    return qm


def summarize(result: dict, ctx: Any, label: str = "gptq") -> None:
    """``golf_summary``: put the flow's summary and the quantization gap under ``result[label]``
    and into ``quant_report.json``."""
    summary = dict(ctx.stash.get(SUMMARY) or {})
    if "val_bpb" in result and "pre_quant_val_bpb" in result:
        summary["quant_gap_bpb"] = result["val_bpb"] - result["pre_quant_val_bpb"]
        summary["pre_quant_val_bpb"] = result["pre_quant_val_bpb"]
        summary["val_bpb"] = result["val_bpb"]
    result[label] = summary
    if ctx.is_main and ctx.out_dir is not None and (ctx.out_dir / REPORT_FILE).is_file():
        path = ctx.out_dir / REPORT_FILE
        rep = json.loads(path.read_text())
        rep[label] = summary
        write_quant_report(path, rep)
