"""bench/gpu_check.sh under --tiny on CPU: every step runs, and the one JSON it writes holds the
device, torch, date, golf's windows, the reference comparison, the eval rows and the kernel rows
(so the GPU run cannot fail on a typo); bad arguments stop it before any compute."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_bench_gpu import FAKE_REFERENCE

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_check.sh"


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # the whole script at --tiny: five subprocesses, ~45 s of CPU on an idle machine
def test_gpu_check_tiny_writes_one_json(tmp_path, demo_data):
    fake = tmp_path / "train_gpt.py"
    fake.write_text(FAKE_REFERENCE)
    out = tmp_path / "gpu_check.json"
    proc = _run("--tiny", "--steps", "2", "--warmup", "1", "--reference", str(fake), "--out", str(out))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(out.read_text())
    steps = res["steps"]
    assert list(steps) == ["reference", "golf_train", "eval", "kernels", "gpu_tests"]
    assert all(s["rc"] == 0 for s in steps.values()), {k: s["log_tail"] for k, s in steps.items() if s["rc"]}
    assert res["summary"]["all_steps_ok"] and res["tiny"] and res["reference_script"] == str(fake)
    env = res["env"]
    assert env["device"]["type"] == "cpu" and env["torch"] and env["date"]
    windows = res["summary"]["windows"]
    assert [w["name"] for w in windows] == ["loop_off", "loop_on"]
    assert all(w["tokens_per_s"] > 0 and w["flops_per_token"] < w["flops_per_token_full_attention"] for w in windows)
    assert res["summary"]["compiled_in_clock"] == 0
    cmp = res["summary"]["comparison"]
    # the fake reference logs train_loss = 6 - 0.01 * step; golf logs the same steps
    assert cmp["loss_steps"][-1] == 4 and all(d["reference"] == 6 - 0.01 * d["step"] for d in cmp["loss_diff"])
    assert set(cmp["tokens_per_s_ratio"]) == {"loop_off", "loop_on", "overall"}
    assert res["reference_log"] and "peak memory allocated" in res["reference_log"]
    modes = [r["mode"] for r in steps["eval"]["result"]["rows"]]
    assert modes[:2] == ["non-overlapping", "sliding"]
    kernels = res["summary"]["kernels"]
    assert [k["kernel"] for k in kernels] == ["softcap_ce", "sq_relu_mlp"]
    assert all(not k["used"] and "CUDA only" in k["reason"] and k["reference_ms"] > 0 for k in kernels)


def test_gpu_check_refuses_bad_arguments_before_compute(tmp_path):
    proc = _run("--stepz", "3", timeout=60)
    assert proc.returncode == 2 and "unknown argument --stepz" in proc.stderr
    proc = _run("--reference", str(tmp_path / "missing.py"), timeout=60)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    tracked = REPO / "bench" / "_common.py"  # inside the repository and not git-ignored
    proc = _run("--reference", str(tracked), timeout=60)
    assert proc.returncode == 2 and "not git-ignored" in proc.stderr
    proc = _run("--steps", "ten", timeout=60)
    assert proc.returncode == 2 and "whole numbers" in proc.stderr
