"""Benchmark: quantize / serialize / compress a baseline-shaped state dict with every codec.

Synthetic weights (Gaussian, std 0.02; a heavier-tailed Student-t(4) copy for the MLP), in the
baseline's shapes (pg_core.md §4.2: 9 x 512, vocab 1024, MLP x2, 4 KV heads). Prints a table of
model bytes and seconds per (scheme, compressor, byte shuffle) and writes
bench/results/quant_codecs.json. Not a test: sizes of real trained weights differ.

    python bench/quant_codecs.py [--layers 9] [--compressors zlib,lzma,brotli]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from golf_core.quant import (build_artifact, decode_artifact, dequantize, pack_artifact, quantize_state_dict_int8,
                             quantize_state_dict_intk, serialize_quantized, unpack_artifact)


def baseline_state_dict(layers: int, dim: int = 512, vocab: int = 1024, kv_dim: int = 256, mlp: int = 1024,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the baseline GPT's shapes and dtypes (tok_emb bf16, the rest fp32)."""
    g = torch.Generator().manual_seed(seed)
    t4 = torch.distributions.StudentT(4.0)
    sd = {"tok_emb.weight": (torch.randn(vocab, dim, generator=g) * 0.02).bfloat16()}
    for i in range(layers):
        p = f"blocks.{i}."
        sd[p + "attn.c_q.weight"] = torch.randn(dim, dim, generator=g) * 0.02
        sd[p + "attn.c_k.weight"] = torch.randn(kv_dim, dim, generator=g) * 0.02
        sd[p + "attn.c_v.weight"] = torch.randn(kv_dim, dim, generator=g) * 0.02
        sd[p + "attn.proj.weight"] = torch.randn(dim, dim, generator=g) * 0.02
        sd[p + "attn.q_gain"] = torch.full((8,), 1.5)
        sd[p + "mlp.fc.weight"] = t4.sample((mlp, dim)) * 0.02
        sd[p + "mlp.proj.weight"] = t4.sample((dim, mlp)) * 0.02
        sd[p + "attn_scale"] = torch.ones(dim)
        sd[p + "mlp_scale"] = torch.ones(dim)
        sd[p + "resid_mix"] = torch.stack([torch.ones(dim), torch.zeros(dim)])
    sd["skip_weights"] = torch.ones(layers // 2, dim)
    return sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--compressors", default="zlib,lzma,brotli")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "quant_codecs.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    sd = baseline_state_dict(args.layers)
    n_params = sum(t.numel() for t in sd.values())
    schemes = {
        "int8_baseline": lambda: quantize_state_dict_int8(sd),
        "sdclip_int6_rtn": lambda: quantize_state_dict_intk(sd),
    }
    rows = []
    for scheme, fn in schemes.items():
        t0 = time.perf_counter()
        qm = fn()
        t_quant = time.perf_counter() - t0
        t0 = time.perf_counter()
        raw = serialize_quantized(qm)
        t_ser = time.perf_counter() - t0
        for comp in args.compressors.split(","):
            for shuffle in (False, True):
                t0 = time.perf_counter()
                blob = pack_artifact(build_artifact(qm, comp, shuffle, model={"num_layers": args.layers}))
                t_comp = time.perf_counter() - t0 - t_ser
                t0 = time.perf_counter()
                back = dequantize(decode_artifact(unpack_artifact(blob)), template=sd)
                t_dec = time.perf_counter() - t0
                assert back.keys() == sd.keys()
                rows.append({"scheme": scheme, "compressor": comp, "byte_shuffle": shuffle, "params": n_params,
                             "serialized_bytes": len(raw), "model_bytes": len(blob),
                             "bits_per_param": round(8 * len(blob) / n_params, 4),
                             "quantize_s": round(t_quant, 3), "compress_s": round(t_comp, 3),
                             "decode_s": round(t_dec, 3)})
                r = rows[-1]
                print(f"{scheme:16s} {comp:7s} shuffle={str(shuffle):5s} model_bytes={r['model_bytes']:>10,d} "
                      f"bits/param={r['bits_per_param']:.3f} quant={r['quantize_s']:.2f}s "
                      f"compress={r['compress_s']:.2f}s decode={r['decode_s']:.2f}s", flush=True)
    out = {"bench": "quant_codecs", "layers": args.layers, "params": n_params, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
