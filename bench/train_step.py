"""Benchmark: CPU training-step speed and memory, and the cost of the plugin machinery.

1. Tokens/s and peak memory per training step of ``train()`` for the baseline's model
   (``recipes/baseline.toml``: 9 x 512, vocab 1024, seq 1024; the batch is cut to
   ``--baseline-batch`` tokens so a CPU step takes seconds, not hours) and for the demo
   configuration (``recipes/demo.toml`` with its plugins, or ``pr1394.toml --tiny`` while there
   is no demo recipe), on ``--threads`` torch threads (1 by default). Each configuration runs in its own process so that the peak resident
   memory (``ru_maxrss``) is its own; the table shows the peak and its growth over the
   resident size just before training.
2. Hook overhead: per-step time of the same model trained by ``train()`` with three active
   no-op plugins (observers on every step, state hooks) against a plain hand-written loop
   (same optimizers, same loader, no clock, hooks or logging). Runs alternate and the median
   per-step time of each side is compared; the target is a ratio <= 1.02.

Synthetic shards (a random bigram chain) stand in for FineWeb; speed does not depend on the
tokens. Prints a table and writes ``bench/results/train_step.json``.

    python bench/train_step.py [--steps 3] [--baseline-batch 8192] [--overhead-repeats 7]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "train_step.json"


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux


def _recipe(name: str, baseline_batch: int):
    from golf_core.recipe import load_recipe

    if name == "baseline":
        r = load_recipe(REPO / "recipes" / "baseline.toml")
        note = f"recipes/baseline.toml, batch cut to {baseline_batch} tokens"
        r.train.train_batch_tokens = baseline_batch
    else:
        demo = REPO / "recipes" / "demo.toml"
        if demo.is_file():
            r, note = load_recipe(demo), "recipes/demo.toml"
        else:
            r, note = load_recipe(REPO / "recipes" / "pr1394.toml", tiny=True), "pr1394.toml --tiny (no demo.toml yet)"
    r.train.max_wallclock_seconds = 0.0
    r.train.compile = "off"
    r.train.device = "cpu"
    r.train.checkpoint_every = 0
    r.train.val_loss_every = 0
    r.model.dtype = "fp32"
    return r, note


def _context(recipe, data_dir: Path):
    from golf_core.context import RunContext
    from golf_core.plugins import activate
    from golf_core.train.testing import RecordingLog, synthetic_shards

    data = synthetic_shards(data_dir, recipe.data.vocab_size, train_tokens=400_000)
    ctx = RunContext(recipe=recipe, plugins=activate(recipe), device=torch.device("cpu"), log=RecordingLog())
    ctx._data = data
    return ctx


def child_config(name: str, steps: int, baseline_batch: int) -> dict[str, Any]:
    """Train ``steps`` timed steps (after one warmup step) and measure them."""
    from golf_core.model import count_parameters
    from golf_core.train import train
    from golf_core.train.testing import build_model

    recipe, note = _recipe(name, baseline_batch)
    recipe.train.iterations = steps
    recipe.train.warmup_steps = 1
    recipe.train.log_every = 1
    with tempfile.TemporaryDirectory() as tmp:
        ctx = _context(recipe, Path(tmp))
        model = build_model(ctx, seed=0)
        rss0 = _rss_mib()
        res = train(model, ctx)
        peak = _peak_rss_mib()
    times = [e["train_time_s"] for e in ctx.log.events if e.get("event") == "train"]
    per_step = [b - a for a, b in zip([0.0] + times[:-1], times)]
    step_s = statistics.median(per_step)
    tok = recipe.train.train_batch_tokens
    return {
        "config": name, "source": note, "plugins": list(recipe.plugins), "params": count_parameters(model),
        "layers": recipe.model.num_layers, "dim": recipe.model.model_dim, "vocab": recipe.data.vocab_size,
        "seq_len": recipe.train.train_seq_len, "step_tokens": tok, "grad_accum": res.grad_accum_steps,
        "steps": len(per_step), "step_s_median": step_s, "step_s_all": per_step, "tokens_per_s": tok / step_s,
        "rss_before_train_mib": rss0, "peak_rss_mib": peak, "peak_growth_mib": peak - rss0,
        "threads": torch.get_num_threads(),
    }


# ---- hook overhead ------------------------------------------------------------------------------

def _noop_plugin(name: str):
    from golf_core import TechniqueInfo, hookimpl

    class Noop:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name=name))

        @hookimpl
        def golf_on_train_start(self, model):
            pass

        @hookimpl
        def golf_on_step_end(self, model, progress):
            pass

        @hookimpl
        def golf_on_train_end(self, model):
            pass

        @hookimpl
        def golf_state_dict(self):
            return None

    return Noop()


def _overhead_recipe(steps: int):
    from golf_core.train.testing import tiny_recipe

    return tiny_recipe(vocab_size=1024, model=dict(num_layers=4, model_dim=128, num_heads=4, num_kv_heads=2),
                       iterations=steps, warmup_steps=0, train_batch_tokens=4096, train_seq_len=128,
                       log_every=0, warmdown_iters=0)


def _hooked_step_s(data, steps: int) -> float:
    from golf_core.train import train
    from golf_core.train.testing import build_model, make_train_context

    plugins = [(f"noop-{i}", _noop_plugin(f"noop-{i}")) for i in range(3)]
    ctx = make_train_context(_overhead_recipe(steps), plugins, data=data)
    model = build_model(ctx, seed=0)
    res = train(model, ctx)
    return res.train_seconds / res.steps


def _plain_step_s(data, steps: int) -> float:
    from golf_core.data.loaders import SequentialLoader
    from golf_core.train.optim import build_optimizers
    from golf_core.train.testing import build_model, make_train_context

    ctx = make_train_context(_overhead_recipe(steps), (), data=data)
    model = build_model(ctx, seed=0)
    t = ctx.recipe.train
    opt = build_optimizers(model, t)
    loader = SequentialLoader(data.train_files)
    accum = 8
    local = t.train_batch_tokens // accum
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        for _ in range(accum):
            x, y = loader.next_batch(local, t.train_seq_len)
            (model(x, y) / accum).backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def _hook_call_us(data, calls: int = 20000) -> float:
    """Microseconds per ``golf_on_step_end`` dispatch to the three no-op plugins (plus the
    per-step bookkeeping train() adds: schedule, momentum, progress record, clock read)."""
    from golf_core.train.clock import TrainClock
    from golf_core.train.loop import TrainProgress
    from golf_core.train.schedule import LRSchedule, MomentumWarmup
    from golf_core.train.testing import build_model, make_train_context

    plugins = [(f"noop-{i}", _noop_plugin(f"noop-{i}")) for i in range(3)]
    ctx = make_train_context(_overhead_recipe(calls), plugins, data=data)
    model = build_model(ctx, seed=0)
    sched, mom = LRSchedule.from_section(ctx.recipe.train), MomentumWarmup.from_section(ctx.recipe.train)
    clock = TrainClock(None)
    clock.start()
    t0 = time.perf_counter()
    for step in range(calls):
        mul, m = sched(step, clock.elapsed_s), mom(step)
        el = clock.elapsed_s
        ctx.plugins.observe("golf_on_step_end", model=model,
                            progress=TrainProgress(step=step + 1, elapsed_s=el, frac=sched.frac(step + 1, el), lr_mul=mul),
                            ctx=ctx)
    return (time.perf_counter() - t0) / calls * 1e6


def child_overhead(repeats: int, steps: int) -> dict[str, Any]:
    """Alternate hooked and plain runs; compare median per-step times."""
    from golf_core.train.testing import synthetic_shards

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_shards(Path(tmp), 1024, train_tokens=400_000)
        _plain_step_s(data, 2)                       # warm caches and lazy imports
        _hooked_step_s(data, 2)
        hooked, plain = [], []
        for i in range(repeats):
            order = (_hooked_step_s, _plain_step_s) if i % 2 == 0 else (_plain_step_s, _hooked_step_s)
            for fn in order:
                (hooked if fn is _hooked_step_s else plain).append(fn(data, steps))
        call_us = _hook_call_us(data)
    h, p = statistics.median(hooked), statistics.median(plain)
    return {"hooked_step_s": h, "plain_step_s": p, "ratio": h / p, "hooked_all": hooked, "plain_all": plain,
            "hook_call_us": call_us, "ratio_from_call_cost": 1 + call_us * 1e-6 / p,
            "repeats": repeats, "steps_per_run": steps, "plugins": 3, "threads": 1,
            "model": "4 x 128, vocab 1024, seq 128, 4096 tokens/step (8 micro-steps)"}


# ---- parent --------------------------------------------------------------------------------------

def _child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, __file__, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run every measurement in a child process, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    ap.add_argument("--baseline-batch", type=int, default=8192, help="tokens per baseline step (the record: 524288)")
    ap.add_argument("--overhead-repeats", type=int, default=7)
    ap.add_argument("--overhead-steps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per configuration (default 1: two OpenMP threads on a busy 2-core machine "
                         "spin against each other and run 10-30x slower); 0: torch's default")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        kind = a.child[0]
        res = child_overhead(a.overhead_repeats, a.overhead_steps) if kind == "overhead" else \
            child_config(kind, a.steps, a.baseline_batch)
        print(json.dumps(res))
        return

    common = ["--threads", str(a.threads), "--steps", str(a.steps), "--baseline-batch", str(a.baseline_batch),
              "--overhead-repeats", str(a.overhead_repeats), "--overhead-steps", str(a.overhead_steps)]
    rows = [_child([*common, "--child", name]) for name in ("baseline", "demo")]
    over = _child([*common, "--child", "overhead"])
    print(f"{'config':<9} {'params':>11} {'L x d':>8} {'seq':>5} {'tok/step':>9} {'s/step':>8} {'tok/s':>9} "
          f"{'peak RSS MiB':>13} {'growth MiB':>11}  plugins")
    for r in rows:
        print(f"{r['config']:<9} {r['params']:>11,} {str(r['layers']) + 'x' + str(r['dim']):>8} {r['seq_len']:>5} "
              f"{r['step_tokens']:>9} {r['step_s_median']:>8.3f} {r['tokens_per_s']:>9.0f} {r['peak_rss_mib']:>13.0f} "
              f"{r['peak_growth_mib']:>11.0f}  {','.join(r['plugins']) or '-'}")
    print(f"\nhook overhead: train() with 3 no-op plugins {over['hooked_step_s'] * 1000:.2f} ms/step vs plain loop "
          f"{over['plain_step_s'] * 1000:.2f} ms/step -> ratio {over['ratio']:.4f} (target <= 1.02; runs spread "
          f"{min(over['plain_all']) * 1000:.0f}-{max(over['plain_all']) * 1000:.0f} ms on a busy machine)")
    print(f"hook dispatch + per-step bookkeeping: {over['hook_call_us']:.1f} us/step -> "
          f"ratio {over['ratio_from_call_cost']:.5f} at this step time")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "configs": rows, "hook_overhead": over, "torch": torch.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
