"""bench/gpu_train.py and bench/gpu_eval.py on CPU (``--tiny``): the JSON they write, the
reference-log parsing and the golf/reference comparison against hand-computed values."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A stand-in for a record's train_gpt.py: checks the layout it is given and that the bench's
# flash_attn_interface shim (no FA3 here) computes causal GQA attention like a float64 loop, prints record-style
# lines with 100 ms steps before the middle step and 150 ms after (train_loss = 6 - 0.01 * step),
# the peak-memory line, then hangs (the bench must stop it once training is done). No explicit
# flush: the bench has to make the script's stdout unbuffered, as a real record's print()s are.
FAKE_REFERENCE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    V = int(os.environ["VOCAB_SIZE"]); M = int(os.environ["ITERATIONS"]); K = int(os.environ["TRAIN_LOG_EVERY"])
    d = Path(os.environ["DATA_DIR"])
    if not sorted((d / "datasets" / f"fineweb10B_sp{V}").glob("fineweb_train_*.bin")):
        sys.exit("no training shards")
    if not (d / "tokenizers" / f"fineweb_{V}_bpe.model").is_file():
        sys.exit("no tokenizer")
    import math, torch
    from flash_attn_interface import flash_attn_func
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, h, 8, generator=g, dtype=torch.float64) for h in (4, 2, 2))
    y = flash_attn_func(q, k, v, causal=True)
    for b in range(2):
        for h in range(4):
            for t in range(5):
                s = [sum(q[b, t, h, i] * k[b, u, h // 2, i] for i in range(8)) / math.sqrt(8) for u in range(t + 1)]
                w = [math.exp(x - max(s)) for x in s]
                ref = [sum(w[u] * v[b, u, h // 2, i] for u in range(t + 1)) / sum(w) for i in range(8)]
                if max(abs(float(y[b, t, h, i]) - float(ref[i])) for i in range(8)) > 1e-9:
                    sys.exit("shim attention differs from the float64 loop")
    print(f"model_params:123 seed:{os.environ['SEED']}")
    t = 0.0
    for n in range(1, M + 1):
        t += 100.0 if n <= M // 2 else 150.0
        if n % K == 0:
            print(f"step:{n}/{M} train_loss:{6.0 - 0.01 * n:.4f} train_time:{t:.0f}ms step_avg:{t / n:.2f}ms")
    print("peak memory allocated: 1234 MiB reserved: 2000 MiB")
    time.sleep(120)
""")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_parse_record_log_lines():
    gt = _load("gpu_train")
    B = 786432
    base = gt.parse_train_line("step:200/20000 train_loss:3.1416 train_time:8708ms step_avg:43.54ms", B)
    assert base == {"step": 200, "iterations": 20000, "train_loss": 3.1416, "elapsed_s": 8.708, "source": "train_time"}
    later = gt.parse_train_line("1500/20000 train_loss: 3.0100 train_loss_avg100:3.0500 step_ms_avg100:101.700 "
                                "grad_norm_avg100:0.2500 train_frac:0.2600 recurrence_alpha:0.0000 "
                                "train_time: 2.5m tok/s: 7727000", B)
    assert later["step"] == 1500 and later["train_loss"] == 3.01 and later["source"] == "tok/s"
    assert later["elapsed_s"] == pytest.approx(1500 * B / 7727000, rel=1e-12)
    avg = gt.parse_train_line("step:10/20 train_loss:5.5 step_avg:120.5ms", B)
    assert avg["elapsed_s"] == pytest.approx(1.205)
    assert gt.parse_train_line("4000/20000 val_loss: 2.9 val_bpb: 1.13 train_frac:0.8", B) is None
    assert gt.parse_train_line("warmup_step: 3/20", B) is None
    log = gt.parse_reference_log(["step:1/2 train_loss:6 train_time:5ms", "step:1/2 train_loss:7 train_time:6ms",
                                  "peak memory allocated: 35372 MiB reserved: 36000 MiB"], B)
    assert [s["train_loss"] for s in log["steps"]] == [7.0] and log["peak_memory_mib"] == 35372.0


def test_compare_ratios_losses_and_seed_spread(tmp_path):
    gt = _load("gpu_train")
    golf = {"windows": [{"name": "loop_off", "tokens_per_s": 300.0}, {"name": "loop_on", "tokens_per_s": 200.0}],
            "overall": {"tokens_per_s": 240.0}, "losses": [[1, 5.0], [2, 4.0], [3, 3.0]]}
    ref = {"windows": [{"name": "loop_off", "tokens_per_s": 250.0}, {"name": "loop_on", "tokens_per_s": 250.0}],
           "overall": {"tokens_per_s": 250.0}, "losses": [[2, 4.1], [3, 2.95], [4, 2.0]]}
    other_seed = {"losses": [[1, 5.0], [2, 4.3], [3, 3.2]]}
    c = gt.compare(golf, ref, [other_seed])
    assert c["tokens_per_s_ratio"] == {"loop_off": 1.2, "loop_on": 0.8, "overall": 0.96}
    assert c["loss_steps"] == [2, 3]
    assert [round(d["diff"], 12) for d in c["loss_diff"]] == [-0.1, 0.05]
    assert c["max_abs_loss_diff"] == pytest.approx(0.1) and c["mean_abs_loss_diff"] == pytest.approx(0.075)
    assert c["mean_seed_spread"] == pytest.approx((0.3 + 0.2) / 2)
    assert c["within_seed_spread"] is True
    lines = ["loop_warmup_step: 1/1", "1/4 train_loss: 6.0 tok/s: 40960", "2/4 train_loss: 5.9 tok/s: 40960",
             "4/4 train_loss: 5.8 tok/s: 32768", "peak memory allocated: 99 MiB reserved: 100 MiB"]
    m = gt.measure_reference(lines, {"source": "log"}, 4096, None, {},
                             [("loop_off", False, 0, 2), ("loop_on", True, 2, 4)])
    # cumulative seconds 0.1 / 0.2 / 0.5 -> 2 steps in 0.2 s, then 2 steps in 0.3 s
    assert [w["ms_per_step"] for w in m["windows"]] == pytest.approx([100.0, 150.0])
    assert m["peak_memory_mib"] == 99.0 and m["losses"] == [[1, 6.0], [2, 5.9], [4, 5.8]]
    saved = tmp_path / "ref.log"
    saved.write_text('# golf bench/gpu_train.py reference run: {"path": "/x/train_gpt.py", "env": {"SEED": "1"}, '
                     '"fa3": "as installed", "ok": true}\n' + "\n".join(lines) + "\n")
    got, meta = gt.read_reference_log(saved)
    assert meta["source"] == "log" and meta["fa3"] == "as installed" and meta["env"] == {"SEED": "1"}
    assert gt.parse_reference_log(got, 4096)["steps"][-1]["step"] == 4
    assert gt.default_log_every(50) == 10 and gt.default_log_every(2) == 1 and gt.default_log_every(7) == 1


@pytest.mark.slow
def test_gpu_train_tiny_with_fake_reference(tmp_path, demo_data):
    fake = tmp_path / "train_gpt.py"
    fake.write_text(FAKE_REFERENCE)
    out = tmp_path / "train.json"
    _run(["bench/gpu_train.py", "--tiny", "--steps", "2", "--warmup", "1", "--reference", str(fake), "--out", str(out)])
    r = json.loads(out.read_text())
    env = r["env"]
    assert env["device"]["type"] == "cpu" and env["torch"] and env["date"].endswith("Z") and "cuda" in env
    assert r["attention_backend"] == "sdpa" and r["golf"]["attention_backend"] == "sdpa"
    g = r["golf"]
    assert g["grad_accum"] == 8 and g["step_tokens"] == 4096 and g["steps"] == 4 and g["loop_switch_step"] == 2
    assert [w["name"] for w in g["windows"]] == ["loop_off", "loop_on"]
    for w in g["windows"]:
        assert w["steps"] == 2 and w["tokens_per_s"] > 0 and w["mfu"] is None and w["memory_kind"] == "ru_maxrss"
        assert w["tokens_per_s"] == pytest.approx(2 * 4096 / w["seconds"])
        assert w["peak_memory_mib"] > 0 and w["warmup_s"] > 0
    off, on = g["windows"]
    assert on["flops_per_token"] > off["flops_per_token"]           # looped layers run 3 times
    assert [s for s, _ in g["losses"]] == [1, 2, 3, 4]

    ref = r["reference"]
    assert ref["ok"] and ref["stopped_after_training"] and ref["wall_s"] < 60
    assert ref["env"]["ITERATIONS"] == "4" and ref["env"]["MAX_WALLCLOCK_SECONDS"] == "0"
    assert ref["env"]["TRAIN_LOG_EVERY"] == "1" and ref["env"]["WARMUP_STEPS"] == "1"
    assert ref["peak_memory_mib"] == 1234.0 and ref["fa3"].startswith("shim")
    assert r["comparison"]["attention"] == {"golf": "sdpa", "reference": "sdpa", "same": True}
    assert out.with_suffix(".reference.log").read_text().count("train_loss:") == 4
    assert [w["tokens_per_s"] for w in ref["windows"]] == pytest.approx([4096 / 0.100, 4096 / 0.150])
    assert ref["overall"]["tokens_per_s"] == pytest.approx(4 * 4096 / 0.5)

    c = r["comparison"]
    assert c["tokens_per_s_ratio"]["loop_off"] == pytest.approx(off["tokens_per_s"] / 40960.0)
    assert c["tokens_per_s_ratio"]["loop_on"] == pytest.approx(on["tokens_per_s"] * 0.150 / 4096)
    assert c["loss_steps"] == [1, 2, 3, 4]
    for d, (step, loss) in zip(c["loss_diff"], g["losses"]):
        assert d["diff"] == pytest.approx(loss - (6.0 - 0.01 * step), abs=1e-4)
    assert r["targets"]["mfu_loop_off_met"] is None


def test_gpu_eval_tiny(tmp_path, demo_data):
    out = tmp_path / "eval.json"
    _run(["bench/gpu_eval.py", "--tiny", "--warmup-tokens", "0", "--tokens", "512", "--sliding-tokens", "256",
          "--adapter-tokens", "512",
          "--set", "options.score-first-ttt.chunk_tokens=256", "--set", "options.slot.steps=2", "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["env"]["device"]["type"] == "cpu" and r["env"]["torch"] and r["env"]["date"]
    assert r["model"]["attention_backend"] == "sdpa" and r["model"]["looping_active"] is True
    rows = {x["mode"]: x for x in r["rows"]}
    assert list(rows) == ["non-overlapping", "sliding", "slot", "causal-slot", "score-first-ttt", "lora-ttt"]
    assert rows["non-overlapping"]["stride"] == 128 and rows["sliding"]["stride"] == 64
    assert rows["non-overlapping"]["targets"] == 512 and rows["sliding"]["targets"] == 256
    for x in rows.values():
        assert x["coverage_ok"] and x["tokens_per_s"] > 0
        assert x["seconds_per_million_tokens"] == pytest.approx(x["seconds"] / x["targets"] * 1e6)
    assert rows["slot"]["options"]["steps"] == 2 and rows["score-first-ttt"]["options"]["chunk_tokens"] == 256
    # sliding windows at stride 64: the first scores 128 targets, then one window per 64
    assert rows["sliding"]["windows"] == 1 + (256 - 128) // 64
    assert rows["score-first-ttt"]["windows"] == 1 + (512 - 128) // 64
