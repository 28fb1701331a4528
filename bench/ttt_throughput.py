"""Eval throughput of the test-time-training adapters on CPU: scored targets per CPU-second.

Scores the first ``--tokens`` targets of the demo validation stream (documents start at BOS)
with a tiny ``golf_core.model.GPT`` (``--layers`` x ``--dim``, random weights: the weights do not
change the work) through each adapter's functional API on a fresh copy of the model:

* ``sliding``: the core's fixed scorer (stride ``--stride``), the reference;
* ``score-first-ttt`` (#1413: 3 epochs SGD per chunk), ``+ hash embedding`` (#1529), ``+ n-gram
  tilt`` (#1514), and the tilt's mixer alone (hints per second over the same tokens);
* ``lora-ttt`` (#1530: rank 96, chunk 32, 64 documents a group), ``lora-ttt 3 phases`` (#1626:
  chunk 48, phases at 1/3, 2/3 and all of a prefix of documents), ``lora-ttt #1787`` (alpha 144,
  warm-start A, wd 1.0).

Prints a table and writes ``bench/results/ttt_throughput.json``. One intra-op thread by default.
On a GPU the same adapters run through ``bench/gpu_eval.py`` with the record's recipe, e.g.

    python bench/gpu_eval.py --recipe recipes/pr1626.toml --modes sliding,score-first-ttt,lora-ttt --adapter-tokens 262144

    python bench/ttt_throughput.py [--tokens 8192] [--seq-len 256] [--stride 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golf_core.config import DataSection, ModelSection  # noqa: E402
from golf_core.data.paths import resolve_data  # noqa: E402
from golf_core.data.validation import load_validation_tokens  # noqa: E402
from golf_core.eval import EvalSession, score_fixed  # noqa: E402
from golf_core.model import GPT, GPTConfig  # noqa: E402


def main() -> int:
    """Run every adapter, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ttt_throughput.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from golf_lora_ttt import GlobalSGDConfig, LoRATTTConfig, lora_ttt
    from golf_score_first_ttt import NgramMixer, StreamTilt, TTTConfig, score_first_ttt

    data = resolve_data(DataSection(source="demo", vocab_size=1024))
    tokens = load_validation_tokens(data.val_files, args.seq_len, max_tokens=args.tokens + 1)
    luts = data.byte_luts()
    torch.manual_seed(0)
    sec = ModelSection(num_layers=args.layers, model_dim=args.dim, num_heads=4, num_kv_heads=2, mlp_mult=4.0)
    model = GPT(GPTConfig.from_section(sec, 1024)).eval()
    L, S = args.seq_len, args.stride
    chunk = 16 * L
    n_docs = len(EvalSession(tokens, luts, L, S).documents())
    prefix = max(1, n_docs // 2)
    gsgd = GlobalSGDConfig(chunk_tokens=chunk, seq_len=L)

    def session():
        return EvalSession(tokens, luts, L, S, batch_seqs=32)

    def tilt():
        return StreamTilt(NgramMixer(luts.has_leading_space, luts.is_boundary))

    runs = [
        ("sliding (fixed model)", lambda m, s: score_fixed(m, s)),
        ("score-first-ttt #1413", lambda m, s: score_first_ttt(m, s, TTTConfig(chunk_tokens=chunk))),
        ("score-first-ttt + hash embedding #1529", lambda m, s: score_first_ttt(
            m, s, TTTConfig(chunk_tokens=chunk, lr=0.01, hash_embed_size=16384))),
        ("score-first-ttt + n-gram tilt #1514", lambda m, s: score_first_ttt(m, s, TTTConfig(chunk_tokens=chunk),
                                                                             tilt=tilt())),
        ("lora-ttt #1530", lambda m, s: lora_ttt(m, s, LoRATTTConfig(seq_len=L))),
        ("lora-ttt 3 phases #1626", lambda m, s: lora_ttt(m, s, LoRATTTConfig(
            seq_len=L, chunk_size=48, prefix_docs=prefix, num_phases=3, global_sgd=gsgd))),
        ("lora-ttt #1787 (alpha 144, warm A, wd 1)", lambda m, s: lora_ttt(m, s, LoRATTTConfig(
            seq_len=L, chunk_size=48, alpha=144.0, warm_start_a=True, weight_decay=1.0))),
    ]
    rows = []
    for name, fn in runs:
        s = session()
        m = copy.deepcopy(model)
        t0, c0 = time.perf_counter(), time.process_time()
        fn(m, s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = s.result()
        rows.append({"adapter": name, "targets": res.tokens, "val_bpb": round(res.val_bpb, 5),
                     "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                     "tokens_per_cpu_s": round(res.tokens / max(cpu, 1e-9), 1)})
    mixer = NgramMixer(luts.has_leading_space, luts.is_boundary)
    c0 = time.process_time()
    mixer.hints(tokens.numpy())
    cpu = time.process_time() - c0
    rows.append({"adapter": "n-gram mixer alone (hints)", "targets": int(tokens.numel()), "val_bpb": None,
                 "seconds": None, "cpu_seconds": round(cpu, 3), "tokens_per_cpu_s": round(tokens.numel() / cpu, 1)})
    print(f"{'adapter':44s} {'targets':>8s} {'val_bpb':>8s} {'cpu s':>8s} {'tokens/cpu-s':>13s}")
    for r in rows:
        bpb = f"{r['val_bpb']:.4f}" if r["val_bpb"] is not None else "-"
        print(f"{r['adapter']:44s} {r['targets']:8d} {bpb:>8s} {r['cpu_seconds']:8.2f} {r['tokens_per_cpu_s']:13.1f}")
    out = {"bench": "ttt_throughput", "device": "cpu", "threads": args.threads, "platform": platform.platform(),
           "torch": torch.__version__, "model": f"GPT {args.layers}x{args.dim} (random weights)", "seq_len": L,
           "stride": S, "documents": n_docs, "phase_prefix_docs": prefix, "rows": rows,
           "gpu_command": "python bench/gpu_eval.py --recipe recipes/pr1626.toml --modes sliding,score-first-ttt,lora-ttt --adapter-tokens 262144"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
