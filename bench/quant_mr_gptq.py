"""Benchmark: MR-GPTQ (Hadamard rotation + GPTQ) against plain GPTQ at matched artifact bytes.

Rotation changes how many bytes the codes cost, so the fair comparison re-tunes the SDClip
multiplier k of each method until both compress (BSHF + brotli-11) to the same budget
(research/techniques.md §9, "compare at matched artifact bytes"), and reports the error there;
the matched-k rows are shown for contrast.

A. synthetic matrices (Gaussian, and Student-t(3) with outlier columns), correlated Hessians;
B. a small GPT trained on the demo corpus (CPU), Hessians from training batches; the figure is
   the held-out loss gap (bits per token) of the decoded model.

    python bench/quant_mr_gptq.py [--skip-model] [--steps 150]

Writes bench/results/quant_mr_gptq.json.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from golf_core.quant import compress_bytes, dequantize, quantize_state_dict_intk, serialize_quantized
from golf_gptq import GPTQConfig, GPTQModelQuantizer, fit_clip_sigmas, hessian_errors
from golf_gptq import CODEC, HadamardTransform, decode_hadamard

DECODERS = {CODEC: decode_hadamard}


def model_bytes(qm) -> int:
    """Bytes of the serialized QuantizedModel after BSHF + brotli-11 (the #1394 container)."""
    return len(compress_bytes(serialize_quantized(qm), "brotli", 2)[1])


def compare(state, hessians, cfg: GPTQConfig, k0: float = 12.85, seed: int = 0, loss_fn=None) -> dict:
    """Plain vs rotated GPTQ at k0 and at the byte budget of plain GPTQ at k0."""
    plain = GPTQModelQuantizer(state, hessians, cfg)
    rot = GPTQModelQuantizer(state, hessians, cfg, HadamardTransform(seed=seed))
    budget = model_bytes(plain.quantize(k0))
    rows = {}
    for label, q in (("gptq", plain), ("mr-gptq", rot)):
        t0 = time.perf_counter()
        fit = fit_clip_sigmas(lambda k: model_bytes(q.quantize(k)), budget, k0, tol=0.003)
        for mode, k in (("matched_k", k0), ("matched_bytes", fit.k)):
            qm = q.quantize(k)
            dec = dequantize(qm, decoders=DECODERS)
            herr = hessian_errors(dec, state, hessians)
            num = sum(v["hessian_error"] for v in herr.values())
            den = sum(v["hessian_error"] / max(v["hessian_error_rel"], 1e-30) for v in herr.values())
            row = {"k": round(k, 4), "model_bytes": model_bytes(qm), "hessian_error_rel": num / den}
            if loss_fn is not None:
                row["loss"] = loss_fn(dec)
            rows[f"{label}/{mode}"] = row
        rows[f"{label}/fit_seconds"] = round(time.perf_counter() - t0, 2)
    rows["budget_bytes"] = budget
    return rows


def synthetic(seed: int = 0) -> dict:
    """Part A: one 256 x fan_in matrix per case, H from correlated inputs."""
    out = {}
    g = torch.Generator().manual_seed(seed)
    for case in ("gaussian", "t3_outlier_cols"):
        for fan_in in (512, 1536):
            if case == "gaussian":
                W = torch.randn(256, fan_in, generator=g) * 0.02
            else:
                W = torch.distributions.StudentT(3.0).sample((256, fan_in)) * 0.02
                cols = torch.randperm(fan_in, generator=g)[:8]
                W[:, cols] *= 10
            A = torch.eye(fan_in) + 0.3 * torch.randn(fan_in, fan_in, generator=g) / math.sqrt(fan_in)
            X = torch.randn(4096, fan_in, generator=g) @ A
            name = "blocks.0.mlp.fc.weight"
            res = compare({name: W}, {name: X.T @ X / 16}, GPTQConfig(min_numel=0))
            out[f"{case}/{fan_in}"] = res
            print(f"A {case:16s} fan_in={fan_in:5d} budget={res['budget_bytes']:>8,d}  " + "  ".join(
                f"{m}: k={res[m + '/matched_bytes']['k']:.2f} herr={res[m + '/matched_bytes']['hessian_error_rel']:.3e} "
                f"(matched k: {res[m + '/matched_k']['model_bytes']:,d} B, {res[m + '/matched_k']['hessian_error_rel']:.3e})"
                for m in ("gptq", "mr-gptq")), flush=True)
    return out


def trained_model(steps: int) -> dict:
    """Part B: a 4 x 128 GPT on the demo corpus, int6 matrices / int8 embedding, all quantized."""
    from golf_core.config import DataSection
    from golf_core.data.paths import resolve_data
    from golf_core.model import build_model, prepare_for_device
    from golf_core.train.loop import train
    from golf_core.train.testing import heldout_loss, make_train_context, tiny_recipe
    from golf_gptq import collect_hessians

    data = resolve_data(DataSection(source="demo", vocab_size=1024), build_missing=True)
    recipe = tiny_recipe(vocab_size=1024, model={"num_layers": 4, "model_dim": 128, "num_heads": 4, "num_kv_heads": 2},
                         iterations=steps, train_batch_tokens=8192, train_seq_len=128, log_every=0,
                         warmdown_iters=max(steps // 4, 1))
    ctx = make_train_context(recipe, data=data)
    torch.manual_seed(0)
    model = build_model(recipe.model, 1024)
    prepare_for_device(model, "cpu", dtype="fp32")
    t0 = time.perf_counter()
    train(model, ctx)
    t_train = time.perf_counter() - t0
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seq = recipe.train.train_seq_len
    base = heldout_loss(model, data, seq, max_seqs=128)

    from golf_core.train.loop import default_loader
    loader = default_loader(ctx, "calibration")
    batches = [loader.next_batch(16 * seq, seq)[0] for _ in range(8)]
    H = collect_hessians(model, batches, min_numel=0)

    def loss_fn(decoded):
        model.load_state_dict({k: v.to(state[k].dtype) for k, v in decoded.items()})
        val = heldout_loss(model, data, seq, max_seqs=128)
        model.load_state_dict(state)
        return val

    res = compare(state, H, GPTQConfig(min_numel=0), loss_fn=loss_fn)
    rtn = quantize_state_dict_intk(state, keep_float_max_numel=0)  # same SDClip scales, no GPTQ
    rdec = dequantize(rtn)
    herr = hessian_errors(rdec, state, H)
    res["rtn/matched_k"] = {"k": 12.85, "model_bytes": model_bytes(rtn), "loss": loss_fn(rdec),
                            "hessian_error_rel": sum(v["hessian_error"] for v in herr.values()) / sum(
                                v["hessian_error"] / max(v["hessian_error_rel"], 1e-30) for v in herr.values())}
    res.update(train_steps=steps, train_seconds=round(t_train, 1), pre_quant_loss=base,
               params=sum(t.numel() for t in state.values()))
    for m, modes in (("rtn", ("matched_k",)), ("gptq", ("matched_k", "matched_bytes")),
                     ("mr-gptq", ("matched_k", "matched_bytes"))):
        for mode in modes:
            r = res[f"{m}/{mode}"]
            r["gap_bits_per_token"] = (r["loss"] - base) / math.log(2)
            print(f"B {m:8s} {mode:13s} k={r['k']:7.3f} bytes={r['model_bytes']:>8,d} "
                  f"herr={r['hessian_error_rel']:.3e} loss_gap={r['gap_bits_per_token']:+.5f} bits/token", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "quant_mr_gptq.json"))
    args = ap.parse_args()
    out = {"bench": "quant_mr_gptq", "torch": torch.__version__, "synthetic": synthetic()}
    if not args.skip_model:
        out["model"] = trained_model(args.steps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
