"""Issue 16 (6): torchrun's own options for multi-node, rank 0 chooses the run directory,
errors printed once with exit code 2 (two gloo processes through the c10d rendezvous)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from golf_core.errors import GolfError
from golf_core.launch import torchrun_args, worker_argv

REPO = Path(__file__).resolve().parent.parent


def test_torchrun_options():
    assert torchrun_args(2) == ["--standalone", "--nproc_per_node=2"]
    assert torchrun_args(8, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29400", rdzv_id="job7") == [
        "--nnodes=2", "--nproc_per_node=8", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.1:29400",
        "--rdzv-id=job7", "--node-rank=1"]
    with pytest.raises(GolfError, match="^--nnodes 2 needs --rdzv-endpoint HOST:PORT"):
        torchrun_args(8, nnodes=2)
    with pytest.raises(GolfError, match=r"^--node-rank 2 is outside 0..1"):
        torchrun_args(8, nnodes=2, node_rank=2, rdzv_endpoint="h:1")
    with pytest.raises(GolfError, match="is not HOST:PORT"):
        torchrun_args(8, rdzv_endpoint="nohost")


def test_worker_argv_drops_the_launcher_options():
    argv = ["run", "demo", "--nproc", "2", "--nnodes=1", "--rdzv-endpoint", "h:1", "--rdzv-id=x", "--node-rank", "0",
            "--out", "o"]
    assert worker_argv(argv) == ["run", "demo", "--out", "o"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_through_the_rendezvous_report_an_error_once(demo_data, tmp_path):
    """Both ranks hit the same bad shard: one line, exit code 2, no torchrun traceback, no run dir."""
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(demo_data.dataset_dir, ds)
    bad = sorted(ds.glob("fineweb_train_*.bin"))[0]
    bad.write_bytes(bad.read_bytes()[:-4])
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "golf_core.cli", "run", "demo", "--tiny", "--set", f"data.dataset_dir='{ds}'",
           "--set", f"data.tokenizer_path='{demo_data.tokenizer_path}'", "--out", str(out), "--nproc", "2",
           "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "golf-test"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert p.returncode == 2, p.stderr[-3000:]
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("golf: error:")]
    assert errors == [f"golf: error: {bad}: truncated shard: header says {(bad.stat().st_size - 1024 + 4) // 2} tokens "
                      f"({bad.stat().st_size + 4} bytes) but the file has {bad.stat().st_size} bytes"]
    assert "Traceback" not in p.stderr and "ChildFailedError" not in p.stderr
    assert not out.exists()


WORKER = """
import sys, time
from golf_core.cli import _rank0_decides
from golf_core.rundir import default_run_dir
from golf_core.train import distributed as D
env = D.init_distributed("cpu")
# each rank's own clock would give another folder; the run uses rank 0's
mine = default_run_dir("demo", now=1e9 + 3600 * env.rank)
agreed = _rank0_decides(lambda: mine)
open(sys.argv[1] + f"/rank{env.rank}.txt", "w").write(f"{mine} {agreed}")
D.destroy_distributed()
"""


def test_rank0_chooses_the_run_directory(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--rdzv-id=agree", str(script), str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr[-3000:]
    mine0, agreed0 = (tmp_path / "rank0.txt").read_text().split()
    mine1, agreed1 = (tmp_path / "rank1.txt").read_text().split()
    assert mine0 != mine1 and agreed0 == agreed1 == mine0
