"""``golf run --nproc N [--nnodes M --node-rank R --rdzv-endpoint HOST:PORT --rdzv-id ID]``:
start the processes through torchrun's own launcher (``torch.distributed.run``).

One node without an endpoint is torchrun's ``--standalone`` (a local rendezvous on a free port);
otherwise the c10d rendezvous at ``--rdzv-endpoint`` joins ``--nnodes`` nodes, each started with
the same command and its own ``--node-rank``. The worker processes are ``golf run`` itself, with
the launcher's options removed.

Errors are reported once: each worker that fails with a golf error writes its one line into a
folder the launcher gives it (``GOLF_ERROR_DIR``) instead of printing it, torchrun's own traceback
and log lines are silenced, and the launcher prints each distinct line once and exits with 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from .errors import GolfError

#: Environment variable naming the folder where workers leave their error line.
ERROR_DIR_ENV = "GOLF_ERROR_DIR"

#: ``golf run`` options the launcher consumes: name -> takes a value.
LAUNCH_OPTIONS = {"--nproc": True, "--nnodes": True, "--node-rank": True, "--rdzv-endpoint": True, "--rdzv-id": True}


def add_launch_args(p: argparse.ArgumentParser) -> None:
    """The launcher's options on the ``golf run`` parser."""
    p.add_argument("--nproc", type=int, default=0, metavar="N", help="processes per node, through torchrun")
    p.add_argument("--nnodes", type=int, default=1, metavar="M", help="number of nodes (with --rdzv-endpoint)")
    p.add_argument("--node-rank", type=int, default=None, metavar="R",
                   help="this node's rank, 0..M-1 (default: assigned by the rendezvous)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="c10d rendezvous endpoint every node reaches (default for one node: a local one)")
    p.add_argument("--rdzv-id", default="golf", metavar="ID", help="rendezvous (job) id, the same on every node")


def in_worker() -> bool:
    """True inside a process torchrun started."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def wants_launch(args: argparse.Namespace) -> bool:
    """True when ``golf run`` must start torchrun (more than one process) and is not a worker."""
    return not in_worker() and (max(args.nproc, 1) * max(args.nnodes, 1) > 1 or bool(args.rdzv_endpoint))


def torchrun_args(nproc: int, nnodes: int = 1, node_rank: Optional[int] = None, rdzv_endpoint: Optional[str] = None,
                  rdzv_id: str = "golf") -> list[str]:
    """torchrun's options for the launcher's; GolfError for an impossible combination."""
    nproc = max(int(nproc), 1)
    if nnodes < 1:
        raise GolfError(f"--nnodes must be at least 1, not {nnodes}")
    if node_rank is not None and not 0 <= node_rank < nnodes:
        raise GolfError(f"--node-rank {node_rank} is outside 0..{nnodes - 1} (--nnodes {nnodes})")
    if nnodes > 1 and not rdzv_endpoint:
        raise GolfError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, reachable from every node")
    if rdzv_endpoint is None:
        return ["--standalone", f"--nproc_per_node={nproc}"]
    host, _, port = rdzv_endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise GolfError(f"--rdzv-endpoint {rdzv_endpoint!r} is not HOST:PORT")
    out = [f"--nnodes={nnodes}", f"--nproc_per_node={nproc}", "--rdzv-backend=c10d",
           f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    if node_rank is not None:
        out.append(f"--node-rank={node_rank}")
    return out


def worker_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without the launcher's options (both ``--opt V`` and ``--opt=V`` forms)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in LAUNCH_OPTIONS:
            skip = "=" not in a and LAUNCH_OPTIONS[name]
            continue
        out.append(a)
    return out


def report_worker_error(message: str) -> bool:
    """In a worker started by :func:`launch`: leave ``message`` for the launcher and return True
    (the caller prints nothing); elsewhere False."""
    folder = os.environ.get(ERROR_DIR_ENV)
    if not folder or not in_worker():
        return False
    rank = os.environ.get("RANK", "0")
    try:
        Path(folder, f"rank{rank}.txt").write_text(message + "\n", encoding="utf-8")
    except OSError:
        return False
    return True


def _worker_errors(folder: Path) -> list[str]:
    lines: list[str] = []
    for f in sorted(folder.glob("rank*.txt"), key=lambda p: int(p.stem[4:]) if p.stem[4:].isdigit() else 0):
        line = f.read_text(encoding="utf-8").strip()
        if line and line not in lines:
            lines.append(line)
    return lines


def launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run ``golf <argv>`` under torchrun with the launcher's options of ``args``; return the exit
    code (2 when a worker reported a golf error, printed once)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    opts = torchrun_args(args.nproc, args.nnodes, args.node_rank, args.rdzv_endpoint, args.rdzv_id)
    cmd = [*opts, "-m", "golf_core.cli", *worker_argv(argv)]
    print("launching: torchrun " + " ".join(cmd), file=sys.stderr)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="golf-errors-") as folder:
        old = os.environ.get(ERROR_DIR_ENV)
        os.environ[ERROR_DIR_ENV] = folder
        try:
            run(parse_args(cmd))
            rc = 0
        except ChildFailedError as e:
            codes = [f.exitcode for f in e.failures.values()]
            rc = next((c for c in codes if c and c > 0), 1)
        finally:
            if old is None:
                os.environ.pop(ERROR_DIR_ENV, None)
            else:
                os.environ[ERROR_DIR_ENV] = old
        errors = _worker_errors(Path(folder))
    for line in errors:
        print(f"golf: error: {line}", file=sys.stderr)
    return 2 if errors else rc
