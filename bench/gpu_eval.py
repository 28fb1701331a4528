"""Benchmark: evaluation speed on the device at hand (GPU or CPU).

Builds the recipe's model (default ``recipes/pr1394.toml``: every ``golf_build_model`` transform,
then ``golf_on_artifact_load``, so depth recurrence is looping as in the final evaluation; random
initial weights, or ``--artifact run/artifact.bin`` for trained ones) and scores a prefix of the
validation stream on ``EvalSession`` objects the way the eval phase does:

* ``non-overlapping`` and ``sliding`` (stride 64): the core's ``score_fixed``; tokens/s;
* ``slot``, ``causal-slot``, ``score-first-ttt``, ``lora-ttt``: each adapter plugin's ``golf_eval_adapt`` hook,
  activated on top of the recipe's plugins (their options from the recipe's
  ``[options.<adapter>]`` or the plugin defaults, i.e. the records' settings; ``--set
  options.slot.steps=24`` changes them), on sliding windows; seconds per million tokens.

Each mode first runs on ``--warmup-tokens`` targets (CUDA context, kernels, optimizer state),
then is timed between device synchronizations on a fresh copy of the model. ``--compile``
adds rows for the plain scorers with ``torch.compile``d ``forward_hidden`` (the records compile
their eval forward; golf's eval phase does not yet). Token counts are targets scored; the
validation stream is the recipe's when present, else synthetic tokens of its vocabulary (the
demo build's tokenizer gives the byte tables), which changes no timing.

Prints a table and writes ``bench/results/gpu_eval-<device>.json`` (``--out`` to change).

    python bench/gpu_eval.py [--recipe recipes/pr1394.toml] [--tokens 4194304] [--sliding-tokens 1048576]
        [--adapter-tokens 262144] [--stride 64] [--modes sliding,slot,...] [--compile] [--tiny]
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REPO, environment, fmt, peak_memory_mib, reset_peak_memory, sync, table,  # noqa: E402
                     write_result, write_synthetic_dataset)

DEFAULT_RECIPE = REPO / "recipes" / "pr1394.toml"
ADAPTERS = ("slot", "causal-slot", "score-first-ttt", "lora-ttt")
PLAIN = ("non-overlapping", "sliding")
ALL_MODES = PLAIN + ADAPTERS


class CompiledForward(torch.nn.Module):
    """``model`` with ``forward_hidden`` run through ``torch.compile(dynamic=False, fullgraph=True)``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self._hidden = torch.compile(model.forward_hidden, dynamic=False, fullgraph=True)

    def forward_hidden(self, x):
        """Compiled final-normed hidden states."""
        return self._hidden(x)

    def compute_logits(self, h):
        """The model's own head."""
        return self.model.compute_logits(h)

    def forward_logits(self, x):
        """Logits at every position."""
        return self.compute_logits(self.forward_hidden(x))


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="recipe path or shipped name (default pr1394)")
    ap.add_argument("--set", action="append", metavar="K=V", help="recipe override, repeatable")
    ap.add_argument("--tiny", action="store_true", help="the recipe under --tiny (CPU smoke test)")
    ap.add_argument("--artifact", default=None, help="an artifact.bin to load (use its run's resolved.toml as --recipe)")
    ap.add_argument("--synthetic", action="store_true", help="synthetic validation tokens even when the recipe's data exist")
    ap.add_argument("--attention", choices=["auto", "flash3", "flash2", "sdpa"], default=None)
    ap.add_argument("--stride", type=int, default=64, help="sliding-window stride (default 64)")
    ap.add_argument("--tokens", type=int, default=None,
                    help="targets scored non-overlapping (default 2^22; 8 x seq with --tiny)")
    ap.add_argument("--sliding-tokens", type=int, default=None,
                    help="targets scored sliding (default 2^20; 4 x seq with --tiny)")
    ap.add_argument("--adapter-tokens", type=int, default=None,
                    help="targets per adapter (default 2^18 = 8 #1413 TTT chunks; 32 x seq with --tiny)")
    ap.add_argument("--warmup-tokens", type=int, default=None,
                    help="untimed warmup targets per mode (default 4 x seq; 0: none)")
    ap.add_argument("--modes", default=",".join(ALL_MODES), help=f"comma-separated subset of {','.join(ALL_MODES)}")
    ap.add_argument("--compile", action="store_true", help="also time the plain scorers with a compiled forward")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/gpu_eval-<device>.json)")
    ap.add_argument("--verbose", action="store_true", help="echo the adapters' log lines")
    args = ap.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in args.modes if m not in ALL_MODES]
    if bad:
        ap.error(f"unknown mode {bad[0]!r}; choose from {', '.join(ALL_MODES)}")
    return args


def load(args: argparse.Namespace):
    """The recipe (eval adapters it names removed: each is measured on its own)."""
    from golf_core.recipe import load_recipe

    sets = list(args.set or [])
    if args.attention:
        sets.append(f'model.attention_backend="{args.attention}"')
    recipe = load_recipe(args.recipe, overrides=sets, tiny=args.tiny)
    base = [p for p in recipe.plugins if p not in ADAPTERS]
    return recipe.with_plugins(base), recipe


def main(argv=None) -> int:
    """Time every mode, print the table, write the JSON."""
    args = parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("gpu_eval: runs on one device; launch it with python, not torchrun")
    from golf_core.context import resolve_device
    from golf_core.data.paths import resolve_data
    from golf_core.errors import GolfError
    from golf_core.eval.score import score_fixed
    from golf_core.eval.session import EvalSession, eval_batch_seqs
    from golf_core.eval.windows import WindowSchedule
    from golf_core.model import count_parameters
    from golf_core.run import Run, make_context
    from golf_core.run.scoring import score
    from golf_core.train.loop import grad_accum_steps
    from golf_core.train.testing import RecordingLog

    recipe, as_given = load(args)
    ev = recipe.eval
    seq = ev.seq_len
    small = args.tiny
    n_plain = args.tokens or (8 * seq if small else 2**22)
    n_slide = args.sliding_tokens or (4 * seq if small else 2**20)
    n_adapt = args.adapter_tokens or (32 * seq if small else 2**18)
    n_warm = 4 * seq if args.warmup_tokens is None else args.warmup_tokens
    need = [n_plain if "non-overlapping" in args.modes else 0, n_slide if "sliding" in args.modes else 0,
            n_adapt if set(args.modes) & set(ADAPTERS) else 0, n_warm]
    n_max = max(need)
    n_max = -(-n_max // seq) * seq                       # whole sequences
    recipe.eval.max_tokens = n_max + 1
    device = resolve_device(recipe.train.device)
    env = environment(device)

    tmp = tempfile.TemporaryDirectory(prefix="golf-gpu-eval-")
    try:
        data = None
        why = "--synthetic"
        if not args.synthetic:
            try:
                data = resolve_data(recipe.data, build_missing=recipe.data.source == "demo")
                data_desc = {"kind": data.name, "dataset_dir": str(data.dataset_dir)}
            except GolfError as e:
                why = f"recipe data absent ({str(e).splitlines()[0]})"
        if data is None:
            data = write_synthetic_dataset(Path(tmp.name), recipe.data.vocab_size, 4 * seq + 1, n_max + 1)
            data_desc = {"kind": "synthetic", "why": why, "val_tokens": n_max + 1,
                         "tokenizer": "demo build at the recipe's vocabulary (byte tables only)"}

        ctx = make_context(recipe, None, echo=False)
        ctx.log = RecordingLog(echo=args.verbose)
        ctx._data = data
        run = Run(ctx)
        run.setup()
        if args.artifact:
            model = run.load_artifact(Path(args.artifact))
            source = f"artifact {args.artifact}"
        else:
            model = run.random_eval_model()
            source = "random init (speed does not depend on the weights)"
        model.eval()
        with ctx.in_phase("eval"):
            tokens = ctx._load_validation()
        luts = ctx.luts
        batch_seqs = eval_batch_seqs(ev.batch_tokens, seq, ctx.world_size, grad_accum_steps(recipe.train, ctx.world_size))

        def session(n: int, stride: Optional[int]) -> EvalSession:
            n = max(seq, min(n, tokens.numel() - 1))
            return EvalSession(tokens[: n + 1], luts, WindowSchedule(n, seq, stride), batch_seqs=batch_seqs,
                               device=ctx.device, rank=0, world_size=1)

        def adapter_ctx(name: str):
            r = recipe.with_plugins([*recipe.plugins, name])    # keeps [options.<name>] of the recipe / --set
            c = make_context(r, None, echo=False)
            c.log = RecordingLog(echo=args.verbose)
            c._data = data
            c._luts = luts
            return c

        def plain(m, s, c):
            return score_fixed(m, s, c)

        modes: list[tuple[str, int, Optional[int], Callable, Any, bool]] = []
        for name in args.modes:
            if name == "non-overlapping":
                modes.append((name, n_plain, None, plain, ctx, False))
            elif name == "sliding":
                modes.append((name, n_slide, args.stride, plain, ctx, False))
            else:
                c = adapter_ctx(name)
                fn = (lambda m, s, c: score(m, c, s, adapt=True))
                modes.append((name, n_adapt, args.stride, fn, c, False))
        if args.compile:
            for name, n, stride in (("non-overlapping", n_plain, None), ("sliding", n_slide, args.stride)):
                if name in args.modes:
                    modes.append((f"{name} compiled", n, stride, plain, ctx, True))

        print(f"gpu_eval: {Path(as_given.source_path).name}{' --tiny' if args.tiny else ''} on {env['device']['name']} "
              f"({device}), seq {seq}, stride {args.stride}, {batch_seqs} windows/batch, data {data_desc['kind']}", flush=True)
        rows = []
        for name, n, stride, fn, c, compiled in modes:
            opts = c.plugins.options.get(name.split()[0]) if name in ADAPTERS else None

            def fresh():
                m = copy.deepcopy(model)
                return CompiledForward(m) if compiled else m

            if n_warm > 0:
                fn(fresh(), session(min(n_warm, n), stride), c)
            m = fresh()
            s = session(n, stride)
            sync(device)
            reset_peak_memory(device)
            t0 = time.perf_counter()
            fn(m, s, c)
            sync(device)
            secs = time.perf_counter() - t0
            res = s.result()
            mem, kind = peak_memory_mib(device)
            row = {"mode": name, "stride": s.stride, "targets": res.tokens, "windows": len(s.schedule),
                   "forward_positions": int(s.schedule.lengths.sum()), "seconds": secs,
                   "tokens_per_s": res.tokens / secs, "seconds_per_million_tokens": secs / res.tokens * 1e6,
                   "val_bpb": res.val_bpb, "coverage_ok": bool(res.coverage_ok), "peak_memory_mib": mem,
                   "memory_kind": kind, "compiled": compiled,
                   "options": opts.model_dump(mode="json") if opts is not None else None}
            rows.append(row)
            print(f"  {name}: {res.tokens} targets in {secs:.2f} s ({row['tokens_per_s']:,.0f} tokens/s)", flush=True)
            del m, s

        result = {
            "bench": "gpu_eval", "env": env,
            "recipe": {"path": as_given.source_path, "tiny": args.tiny, "plugins": list(recipe.plugins),
                       "user_overrides": list(args.set or [])},
            "model": {"source": source, "params": count_parameters(model),
                      "attention_backend": getattr(model, "attention_backend", None),
                      "looping_active": bool(getattr(model, "looping_active", False)) if hasattr(model, "schedule") else None,
                      "dtype": str(ctx.dtype)},
            "config": {"seq_len": seq, "stride": args.stride, "batch_seqs": batch_seqs, "warmup_tokens": n_warm,
                       "tokens": {"non-overlapping": n_plain, "sliding": n_slide, "adapters": n_adapt}},
            "data": data_desc, "rows": rows,
        }
        path = write_result("gpu_eval", result, Path(args.out) if args.out else None)
    finally:
        tmp.cleanup()
    hdr = ["mode", "stride", "targets", "seconds", "tokens/s", "s per M tokens", "val_bpb", "peak MiB"]
    print(f"\n{env['device']['name']} | torch {env['torch']} | CUDA {env['cuda']} | attention "
          f"{result['model']['attention_backend']} | {result['model']['params']:,} params | {result['model']['source']}")
    print(table([[r["mode"], str(r["stride"]), f"{r['targets']:,}", f"{r['seconds']:.2f}", f"{r['tokens_per_s']:,.0f}",
                  f"{r['seconds_per_million_tokens']:.1f}", f"{r['val_bpb']:.4f}", fmt(r["peak_memory_mib"], ",.0f")]
                 for r in rows], hdr))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
