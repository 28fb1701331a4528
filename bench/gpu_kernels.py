"""Benchmark: golf's Triton fused kernels against their plain-PyTorch maths (issue 21).

For each fused kernel (softcapped cross-entropy, ``golf_core.model.triton_softcap_ce``; fused
squared-(leaky-)ReLU MLP, ``golf_core.model.triton_mlp``) it reports the max abs (and relative)
difference of every output against the reference on the probe inputs, and the forward+backward
milliseconds of the kernel path and of the reference path at #1394's per-GPU micro-batch
(48 x 2048 = 98,304 tokens; V 8192, d 512, hidden 2048), timed between CUDA events after warmup.
The fused ops run the kernels once ``enable_*`` accepted them; the reference rows call the plain
maths directly.

On CPU (``--tiny``: small sizes) only the reference path runs, and each Triton row says why not.
Prints a table and writes ``bench/results/gpu_kernels-<device>.json`` (``--out`` to change).

    python bench/gpu_kernels.py [--tokens 98304] [--iters 20] [--tiny] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, fmt, sync, table, write_result  # noqa: E402


def time_ms(fn: Callable[[], Any], device: torch.device, iters: int, warmup: int = 3) -> float:
    """Mean milliseconds of ``fn()`` (CUDA events on a GPU, perf_counter on CPU)."""
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return 1000.0 * (time.perf_counter() - t0) / iters


def bench_softcap_ce(device: torch.device, tokens: int, vocab: int, iters: int, dtype: torch.dtype) -> dict[str, Any]:
    """The CE kernel's decision, its differences and fwd+bwd ms against the reference maths."""
    from golf_core.model.softcap_ce import enable_triton_softcap_ce, softcap_ce_backward, softcap_ce_forward, softcap_ce_op

    check = enable_triton_softcap_ce(device)
    x = (20 * torch.randn(tokens, vocab, device=device)).to(dtype)
    t = torch.randint(0, vocab, (tokens,), device=device)
    g = torch.full((tokens,), 1.0 / tokens, device=device)

    def reference():
        losses, lse = softcap_ce_forward(x, t, 30.0)
        return softcap_ce_backward(x, t, lse, g, 30.0)

    def plain_autograd():
        xx = x.detach().requires_grad_()
        loss = torch.nn.functional.cross_entropy((30 * torch.tanh(xx / 30)).float(), t)
        loss.backward()
        return xx.grad

    row: dict[str, Any] = {"kernel": "softcap_ce", "shape": [tokens, vocab], "dtype": str(dtype).replace("torch.", ""),
                           "check": check.__dict__, "reference_ms": time_ms(reference, device, iters),
                           "plain_autograd_ms": time_ms(plain_autograd, device, iters), "triton_ms": None, "diff": None}
    if check.used:
        from golf_core.model import triton_softcap_ce as K

        def fused():
            losses, lse = softcap_ce_op(x, t, 30.0)
            return K.softcap_ce_bwd_triton(x, t, lse, g, 30.0)

        row["triton_ms"] = time_ms(fused, device, iters)
        row["diff"] = K.compare_with_reference(device, rows=257, vocab=vocab)
    return row


def bench_mlp(device: torch.device, tokens: int, dim: int, hidden: int, iters: int, dtype: torch.dtype) -> dict[str, Any]:
    """The fused MLP kernel's decision, its differences and fwd+bwd ms against the reference maths."""
    from golf_core.model.fused_mlp import enable_triton_mlp, mlp_backward, mlp_forward

    check = enable_triton_mlp(device)
    x = torch.randn(tokens, dim, device=device).to(dtype)
    w1 = (dim ** -0.5 * torch.randn(hidden, dim, device=device)).to(dtype)
    w2 = (hidden ** -0.5 * torch.randn(dim, hidden, device=device)).to(dtype)
    go = torch.randn(tokens, dim, device=device).to(dtype)

    def reference():
        out, pre, post = mlp_forward(x, w1, w2, 0.5)
        return mlp_backward(go, x, w1, w2, pre, post, 0.5)

    row: dict[str, Any] = {"kernel": "sq_relu_mlp", "shape": [tokens, dim, hidden],
                           "dtype": str(dtype).replace("torch.", ""), "check": check.__dict__,
                           "reference_ms": time_ms(reference, device, iters), "triton_ms": None, "diff": None}
    if check.used:
        from golf_core.model import triton_mlp as K

        def fused():
            out, pre, post = K.mlp_fwd_triton(x, w1, w2, 0.5)
            return K.mlp_bwd_triton(go, x, w1, w2, pre, post, 0.5)

        row["triton_ms"] = time_ms(fused, device, iters)
        row["diff"] = K.compare_with_reference(device, m=4096, d=dim, h=hidden)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=None, help="rows (tokens) per call (default 98304; --tiny 256)")
    ap.add_argument("--iters", type=int, default=None, help="timed calls per row (default 20; --tiny 2)")
    ap.add_argument("--tiny", action="store_true", help="small sizes (CPU smoke test)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/gpu_kernels-<device>.json)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    """Run the rows, print the table, write the JSON."""
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokens = args.tokens or (256 if args.tiny else 98_304)
    iters = args.iters or (2 if args.tiny else 20)
    vocab, dim, hidden = (1024, 64, 256) if args.tiny else (8192, 512, 2048)
    rows = [bench_softcap_ce(device, tokens, vocab, iters, dtype), bench_mlp(device, tokens, dim, hidden, iters, dtype)]
    res = {"env": environment(device), "args": {"tokens": tokens, "iters": iters, "tiny": args.tiny}, "kernels": rows}
    path = write_result("gpu_kernels", res, Path(args.out) if args.out else None)
    body = []
    for r in rows:
        worst = None if r["diff"] is None else max(v["max_abs_diff"] for v in r["diff"].values())
        speed = None if r["triton_ms"] is None else r["reference_ms"] / r["triton_ms"]
        body.append([r["kernel"], "x".join(map(str, r["shape"])), fmt(r["reference_ms"], ".2f"),
                     fmt(r["triton_ms"], ".2f"), fmt(speed, ".2f"), fmt(worst, ".3g"),
                     "triton" if r["check"]["used"] else r["check"]["reason"][:60]])
    print(table(body, ["kernel", "shape", "reference ms", "triton ms", "speedup", "max abs diff", "runs"]))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
