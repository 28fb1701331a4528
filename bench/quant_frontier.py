"""Benchmark: the quantization/compression stages after #1413, added in turn on one trained model.

Trains the demo recipe's small model (bundled demo corpus, vocab 1024, 6 x 128, CPU, bounded by
steps) with the sparse attention gate (`attn-gate`, so the model holds `attn_gate_w` tensors),
collects GPTQ Hessians once (16 training batches, as #1626 trims them), then for each stage:
quantize, compress, decode exactly as `golf eval` does (decompress, deserialize, the plugins'
decoders, a freshly built model) and score the first validation tokens. Stages (cumulative):

  #1394 GPTQ (int6 k 12.85, int8 embedding k 20, BSHF + brotli-11)
  + per-group sigma (MLP 12, attention 13; #1626)
  + int7 embed (k 15; #1626)
  + quant-gate (int8 rows of attn_gate_w; #1736)
  + LQER (top-3, rank 4, int2/int4 group 64; #1797)
  + per-group codec (#1855; zpaq backend, and lrzip when installed)

plus #1412's Hessian-aware SDClip (lambda 0.175) on the first stage, and the final quantized
model under every compressor (brotli with and without BSHF, lzma, per-group zpaq / lrzip /
brotli). Model bytes are the compressed payload. Prints a table; writes
bench/results/quant_frontier.json. A CPU run takes about 10 minutes on 2 cores.

    OMP_NUM_THREADS=2 python bench/quant_frontier.py [--iterations 200] [--eval-tokens 65537]
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from golf_core.quant.compress import compress_bytes, decompress_bytes  # noqa: E402
from golf_core.quant.dequant import dequantize  # noqa: E402
from golf_core.quant.serialize import deserialize_quantized, serialize_quantized  # noqa: E402
import tomllib  # noqa: E402

from golf_core.recipe import apply_override, validate_recipe_data  # noqa: E402
from golf_core.run import Run, evaluate  # noqa: E402
from golf_gptq import GPTQConfig, GPTQModelQuantizer, collect_hessians  # noqa: E402
from golf_gptq.calibration import loader_batches  # noqa: E402
from golf_gptq.lqer import LQERConfig  # noqa: E402
from golf_gptq.plugin import DECODERS  # noqa: E402
from golf_pergroup import pack_pergroup, unpack_pergroup  # noqa: E402

BASE = dict(min_numel=1024)  # the demo model's matrices are below #1394's 65,536 threshold
STAGES = [
    ("#1394 GPTQ", {}),
    ("+ per-group sigma", dict(mlp_clip_sigmas=12.0, attn_clip_sigmas=13.0)),
    ("+ int7 embed", dict(embed_bits=7, embed_clip_sigmas=15.0)),
    ("+ quant-gate", dict(gate_int8=True)),
    ("+ LQER", dict(lqer=LQERConfig(top_k=3, rank=4, asym=True, group=64))),
]


def codecs() -> dict:
    """name -> (compress(bytes) -> blob, decompress(blob) -> bytes)."""
    out = {
        "bshf2+brotli": (lambda d: compress_bytes(d, "brotli", 2)[1], lambda b: decompress_bytes("bshf2+brotli", b)),
        "brotli": (lambda d: compress_bytes(d, "brotli")[1], lambda b: decompress_bytes("brotli", b)),
        "lzma": (lambda d: compress_bytes(d, "lzma")[1], lambda b: decompress_bytes("lzma", b)),
    }
    backends = ["zpaq", "brotli"] + (["lrzip"] if shutil.which("lrzip") else [])
    for be in backends:
        out[f"pergroup+{be}"] = (lambda d, be=be: pack_pergroup(d, be), lambda b, be=be: unpack_pergroup(b, be))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--eval-tokens", type=int, default=65537)
    ap.add_argument("--calibration-batches", type=int, default=16)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "quant_frontier.json"))
    ap.add_argument("--run-dir", default="/tmp/golf_quant_frontier")
    args = ap.parse_args()
    data = tomllib.loads((REPO / "recipes" / "demo.toml").read_text())
    data["plugins"] = list(data["plugins"]) + ["attn-gate"]
    for o in (f"train.iterations={args.iterations}", f"eval.max_tokens={args.eval_tokens}", "train.log_every=100"):
        apply_override(data, o)
    recipe = validate_recipe_data(data, "demo+attn-gate")
    t0 = time.perf_counter()
    run = Run.from_recipe(recipe, args.run_dir, echo=False)
    run.setup(); run.data(); run.build(); run.train(monitor=False)
    t_train = time.perf_counter() - t0
    pre = run.pre_quant_eval()
    model, ctx = run.model, run.ctx
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    t0 = time.perf_counter()
    batches = list(loader_batches(ctx.services.make_loader("calibration"), args.calibration_batches, 8,
                                  recipe.train.train_seq_len))
    hessians = collect_hessians(model, batches, 1024, "tok_emb.weight", autocast=None, device=ctx.device)
    t_cal = time.perf_counter() - t0
    fresh = copy.deepcopy(model)
    comp = codecs()

    def score(qm, codec: str) -> tuple[int, float, float]:
        enc, dec = comp[codec]
        blob = enc(serialize_quantized(qm))
        t = time.perf_counter()
        sd = dequantize(deserialize_quantized(dec(blob)), template=state, decoders=DECODERS)
        t_dec = time.perf_counter() - t
        fresh.load_state_dict(sd, strict=True)
        res, _ = evaluate(fresh, ctx, stride=None, adapt=False)
        return len(blob), res.val_bpb, t_dec

    rows = []

    def add(stage: str, codec: str, qm, cfg_kw: dict) -> None:
        n, bpb, t_dec = score(qm, codec)
        rows.append({"stage": stage, "codec": codec, "model_bytes": n, "val_bpb": bpb,
                     "quant_gap_bpb": bpb - pre.val_bpb, "decode_s": round(t_dec, 3),
                     "lqer_tensors": qm.meta["gptq"].get("lqer", []),
                     "gate_tensors": sum(1 for e in qm.entries.values() if e.get("method") == "gate_int8_row"),
                     "config": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in cfg_kw.items()}})
        r = rows[-1]
        print(f"{stage:24s} {codec:16s} {n:>10,d} B  val_bpb {bpb:.5f}  gap {r['quant_gap_bpb']:+.5f}", flush=True)

    kw: dict = dict(BASE)
    qm = None
    for stage, extra in STAGES:
        kw.update(extra)
        qm = GPTQModelQuantizer(state, hessians, GPTQConfig(**kw)).quantize()
        add(stage, "bshf2+brotli", qm, dict(kw))
        if stage == "#1394 GPTQ":
            kw20 = dict(kw, hessian_clip_lambda=0.175)
            add("#1394 + Hessian SDClip 0.175 (#1412)", "bshf2+brotli",
                GPTQModelQuantizer(state, hessians, GPTQConfig(**kw20)).quantize(), kw20)
    t = time.perf_counter()
    add("+ per-group codec", "pergroup+zpaq", qm, dict(kw))
    for codec in comp:
        if codec not in ("bshf2+brotli", "pergroup+zpaq"):
            add("final model, other codec", codec, qm, dict(kw))
    out = {"bench": "quant_frontier", "recipe": "demo.toml + attn-gate (sparse)", "iterations": args.iterations,
           "train_seconds": round(t_train, 1), "calibration_batches": args.calibration_batches,
           "calibration_seconds": round(t_cal, 2), "eval_tokens": args.eval_tokens,
           "pre_quant_val_bpb": pre.val_bpb, "params": sum(p.numel() for p in model.parameters()),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"pre-quant val_bpb {pre.val_bpb:.5f}; wrote {args.out}")


if __name__ == "__main__":
    main()
