"""Eval-time adapters on a trained demo model (CPU): BPB against plain sliding evaluation, and
evaluation seconds per adapter.

Trains (once; reused when ``--run-dir`` already holds a finished run) the naive baseline under
``--tiny`` (demo corpus, vocab 1024, 9x64, seq 128) for ``--iterations`` steps with the core
pipeline, decodes ``artifact.bin`` into a fresh model exactly as the final evaluation does, and
scores the first ``--max-tokens`` validation tokens (sliding, stride 32) with each adapter's
functional API on a fresh copy of that model:

* ``sliding`` (the core's fixed scorer) and ``non-overlapping``;
* ``slot`` (#1229 scored-position, and the standard all-position mask);
* ``causal-slot`` per window (AdamW; L-BFGS) and batch-shared as published (#1306 AdamW, #1350 L-BFGS);
* ``score-first-ttt`` (#1413 settings, 16 tiny sequences per chunk);
* ``prequant-ttt`` (validation data as #1306/#1423; a training slice): applied to the decoded
  weights, re-quantized with the baseline int8 per-row codec, then scored sliding.

Writes ``bench/results/eval_adapters.json`` and prints a table. One intra-op thread by default
(``--threads``): on a loaded 2-core machine more threads make tiny CPU work much slower.

    python bench/eval_adapters.py [--iterations 400] [--max-tokens 16385] [--run-dir /tmp/golf-bench-eval-adapters]
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

from golf_core.eval.score import score_fixed  # noqa: E402
from golf_core.run import Run, make_context, make_session, run_recipe  # noqa: E402
from golf_core.recipe import load_recipe  # noqa: E402

STRIDE = 32


def train_demo_model(run_dir: Path, iterations: int, max_tokens: int) -> dict:
    """Run the baseline recipe under --tiny (unless run_dir holds a finished run); return result.json."""
    res = run_dir / "result.json"
    if res.is_file() and (run_dir / "artifact.bin").is_file():
        return json.loads(res.read_text())
    recipe = load_recipe(ROOT / "recipes" / "baseline.toml", overrides=[
        f"train.iterations={iterations}", f"train.warmdown_iters={max(1, iterations // 4)}", "train.log_every=50",
        f"eval.stride={STRIDE}", f"eval.max_tokens={max_tokens}"], tiny=True)
    return run_recipe(recipe, run_dir, echo=False, progress=False)


def requantize(model: torch.nn.Module) -> None:
    """Round-trip the weights through the baseline's int8 per-row codec (the default quantizer)."""
    from golf_core.quant.dequant import dequantize
    from golf_core.quant.int8 import quantize_state_dict_int8

    state = dequantize(quantize_state_dict_int8(model.state_dict()))
    template = model.state_dict()
    model.load_state_dict({k: v.to(template[k].dtype) for k, v in state.items()})


def adapters(ctx, run_dir: Path):
    """(name, family, legality, fn(model, session)) for every configuration measured."""
    from golf_causal_slot import AdamWDeltaConfig, CausalSlotConfig, LBFGSConfig, causal_slot_evaluate
    from golf_prequant_ttt import PrequantConfig, prequant_adapt, rank_sequences, training_slice
    from golf_score_first_ttt import TTTConfig, score_first_ttt
    from golf_slot import SlotConfig, slot_evaluate

    seq = ctx.recipe.eval.seq_len

    def prequant(data):
        def run(model, session):
            if data == "val":
                tokens = ctx._load_validation()        # the bench's own read; a run would record it
            else:
                tokens = training_slice(ctx.data.train_files, 64 * seq)
            x, y = rank_sequences(tokens, seq)
            prequant_adapt(model, x, y, PrequantConfig())
            requantize(model)
            score_fixed(model, session)
        return run

    return [
        ("sliding", "core", "fixed-predictor", lambda m, s: score_fixed(m, s)),
        ("slot scored (#1229)", "slot", "not-causal", lambda m, s: slot_evaluate(m, s, SlotConfig(), mask="scored")),
        ("slot all positions", "slot", "not-causal", lambda m, s: slot_evaluate(m, s, SlotConfig(), mask="all")),
        ("causal-slot adamw per-window", "causal-slot", "score-first",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig())),
        ("causal-slot adamw 16 steps lr 0.008 per-window", "causal-slot", "score-first",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig(adamw=AdamWDeltaConfig(steps=16, lr=0.008)))),
        ("causal-slot adamw shared (#1306)", "causal-slot", "not-causal",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig(shared=True))),
        ("causal-slot lbfgs per-window", "causal-slot", "score-first",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig(optimizer="lbfgs"))),
        ("causal-slot lbfgs per-window l2=0.01", "causal-slot", "score-first",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig(optimizer="lbfgs", lbfgs=LBFGSConfig(l2=0.01)))),
        ("causal-slot lbfgs shared (#1350)", "causal-slot", "not-causal",
         lambda m, s: causal_slot_evaluate(m, s, CausalSlotConfig(optimizer="lbfgs", shared=True))),
        ("score-first-ttt (#1413)", "score-first-ttt", "score-first",
         lambda m, s: score_first_ttt(m, s, TTTConfig(chunk_tokens=16 * seq))),
        ("prequant-ttt val (#1306/#1423)", "prequant-ttt", "trains-on-val", prequant("val")),
        ("prequant-ttt train slice", "prequant-ttt", "fixed-predictor", prequant("train")),
    ]


def main(argv=None) -> int:
    """Train (or reuse) the demo model, score it with every adapter, print and write the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--max-tokens", type=int, default=16385)
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/golf-bench-eval-adapters"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="names (substrings) of the adapters to run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_adapters.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    trained = train_demo_model(args.run_dir, args.iterations, args.max_tokens)
    train_wall = time.time() - t0
    recipe = load_recipe(args.run_dir / "resolved.toml")
    ctx = make_context(recipe, None, echo=False)
    base = Run(ctx).load_artifact(args.run_dir / "artifact.bin")
    base.eval()

    rows = []
    nonover = make_session(ctx, None)
    t = time.time()
    res = score_fixed(copy.deepcopy(base), nonover)
    rows.append({"adapter": "non-overlapping", "family": "core", "legality": "fixed-predictor", "val_bpb": res.val_bpb,
                 "val_loss": res.val_loss, "seconds": time.time() - t, "coverage_ok": res.coverage_ok})
    for name, family, legality, fn in adapters(ctx, args.run_dir):
        if args.only and not any(o in name for o in args.only):
            continue
        model = copy.deepcopy(base)
        session = make_session(ctx, STRIDE)
        t = time.time()
        fn(model, session)
        secs = time.time() - t
        res = session.result()
        rows.append({"adapter": name, "family": family, "legality": legality, "val_bpb": res.val_bpb,
                     "val_loss": res.val_loss, "seconds": secs, "coverage_ok": res.coverage_ok})
        print(f"  {name}: {res.val_bpb:.5f} ({secs:.1f} s)", flush=True)
    ref = next((r["val_bpb"] for r in rows if r["adapter"] == "sliding"), None)
    for r in rows:
        r["delta_vs_sliding"] = None if ref is None else r["val_bpb"] - ref

    out = {
        "model": {"recipe": "recipes/baseline.toml --tiny", "iterations": args.iterations, "steps": trained.get("steps"),
                  "params": trained.get("params"), "train_seconds": trained.get("train_seconds"),
                  "artifact_val_bpb_sliding": trained.get("val_bpb"), "pre_quant_val_bpb": trained.get("pre_quant_val_bpb")},
        "eval": {"val_tokens": args.max_tokens, "seq_len": recipe.eval.seq_len, "stride": STRIDE,
                 "windows_per_batch": nonover.batch_seqs},
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads},
        "train_wall_seconds": train_wall,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nmodel: {out['model']['recipe']}, {out['model']['steps']} steps, {out['model']['params']} params; "
          f"eval: {args.max_tokens} val tokens, seq {recipe.eval.seq_len}, stride {STRIDE}; {args.threads} thread(s)")
    print(f"{'adapter':48s} {'legality':16s} {'val_bpb':>9s} {'vs sliding':>11s} {'seconds':>8s}")
    for r in rows:
        d = r["delta_vs_sliding"]
        print(f"{r['adapter']:48s} {r['legality']:16s} {r['val_bpb']:9.5f} {'' if d is None else f'{d:+.5f}':>11s} {r['seconds']:8.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
