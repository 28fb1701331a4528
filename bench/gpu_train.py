"""Benchmark: training speed of a recipe on one device, optionally side by side with a record's own
``train_gpt.py``.

Trains the recipe (default ``recipes/pr1394.toml``) with ``golf_core.train.train`` exactly as
``golf run`` does (the recipe's plugins, compile warmup undone, the record's global batch with
gradient accumulation ``8 // world`` = 8 on one device), for a fixed number of steps and no
wallclock cap, and reports per window:

* ms/step and tokens/s;
* model FLOPs per token (``golf_core.model.flops``, pg_core §7.2, causal and full-attention
  conventions), achieved TFLOP/s and MFU against the device's dense bf16 peak (H100 SXM, H200:
  989 TFLOP/s; n/a on CPU);
* peak memory (``torch.cuda.max_memory_allocated``; ``ru_maxrss`` on CPU);
* the compile warmup (seconds, and compile time estimated as warmup minus warmup steps at the
  measured step time).

With ``depth-recurrence`` active there are two windows of ``--steps`` steps: looping off, then
looping on (the switch is moved to the middle: ``enable_at = 0.5`` of ``2 x steps`` iterations,
which is ``step / iterations`` without a cap, in golf and in the records alike).

``--reference PATH`` then runs a record's own ``train_gpt.py`` (supplied by the user, never
committed) for the same steps on the same device and shards, configured through its
environment variables (``DATA_DIR``/``DATA_PATH``, ``TOKENIZER_PATH``, ``VOCAB_SIZE``,
``ITERATIONS``, ``WARMUP_STEPS``, ``TRAIN_LOG_EVERY``, ``MAX_WALLCLOCK_SECONDS=0``, ``SEED`` ...),
parses its ``step:N/M train_loss:X ... step_avg:Yms`` lines (and the ``N/M train_loss: X ... tok/s: T``
form of later #1394 scripts), stops it after its ``peak memory allocated`` line (training done;
``--reference-full`` lets it quantize and evaluate too) and reports tokens/s ratios
golf/reference per window and the train-loss difference at equal steps. ``--seeds a,b,c`` runs
golf once per seed (the extra seeds without warmup: warmup is undone and does not change losses)
to put that difference next to the seed-to-seed spread. The reference's output is saved as
``bench/results/gpu_train-<device>.reference.log``; ``--reference-only`` runs just the script, and
``--reference-log FILE`` compares with such a log instead of running the script again. Without
FA3 installed the script gets a ``flash_attn_interface`` stand-in running torch SDPA
(``--reference-fa3``), the kernel of golf's ``--attention sdpa``.

Data: the recipe's shards when present (FineWeb, or the demo under ``--tiny``), else (or with
``--synthetic``) learnable random uint16 shards of the recipe's vocabulary written to a temporary
folder; a record script also gets a tokenizer (the demo build's at that vocabulary).

Prints a table and writes ``bench/results/gpu_train-<device>.json`` (``--out`` to change).

    python bench/gpu_train.py [--recipe recipes/pr1394.toml] [--steps 50] [--warmup 20]
        [--attention auto|flash3|flash2|sdpa] [--synthetic] [--set k=v ...] [--tiny]
        [--seeds 1337,42,2025] [--reference /path/to/train_gpt.py [--reference-only] | --reference-log FILE]
        [--reference-env K=V ...] [--reference-fa3 auto|shim|native]
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (REPO, RESULTS, device_slug, environment, fmt, peak_flops, peak_memory_mib,  # noqa: E402
                     record_layout, reset_peak_memory, sync, table, write_result, write_synthetic_dataset)

DEFAULT_RECIPE = REPO / "recipes" / "pr1394.toml"
#: issue 11's targets
TARGET_TOKENS_RATIO = 1.0
TARGET_TOKENS_RATIO_AIM = 1.1
TARGET_MFU_LOOP_OFF = 0.35
#: a ``flash_attn_interface`` stand-in for record scripts on machines without FA3: the same SDPA
#: call as golf's "sdpa" backend (golf_core.model.attention), so both sides run the same kernel
FA3_SHIM = '''"""flash_attn_interface stand-in written by golf's bench/gpu_train.py: causal GQA attention
through torch SDPA, [B, T, H, D] in and out (what golf's "sdpa" attention backend runs)."""
import torch.nn.functional as F


def flash_attn_func(q, k, v, softmax_scale=None, causal=False, **kwargs):
    """q [B,T,H,D], k/v [B,T,Hkv,D] -> [B,T,H,D]."""
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    y = F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal, scale=softmax_scale,
                                       enable_gqa=kh.size(1) != qh.size(1))
    return y.transpose(1, 2)
'''
#: env vars of a torchrun launch that must not leak into the single-device reference
_DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
             "TORCHELASTIC_RUN_ID")


# ---------------------------------------------------------------------------------------------
# recipe
# ---------------------------------------------------------------------------------------------


def default_log_every(steps: int) -> int:
    """The largest divisor of ``steps`` that is at most ``max(1, steps // 5)`` (so every window
    boundary is a logged step, with about five loss points per window)."""
    cap = max(1, steps // 5)
    return max(d for d in range(1, cap + 1) if steps % d == 0)


def bench_recipe(args: argparse.Namespace, seed: Optional[int] = None):
    """The recipe as measured, and the settings the bench forced (``--set`` strings).

    Returns ``(recipe, forced, loop_mode)``; ``loop_mode`` is None without depth recurrence.
    """
    from golf_core.recipe import load_recipe

    user = list(args.set or [])
    probe = load_recipe(args.recipe, overrides=user, tiny=args.tiny)
    loop_mode = None
    if "depth-recurrence" in probe.plugins and not args.no_loop_windows:
        loop_mode = probe.options.get("depth-recurrence", {}).get("mode", "fraction")
    total = args.steps * (2 if loop_mode else 1)
    forced = [f"train.iterations={total}", "train.max_wallclock_seconds=0.0", "train.val_loss_every=0",
              "train.checkpoint_every=0", f"train.log_every={args.log_every}"]
    if args.warmup is not None:
        forced.append(f"train.warmup_steps={args.warmup}")
    if args.attention is not None:
        forced.append(f'model.attention_backend="{args.attention}"')
    if seed is not None:
        forced.append(f"train.seed={seed}")
    if loop_mode == "fraction":
        forced.append("options.depth-recurrence.enable_at=0.5")
    elif loop_mode == "step":
        forced.append(f"options.depth-recurrence.start_step={args.steps}")
    recipe = load_recipe(args.recipe, overrides=user + forced, tiny=args.tiny)
    return recipe, forced, loop_mode


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def bench_data(recipe, args: argparse.Namespace, folder: Path, train_tokens: int, val_tokens: int,
               need_tokenizer: bool) -> tuple[Any, dict[str, Any]]:
    """The recipe's data when present (``--synthetic`` aside), else synthetic shards in ``folder``.

    Returns ``(DataPaths, description)``.
    """
    from golf_core.data.paths import resolve_data
    from golf_core.errors import GolfError

    why = "--synthetic"
    if not args.synthetic:
        try:
            data = resolve_data(recipe.data, build_missing=recipe.data.source == "demo")
            return data, {"kind": data.name, "dataset_dir": str(data.dataset_dir), "train_shards": len(data.train_files),
                          "tokenizer": str(data.tokenizer_path)}
        except GolfError as e:
            why = f"recipe data absent ({str(e).splitlines()[0]})"
    t0 = time.perf_counter()
    tok = None
    if not need_tokenizer:
        folder.mkdir(parents=True, exist_ok=True)
        tok = folder / "no-tokenizer.model"
        tok.write_bytes(b"")
    data = write_synthetic_dataset(folder, recipe.data.vocab_size, train_tokens, val_tokens, tokenizer=tok)
    return data, {"kind": "synthetic", "why": why, "dataset_dir": str(data.dataset_dir),
                  "train_tokens": train_tokens, "val_tokens": val_tokens, "vocab_size": recipe.data.vocab_size,
                  "tokenizer": str(data.tokenizer_path) if need_tokenizer else None,
                  "generator": "bench._common.chain_tokens (random bigram chains, 5% noise)",
                  "seconds": round(time.perf_counter() - t0, 2)}


# ---------------------------------------------------------------------------------------------
# golf
# ---------------------------------------------------------------------------------------------


class LoopProbe:
    """Time stamps and peak memory at every change of the model's looping switch.

    The schedule object's class is swapped for a subclass whose ``looping_active`` setter
    synchronizes the device, records ``(value, time, peak memory since the last event)`` and
    resets the CUDA peak counter. Only the setter changes, so the compiled graphs (which read the
    flag) are the same. In ``train()`` the setter runs at: compile-warmup enter (on) and exit
    (off), ``golf_on_train_start`` (off), the switch in the timed loop (on).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.device = device
        self.events: list[dict[str, Any]] = []
        sched = getattr(model, "schedule", None)
        self.active = bool(sched is not None and sched.has_loop)
        if self.active:
            sched.__class__ = _probed(type(sched))
            sched._bench_probe = self

    def record(self, value: bool, prev: bool) -> None:
        """Called by the probed setter."""
        sync(self.device)
        mem, _ = peak_memory_mib(self.device)
        reset_peak_memory(self.device)
        self.events.append({"value": value, "prev": prev, "t": time.perf_counter(), "peak_mib": mem})


def _probed(base: type) -> type:
    prop = base.looping_active

    def fset(self, value):
        prev = prop.fget(self)
        prop.fset(self, value)
        probe = self.__dict__.get("_bench_probe")
        if probe is not None:
            probe.record(bool(value), bool(prev))

    return type(f"Probed{base.__name__}", (base,), {"looping_active": property(prop.fget, fset)})


def _flops(model, seq_len: int, looping: bool) -> tuple[int, int]:
    from golf_core.model import flops_per_token

    sched = getattr(model, "schedule", None)
    prev = sched.looping_active if sched is not None else False
    if sched is not None and sched.has_loop:
        sched.looping_active = looping
    try:
        return flops_per_token(model, seq_len, causal=True), flops_per_token(model, seq_len, causal=False)
    finally:
        if sched is not None and sched.has_loop:
            sched.looping_active = prev


def window_metrics(name: str, looping: Optional[bool], lo: int, hi: int, times: dict[int, float],
                   step_tokens: int, fpt: Optional[tuple[int, int]], peak: Optional[float]) -> dict[str, Any]:
    """Speed of steps ``lo+1 .. hi`` from cumulative timed seconds at logged steps (``times[0] = 0``).

    ``fpt``: (causal, full-attention) FLOPs per token; ``peak``: device FLOP/s or None.
    """
    out: dict[str, Any] = {"name": name, "looping": looping, "first_step": lo + 1, "last_step": hi, "steps": hi - lo}
    if lo not in times or hi not in times or hi <= lo:
        out.update(seconds=None, ms_per_step=None, tokens_per_s=None, note=f"steps {lo} and {hi} were not both logged")
        return out
    secs = times[hi] - times[lo]
    tok_s = (hi - lo) * step_tokens / secs if secs > 0 else None
    out.update(seconds=secs, ms_per_step=1000.0 * secs / (hi - lo), tokens_per_s=tok_s)
    if fpt is not None and tok_s is not None:
        out.update(flops_per_token=fpt[0], flops_per_token_full_attention=fpt[1],
                   tflops=fpt[0] * tok_s / 1e12, tflops_full_attention=fpt[1] * tok_s / 1e12,
                   mfu=None if peak is None else fpt[0] * tok_s / peak,
                   mfu_full_attention=None if peak is None else fpt[1] * tok_s / peak)
    return out


def run_golf(recipe, data, *, verbose: bool = False, peak: Optional[float] = None, timed: bool = True) -> dict[str, Any]:
    """Train ``recipe`` on ``data`` with golf's ``train()``; return speed, memory and losses.

    ``timed=False`` (extra seeds) keeps only the losses.
    """
    from golf_core.model import count_parameters
    from golf_core.run import Run
    from golf_core.train.loop import grad_accum_steps, micro_batch_tokens, resolve_compile
    from golf_core.train.testing import RecordingLog

    run = Run.from_recipe(recipe, None, echo=False)
    ctx = run.ctx
    ctx.log = RecordingLog(echo=verbose)
    ctx._data = data
    device = ctx.device
    t = recipe.train
    run.setup()
    model = run.build()
    n_params = count_parameters(model)
    backend = getattr(model, "attention_backend", None)
    has_loop = bool(getattr(model, "schedule", None) is not None and model.schedule.has_loop)
    fpt_off = _flops(model, t.train_seq_len, False)
    fpt_on = _flops(model, t.train_seq_len, True) if has_loop else None
    probe = LoopProbe(model, device)
    accum = grad_accum_steps(t, ctx.world_size)
    local = micro_batch_tokens(t, ctx.world_size, accum)
    step_tokens = local * ctx.world_size * accum

    reset_peak_memory(device)
    t_call = time.perf_counter()
    res = run.train(monitor=False)
    sync(device)
    t_done = time.perf_counter()
    peak_last, mem_kind = peak_memory_mib(device)

    from golf_core.model.fused import kernel_checks

    ev = ctx.log.events
    losses = [[int(e["step"]), float(e["train_loss"])] for e in ev if e.get("event") == "train"]
    times = {0: 0.0, **{int(e["step"]): float(e["train_time_s"]) for e in ev if e.get("event") == "train"}}
    switch = next((int(e["step"]) for e in ev if e.get("event") == "layer_loop"), None)
    out: dict[str, Any] = {
        "seed": t.seed, "steps": res.steps, "losses": losses, "train_seconds": res.train_seconds,
        "loop_switch_step": switch, "attention_backend": backend,
        "compiled_graphs": res.compiled_graphs, "compiled_in_clock": res.compiled_in_clock,
        "fused_kernels": kernel_checks(),
    }
    if timed:
        n = switch if has_loop and switch is not None else res.steps
        pe = probe.events
        warm: dict[str, Any] = {"warmup_steps": t.warmup_steps, "warmup_s": res.warmup_seconds}
        if has_loop and switch is not None:
            win_off = window_metrics("loop_off", False, 0, n, times, step_tokens, fpt_off, peak)
            win_on = window_metrics("loop_on", True, n, res.steps, times, step_tokens, fpt_on, peak)
            # events: [on (warmup enter), off (warmup exit)] if warmup, then off (train start), on (switch)
            sw = [e for e in pe if e["value"] and not e["prev"]]
            switch_ev = sw[-1] if sw else None
            if t.warmup_steps > 0 and len(sw) >= 2:
                enter = sw[0]
                leave = next(e for e in pe if e["t"] > enter["t"] and not e["value"])
                warm["warmup_loop_off_s"] = enter["t"] - t_call
                warm["warmup_loop_on_s"] = leave["t"] - enter["t"]
                win_off["warmup_s"] = warm["warmup_loop_off_s"]
                win_on["warmup_s"] = warm["warmup_loop_on_s"]
                warm_peak = max(enter["peak_mib"], leave["peak_mib"])
            else:
                warm_peak = None
            win_off["peak_memory_mib"] = switch_ev["peak_mib"] if switch_ev else None
            win_on["peak_memory_mib"] = peak_last
            windows = [win_off, win_on]
            warm["peak_memory_mib"] = warm_peak
        else:
            w = window_metrics("all", False if not has_loop else None, 0, res.steps, times, step_tokens, fpt_off, peak)
            w["warmup_s"] = res.warmup_seconds
            w["peak_memory_mib"] = peak_last
            windows = [w]
        for w in windows:
            ws, ms = w.get("warmup_s"), w.get("ms_per_step")
            w["compile_s_est"] = None if ws is None or ms is None or t.warmup_steps == 0 else \
                max(0.0, ws - t.warmup_steps * ms / 1000.0)
            w["memory_kind"] = mem_kind
        total_s = times.get(res.steps)
        out.update({
            "params": n_params, "compile": resolve_compile(t, device), "dtype": str(getattr(model, "compute_dtype", "")),
            "grad_accum": accum, "micro_batch_tokens": local, "micro_batch_seqs": local // t.train_seq_len,
            "step_tokens": step_tokens, "world_size": ctx.world_size, "device": str(device),
            "windows": windows, "warmup": warm,
            "overall": {"steps": res.steps, "seconds": total_s,
                        "tokens_per_s": res.steps * step_tokens / total_s if total_s else None,
                        "ms_per_step": 1000.0 * total_s / res.steps if total_s and res.steps else None},
            "wall_s": t_done - t_call, "memory_kind": mem_kind, "log_tail": ctx.log.lines[-6:],
        })
    del model, ctx, res
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    try:
        torch._dynamo.reset()
    except Exception:  # noqa: BLE001 - best effort between runs
        pass
    return out


# ---------------------------------------------------------------------------------------------
# the reference script
# ---------------------------------------------------------------------------------------------

_STEP_RE = re.compile(r"(?:^|\s)(?:step:\s*)?(\d+)/(\d+)\s+train_loss:\s*([-+0-9.eE]+|nan|inf)")
_TRAIN_TIME_RE = re.compile(r"train_time:\s*([0-9.]+)\s*(ms|s|m)\b")
_STEP_AVG_RE = re.compile(r"step_avg:\s*([0-9.]+)\s*ms")
_TOKS_RE = re.compile(r"tok/s:\s*([0-9.]+)")
_PEAK_RE = re.compile(r"peak memory allocated:\s*([0-9.]+)\s*MiB")


def parse_train_line(line: str, step_tokens: int) -> Optional[dict[str, Any]]:
    """One record-style training log line -> ``{step, iterations, train_loss, elapsed_s, source}``.

    Accepts the baseline's ``step:N/M train_loss:X train_time:Tms step_avg:Yms`` and the
    ``N/M train_loss: X ... train_time: 1.2m tok/s: T`` form. The cumulative timed seconds come
    from ``train_time`` in ms or s, else from the cumulative ``tok/s`` (``step * step_tokens /
    tok_s``), else ``step * step_avg``, else ``train_time`` in minutes; None when none is given.
    """
    m = _STEP_RE.search(line)
    if not m:
        return None
    step, iters, loss = int(m.group(1)), int(m.group(2)), float(m.group(3))
    elapsed, source = None, None
    tt = _TRAIN_TIME_RE.search(line)
    ta = _STEP_AVG_RE.search(line)
    tk = _TOKS_RE.search(line)
    if tt and tt.group(2) in ("ms", "s"):
        elapsed, source = float(tt.group(1)) / (1000.0 if tt.group(2) == "ms" else 1.0), "train_time"
    elif tk and float(tk.group(1)) > 0:
        elapsed, source = step * step_tokens / float(tk.group(1)), "tok/s"
    elif ta:
        elapsed, source = step * float(ta.group(1)) / 1000.0, "step_avg"
    elif tt:
        elapsed, source = float(tt.group(1)) * 60.0, "train_time_minutes"
    return {"step": step, "iterations": iters, "train_loss": loss, "elapsed_s": elapsed, "source": source}


def parse_reference_log(lines: list[str], step_tokens: int) -> dict[str, Any]:
    """Training lines (last one per step wins), the peak-memory line, and the training-done marker."""
    steps: dict[int, dict[str, Any]] = {}
    peak = None
    for line in lines:
        p = parse_train_line(line, step_tokens)
        if p is not None:
            steps[p["step"]] = p
            continue
        m = _PEAK_RE.search(line)
        if m:
            peak = float(m.group(1))
    return {"steps": [steps[k] for k in sorted(steps)], "peak_memory_mib": peak}


def reference_env(args: argparse.Namespace, recipe, data_dir: Path, seed: int, total: int, loop_mode) -> dict[str, str]:
    """The record script's environment: data, tokenizer, shapes, steps, logging, no cap, seed."""
    t, m = recipe.train, recipe.model
    V = recipe.data.vocab_size
    env = {
        "DATA_DIR": str(data_dir), "DATA_PATH": str(data_dir / "datasets" / f"fineweb10B_sp{V}"),
        "TOKENIZER_PATH": str(data_dir / "tokenizers" / f"fineweb_{V}_bpe.model"), "VOCAB_SIZE": str(V),
        "ITERATIONS": str(total), "WARMUP_STEPS": str(t.warmup_steps), "TRAIN_LOG_EVERY": str(t.log_every),
        "MAX_WALLCLOCK_SECONDS": "0", "VAL_LOSS_EVERY": "0", "SEED": str(seed),
        "TRAIN_BATCH_TOKENS": str(t.train_batch_tokens), "TRAIN_SEQ_LEN": str(t.train_seq_len),
        "EVAL_SEQ_LEN": str(recipe.eval.seq_len),
        "NUM_LAYERS": str(m.num_layers), "MODEL_DIM": str(m.model_dim), "NUM_HEADS": str(m.num_heads),
        "NUM_KV_HEADS": str(m.num_kv_heads), "MLP_MULT": f"{m.mlp_mult:g}",
        "RUN_ID": "golf_bench_reference",
    }
    if loop_mode == "fraction":
        env["ENABLE_LOOPING_AT"] = "0.5"
    for kv in args.reference_env or []:
        k, _, v = kv.partition("=")
        env[k.strip()] = v
    return env


def launch_reference(args: argparse.Namespace, recipe, data, seed: int, total: int, loop_mode,
                     folder: Path) -> tuple[list[str], dict[str, Any]]:
    """Run the user's ``train_gpt.py`` in ``folder`` on ``data`` (record layout, short validation
    stream); stop it after its peak-memory line unless ``--reference-full``. Returns its output
    lines and how it ran."""
    path = Path(args.reference).expanduser().resolve()
    if not path.is_file():
        raise SystemExit(f"gpu_train: --reference {path}: no such file")
    val_tokens = args.reference_val_tokens or 32 * recipe.eval.seq_len + 1
    data_dir = record_layout(folder / "data", data, val_tokens=val_tokens)
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    renv = reference_env(args, recipe, data_dir, seed, total, loop_mode)
    env.update(renv)
    shim = args.reference_fa3 == "shim" or (args.reference_fa3 == "auto" and not _fa3_importable())
    if shim:
        sdir = folder / "fa3_shim"
        sdir.mkdir(parents=True, exist_ok=True)
        (sdir / "flash_attn_interface.py").write_text(FA3_SHIM)
        env["PYTHONPATH"] = os.pathsep.join(x for x in (str(sdir), env.get("PYTHONPATH")) if x)
    env["PYTHONUNBUFFERED"] = "1"           # its print()s reach the pipe line by line
    cmd = [args.reference_python or sys.executable, str(path)]
    lines: list[str] = []
    stopped = {"early": False, "timeout": False}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, start_new_session=True)

    def kill(sig=signal.SIGTERM) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def on_timeout() -> None:
        stopped["timeout"] = True
        kill()

    timer = threading.Timer(args.reference_timeout, on_timeout)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if args.verbose:
                print(f"ref| {line}", flush=True)
            if not args.reference_full and _PEAK_RE.search(line):
                stopped["early"] = True
                kill()
                break
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill(signal.SIGKILL)
            proc.wait()
    finally:
        timer.cancel()
    ok = (stopped["early"] or proc.returncode == 0) and not stopped["timeout"]
    return lines, {"source": "run", "path": str(path), "cmd": cmd, "env": renv, "returncode": proc.returncode,
                   "fa3": "shim: flash_attn_interface -> torch SDPA (bench)" if shim else "as installed",
                   "ok": bool(ok), "stopped_after_training": stopped["early"], "timed_out": stopped["timeout"],
                   "wall_s": time.perf_counter() - t0, "validation_tokens": val_tokens}


def _fa3_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn_interface") is not None


def measure_reference(lines: list[str], meta: dict[str, Any], step_tokens: int, peak: Optional[float],
                      fpt: dict[str, tuple[int, int]],
                      window_bounds: list[tuple[str, Optional[bool], int, int]]) -> dict[str, Any]:
    """Windows, losses and peak memory of a reference log (``meta`` says how it was obtained)."""
    parsed = parse_reference_log(lines, step_tokens)
    times = {0: 0.0}
    for s in parsed["steps"]:
        if s["elapsed_s"] is not None:
            times[s["step"]] = s["elapsed_s"]
    windows = [window_metrics(name, looping, lo, hi, times, step_tokens, fpt.get(name), peak)
               for name, looping, lo, hi in window_bounds]
    last = max(times) if len(times) > 1 else None
    return {
        **meta,
        "losses": [[s["step"], s["train_loss"]] for s in parsed["steps"]],
        "time_source": sorted({s["source"] for s in parsed["steps"] if s["source"]}),
        "windows": windows, "peak_memory_mib": parsed["peak_memory_mib"],
        "overall": {"steps": last, "seconds": times.get(last) if last else None,
                    "tokens_per_s": last * step_tokens / times[last] if last and times[last] > 0 else None},
        "log_tail": lines[-25:],
    }


# ---------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------


def compare(golf: dict[str, Any], ref: dict[str, Any], spread_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens/s ratios golf/reference per window and overall; train-loss differences at the steps
    both logged; the golf seed-to-seed spread at those steps when several seeds ran."""
    ratios: dict[str, Optional[float]] = {}
    for gw, rw in zip(golf["windows"], ref["windows"]):
        g, r = gw.get("tokens_per_s"), rw.get("tokens_per_s")
        ratios[gw["name"]] = g / r if g and r else None
    g, r = golf["overall"].get("tokens_per_s"), ref["overall"].get("tokens_per_s")
    ratios["overall"] = g / r if g and r else None
    gl, rl = dict(map(tuple, golf["losses"])), dict(map(tuple, ref["losses"]))
    common = sorted(set(gl) & set(rl))
    diffs = [{"step": s, "golf": gl[s], "reference": rl[s], "diff": gl[s] - rl[s]} for s in common]
    finite = [d["diff"] for d in diffs if math.isfinite(d["diff"])]
    out: dict[str, Any] = {
        "tokens_per_s_ratio": ratios, "loss_steps": common, "loss_diff": diffs,
        "max_abs_loss_diff": max(map(abs, finite)) if finite else None,
        "mean_abs_loss_diff": sum(map(abs, finite)) / len(finite) if finite else None,
        "final_loss_diff": diffs[-1]["diff"] if diffs else None,
    }
    if spread_runs:
        per_seed = [dict(map(tuple, run["losses"])) for run in [golf, *spread_runs]]
        spread = {s: max(p[s] for p in per_seed) - min(p[s] for p in per_seed)
                  for s in common if all(s in p for p in per_seed)}
        out["seed_spread"] = [{"step": s, "spread": v} for s, v in sorted(spread.items())]
        if spread:
            mean_spread = sum(spread.values()) / len(spread)
            mean_diff = sum(abs(gl[s] - rl[s]) for s in spread) / len(spread)
            out["mean_seed_spread"] = mean_spread
            out["within_seed_spread"] = mean_diff <= mean_spread
            out["within_seed_spread_rule"] = ("mean |golf - reference| <= mean (max - min over golf seeds), "
                                              "at the steps both logged")
    return out


def targets(golf: dict[str, Any], cmp: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Issue 11's targets, with None where this run cannot tell (no reference, CPU, one seed)."""
    off = golf["windows"][0]
    ratio = (cmp or {}).get("tokens_per_s_ratio", {})
    r_off = ratio.get(off["name"]) if ratio else None
    return {
        "tokens_per_s_ratio_min": TARGET_TOKENS_RATIO, "tokens_per_s_ratio_aim": TARGET_TOKENS_RATIO_AIM,
        "mfu_loop_off_min": TARGET_MFU_LOOP_OFF,
        "tokens_per_s_ratio_met": None if r_off is None else (r_off >= TARGET_TOKENS_RATIO and
                                                              (ratio.get("overall") or 0) >= TARGET_TOKENS_RATIO),
        "mfu_loop_off_met": None if off.get("mfu") is None else off["mfu"] >= TARGET_MFU_LOOP_OFF,
        "mfu_loop_off_met_full_attention": None if off.get("mfu_full_attention") is None else
        off["mfu_full_attention"] >= TARGET_MFU_LOOP_OFF,
        "mfu_convention": "mfu: causal attention (pg_core §7.2, FA3's work; the record: 27.8% on 8xH100); "
                          "mfu_full_attention: 12*T*d per layer (PaLM/nanoGPT; the record: 34.6%)",
        "loss_within_seed_spread_met": (cmp or {}).get("within_seed_spread"),
    }


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="recipe path or shipped name (default pr1394)")
    ap.add_argument("--set", action="append", metavar="K=V", help="recipe override, repeatable (as golf run --set)")
    ap.add_argument("--tiny", action="store_true", help="the recipe under --tiny (CPU smoke test)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps per window (default 50; 3 with --tiny); 2 windows with depth recurrence")
    ap.add_argument("--warmup", type=int, default=None, help="compile-warmup steps (default: the recipe's, 20 for pr1394)")
    ap.add_argument("--log-every", type=int, default=None, help="log (loss) every K steps; must divide --steps")
    ap.add_argument("--synthetic", action="store_true", help="synthetic shards even when the recipe's data exist")
    ap.add_argument("--attention", choices=["auto", "flash3", "flash2", "sdpa"], default=None,
                    help="force [model] attention_backend (default: the recipe's, auto)")
    ap.add_argument("--seeds", default=None,
                    help="comma-separated seeds (default: the recipe's); extra seeds give the loss spread")
    ap.add_argument("--no-loop-windows", action="store_true", help="one window even with depth recurrence (its own switch)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device dense bf16 peak, overriding the table")
    ap.add_argument("--reference", default=None, help="a record's train_gpt.py to run side by side (never committed)")
    ap.add_argument("--reference-only", action="store_true",
                    help="run only the reference (its log is saved for a later --reference-log run)")
    ap.add_argument("--reference-log", default=None,
                    help="compare with a saved reference log (the .reference.log of an earlier run) instead of running")
    ap.add_argument("--reference-env", action="append", metavar="K=V", help="extra env for the reference, repeatable")
    ap.add_argument("--reference-python", default=None, help="interpreter for the reference (default: this one)")
    ap.add_argument("--reference-fa3", choices=["auto", "shim", "native"], default="auto",
                    help="shim: give the reference a flash_attn_interface that runs torch SDPA (use with "
                         "--attention sdpa); auto: shim only when FA3 is not installed; native: never")
    ap.add_argument("--reference-full", action="store_true", help="let the reference quantize and evaluate too")
    ap.add_argument("--reference-timeout", type=float, default=1800.0, help="seconds before the reference is killed")
    ap.add_argument("--reference-val-tokens", type=int, default=None,
                    help="validation tokens the reference sees (default 32 x eval seq_len + 1; 0: all)")
    ap.add_argument("--data-dir", default=None,
                    help="folder for synthetic data and the reference's layout (default: temporary)")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/gpu_train-<device>.json)")
    ap.add_argument("--verbose", action="store_true", help="echo golf's and the reference's log lines")
    args = ap.parse_args(argv)
    if args.steps is None:
        args.steps = 3 if args.tiny else 50
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    if args.log_every is None:
        args.log_every = default_log_every(args.steps)
    elif args.log_every < 1 or args.steps % args.log_every:
        ap.error(f"--log-every {args.log_every} must divide --steps {args.steps}")
    for opt in ("reference", "reference_log"):
        f = getattr(args, opt)
        if f is not None and not Path(f).expanduser().is_file():
            ap.error(f"--{opt.replace('_', '-')} {f}: no such file")
    if args.reference and args.reference_log:
        ap.error("give --reference or --reference-log, not both")
    if args.reference_only and not args.reference:
        ap.error("--reference-only needs --reference")
    if args.reference_only and args.seeds and "," in args.seeds:
        ap.error("--reference-only runs one seed")
    if args.reference_val_tokens == 0:
        args.reference_val_tokens = None
    return args


def _windows_of(args: argparse.Namespace, loop_mode) -> list[tuple[str, Optional[bool], int, int]]:
    n = args.steps
    if loop_mode:
        return [("loop_off", False, 0, n), ("loop_on", True, n, 2 * n)]
    return [("all", None, 0, n)]


_LOG_HEADER = "# golf bench/gpu_train.py reference run: "


def read_reference_log(path: Path) -> tuple[list[str], dict[str, Any]]:
    """A saved ``.reference.log``: its lines, and the run's description from its header line."""
    lines = Path(path).read_text(errors="replace").splitlines()
    meta: dict[str, Any] = {"source": "log", "path": str(Path(path).resolve()), "ok": True}
    if lines and lines[0].startswith(_LOG_HEADER):
        saved = json.loads(lines[0][len(_LOG_HEADER):])
        meta.update({k: v for k, v in saved.items() if k not in ("source", "path", "ok")})
        meta["ran"] = {"path": saved.get("path"), "ok": saved.get("ok")}
    return lines, meta


def main(argv=None) -> int:
    """Measure golf (and the reference), print the table, write the JSON."""
    args = parse_args(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("gpu_train: runs on one device; launch it with python, not torchrun")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    recipe, forced, loop_mode = bench_recipe(args, seed=seeds[0] if seeds else None)
    seeds = seeds or [recipe.train.seed]
    total = recipe.train.iterations
    from golf_core.context import resolve_device

    device = resolve_device(recipe.train.device)
    env = environment(device)
    peak, peak_src = (args.peak_tflops * 1e12, "--peak-tflops") if args.peak_tflops else peak_flops(device)
    default_out = RESULTS / f"gpu_train-{device_slug(env)}{'-reference' if args.reference_only else ''}.json"
    out_path = Path(args.out) if args.out else default_out
    log_path = (out_path.with_suffix(".reference.log") if args.out else
                RESULTS / f"gpu_train-{device_slug(env)}.reference.log")

    tmp = tempfile.TemporaryDirectory(prefix="golf-gpu-train-")
    folder = Path(args.data_dir) if args.data_dir else Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t = recipe.train
        train_tokens = min(200_000_000, (total + 1) * t.train_batch_tokens + 4 * t.train_seq_len)
        val_tokens = (args.reference_val_tokens or 32 * recipe.eval.seq_len + 1)
        data, data_desc = bench_data(recipe, args, folder / "synthetic", train_tokens, val_tokens,
                                     need_tokenizer=args.reference is not None)
        print(f"gpu_train: {Path(recipe.source_path).name}{' --tiny' if args.tiny else ''} on {env['device']['name']} "
              f"({device}), {total} steps{' (2 windows: looping off, on)' if loop_mode else ''}, data: {data_desc['kind']}"
              f"{', reference only' if args.reference_only else ''}", flush=True)
        golf = None
        spread_runs: list[dict[str, Any]] = []
        if not args.reference_only:
            golf = run_golf(recipe, data, verbose=args.verbose, peak=peak)
            for s in seeds[1:]:
                r2, _, _ = bench_recipe(args, seed=s)
                r2.train.warmup_steps = 0
                spread_runs.append(run_golf(r2, data, verbose=args.verbose, peak=peak, timed=False))
        ref = cmp = None
        if args.reference or args.reference_log:
            if args.reference:
                ref_lines, meta = launch_reference(args, recipe, data, seeds[0], total, loop_mode, folder / "reference")
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text(_LOG_HEADER + json.dumps({k: meta[k] for k in ("path", "env", "fa3", "ok")})
                                    + "\n" + "\n".join(ref_lines) + "\n")
                meta["log_file"] = str(log_path)
            else:
                ref_lines, meta = read_reference_log(Path(args.reference_log))
            if golf is not None:
                bounds = [(w["name"], w["looping"], w["first_step"] - 1, w["last_step"]) for w in golf["windows"]]
                fpt = {w["name"]: (w["flops_per_token"], w["flops_per_token_full_attention"])
                       for w in golf["windows"] if "flops_per_token" in w}
                step_tokens = golf["step_tokens"]
            else:
                bounds, fpt, step_tokens = _windows_of(args, loop_mode), {}, t.train_batch_tokens
            ref = measure_reference(ref_lines, meta, step_tokens, peak, fpt, bounds)
            if golf is not None:
                cmp = compare(golf, ref, spread_runs)
                if "fa3" in meta:
                    ref_kernel = "sdpa" if meta["fa3"].startswith("shim") else "flash3"
                    cmp["attention"] = {"golf": golf["attention_backend"], "reference": ref_kernel,
                                        "same": golf["attention_backend"] == ref_kernel}
        result = {
            "bench": "gpu_train", "env": env,
            "recipe": {"path": recipe.source_path, "tiny": args.tiny, "plugins": list(recipe.plugins),
                       "user_overrides": list(args.set or []), "bench_overrides": forced},
            "config": {"steps_per_window": args.steps, "total_steps": total, "warmup_steps": recipe.train.warmup_steps,
                       "log_every": recipe.train.log_every, "train_batch_tokens": recipe.train.train_batch_tokens,
                       "train_seq_len": recipe.train.train_seq_len, "loop_mode": loop_mode, "seeds": seeds,
                       "peak_flops": peak, "peak_flops_source": peak_src},
            "data": data_desc,
            "attention_backend": golf["attention_backend"] if golf else None,
            "golf": golf,
            "seed_runs": [{"seed": r["seed"], "losses": r["losses"], "warmup_steps": 0} for r in spread_runs],
            "reference": ref, "comparison": cmp, "targets": targets(golf, cmp) if golf else None,
        }
        path = write_result("gpu_train", result, out_path)
    finally:
        tmp.cleanup()
    print_report(result, path)
    return 0 if ref is None or ref["ok"] else 1


def _row(label: str, w: dict[str, Any], peak_mib: Optional[float], warm: bool) -> list[str]:
    ftok = w.get("flops_per_token")
    return [label, fmt(w.get("ms_per_step"), ".1f"), fmt(w.get("tokens_per_s"), ",.0f"),
            fmt(ftok / 1e6 if ftok else None, ".2f"), fmt(w.get("tflops"), ".2f"),
            fmt(100 * w["mfu"] if w.get("mfu") is not None else None, ".1f"),
            fmt(100 * w["mfu_full_attention"] if w.get("mfu_full_attention") is not None else None, ".1f"),
            fmt(peak_mib, ",.0f"), fmt(w.get("warmup_s"), ".1f") if warm else "",
            fmt(w.get("compile_s_est"), ".1f") if warm else ""]


def print_report(res: dict[str, Any], path: Path) -> None:
    """The human table."""
    g, ref, env = res["golf"], res.get("reference"), res["env"]
    rows = [_row(f"golf {w['name']}", w, w.get("peak_memory_mib"), True) for w in (g["windows"] if g else [])]
    if ref:
        rows += [_row(f"reference {w['name']}", w, ref.get("peak_memory_mib"), False) for w in ref["windows"]]
    head = f"\n{env['device']['name']} | torch {env['torch']} | CUDA {env['cuda']} | data {res['data']['kind']}"
    if g:
        head += (f" | attention {res['attention_backend']} | {g['params']:,} params | {g['step_tokens']:,} tokens/step = "
                 f"{g['grad_accum']} x {g['micro_batch_seqs']} x {res['config']['train_seq_len']} | compile {g['compile']}")
    print(head)
    print(table(rows, ["window", "ms/step", "tokens/s", "MFLOP/tok", "TFLOP/s", "MFU %", "MFU % full", "peak MiB",
                       "warmup s", "compile s"]))
    cmp = res.get("comparison")
    if cmp:
        r = cmp["tokens_per_s_ratio"]
        print("tokens/s golf/reference: " + ", ".join(f"{k} {fmt(v, '.3f')}" for k, v in r.items()))
        print(f"train loss golf - reference at {len(cmp['loss_steps'])} steps: "
              f"max |diff| {fmt(cmp['max_abs_loss_diff'], '.4f')}, "
              f"mean |diff| {fmt(cmp['mean_abs_loss_diff'], '.4f')}, final {fmt(cmp['final_loss_diff'], '+.4f')}"
              + (f"; mean seed spread {fmt(cmp.get('mean_seed_spread'), '.4f')} -> within: {cmp.get('within_seed_spread')}"
                 if "mean_seed_spread" in cmp else ""))
        att = cmp.get("attention")
        if att and not att["same"]:
            print(f"WARNING: attention differs: golf {att['golf']}, reference {att['reference']} "
                  f"(--attention / --reference-fa3)")
    if ref and not ref["ok"]:
        print(f"reference FAILED (returncode {ref.get('returncode')}, timed out {ref.get('timed_out')}); last lines:")
        print("\n".join("  " + x for x in ref["log_tail"][-10:]))
    if ref and ref.get("log_file"):
        print(f"reference log: {ref['log_file']}")
    tg = res.get("targets")
    if tg:
        print("targets: " + ", ".join(f"{k.replace('_met', '')} {tg[k]}" for k in tg if "_met" in k)
              + " (None: not measurable here)")
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
