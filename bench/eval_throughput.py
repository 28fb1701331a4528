"""Evaluation throughput on CPU: scored targets per second, non-overlapping vs sliding windows.

Runs ``golf_core.eval.score_fixed`` with a tiny ``golf_core.model.GPT`` (a stand-in causal model
when the model package is absent) over the start of the demo validation stream, and writes
``bench/results/eval_throughput.json``.

    python bench/eval_throughput.py [--tokens 16384] [--seq-len 256] [--stride 64] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golf_core.config import DataSection, ModelSection  # noqa: E402
from golf_core.data.paths import resolve_data  # noqa: E402
from golf_core.data.validation import load_validation_tokens  # noqa: E402
from golf_core.eval import EvalSession, score_fixed  # noqa: E402


class StandIn(nn.Module):
    """Embedding -> 2 causal self-attention layers -> tied logits (used only without golf_core.model)."""

    def __init__(self, vocab: int, dim: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 2 * dim, 0.0, batch_first=True,
                                                               norm_first=True) for _ in range(layers))

    def forward_hidden(self, x):
        """Hidden states ``[B, T, dim]``."""
        h = self.emb(x)
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        for layer in self.layers:
            h = layer(h, src_mask=mask, is_causal=True)
        return h

    def compute_logits(self, h):
        """Tied logits."""
        return h @ self.emb.weight.T

    def forward_logits(self, x):
        """Logits at every position."""
        return self.compute_logits(self.forward_hidden(x))


class LogitsOnly(nn.Module):
    """Hides forward_hidden/compute_logits so score_fixed computes logits at every position."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward_logits(self, x):
        """The wrapped model's logits at every position."""
        return self.inner.forward_logits(x)


def tiny_model(vocab: int) -> tuple[nn.Module, str]:
    """A tiny GPT (2 layers, dim 128) if golf_core.model exists, else the stand-in."""
    torch.manual_seed(0)
    try:
        from golf_core.model import GPT, GPTConfig
    except ImportError:
        return StandIn(vocab).eval(), "stand-in (2x128 torch TransformerEncoderLayer)"
    sec = ModelSection(num_layers=2, model_dim=128, num_heads=4, num_kv_heads=2, mlp_mult=2.0)
    return GPT(GPTConfig.from_section(sec, vocab)).eval(), "golf_core.model.GPT 2x128 (4 heads, 2 kv)"


def time_mode(model, tokens, luts, seq_len, stride, batch_seqs, repeats):
    """Best-of-``repeats`` wall and process-CPU seconds of one full scoring pass:
    returns (wall_seconds, cpu_seconds, result)."""
    best, best_cpu, res = float("inf"), float("inf"), None
    for _ in range(repeats):
        session = EvalSession(tokens, luts, seq_len, stride, batch_seqs=batch_seqs)
        t0, c0 = time.perf_counter(), time.process_time()
        res = score_fixed(model, session)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu, res


def main() -> int:
    """Run the benchmark, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=16384, help="validation tokens scored (default 16384)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--batch-seqs", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_throughput.json"))
    args = ap.parse_args()

    data = resolve_data(DataSection(source="demo", vocab_size=1024))
    tokens = load_validation_tokens(data.val_files, args.seq_len, max_tokens=args.tokens + 1)
    luts = data.byte_luts()
    model, model_desc = tiny_model(1024)
    modes = [
        ("non-overlapping", model, None),
        (f"sliding stride {args.stride}", model, args.stride),
        (f"sliding stride {args.stride} (full logits)", LogitsOnly(model), args.stride),
    ]
    with torch.inference_mode():  # warm-up
        model.forward_logits(tokens[: args.seq_len].view(1, -1))
    rows = []
    for name, m, stride in modes:
        secs, cpu, res = time_mode(m, tokens, luts, args.seq_len, stride, args.batch_seqs, args.repeats)
        rows.append({"mode": name, "stride": stride or args.seq_len, "targets": res.tokens,
                     "seconds": round(secs, 4), "tokens_per_s": round(res.tokens / secs, 1),
                     "cpu_seconds": round(cpu, 4), "tokens_per_cpu_s": round(res.tokens / cpu, 1),
                     "val_bpb": round(res.val_bpb, 6), "coverage_ok": res.coverage_ok})
    print(f"eval throughput on CPU ({torch.get_num_threads()} threads), {model_desc}, "
          f"seq_len {args.seq_len}, {rows[0]['targets']} targets, best of {args.repeats}")
    print(f"{'mode':<36} {'stride':>6} {'seconds':>9} {'tokens/s':>10} {'cpu s':>8} {'tok/cpu-s':>10} {'val_bpb':>9}")
    for r in rows:
        print(f"{r['mode']:<36} {r['stride']:>6} {r['seconds']:>9.3f} {r['tokens_per_s']:>10.0f} "
              f"{r['cpu_seconds']:>8.3f} {r['tokens_per_cpu_s']:>10.0f} {r['val_bpb']:>9.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "bench": "eval_throughput", "device": "cpu", "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
        "model": model_desc, "seq_len": args.seq_len, "batch_seqs": args.batch_seqs,
        "repeats": args.repeats, "load_average_1m": os.getloadavg()[0], "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
