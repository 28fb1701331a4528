"""Shared set-up: an isolated data cache; the registry and demo-data fixtures of the test kit
(``golf_core.testkit``) under their historical names."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Every test session builds its data into its own cache, so a run never depends on (or
# pollutes) ~/.cache/golf. Subprocesses inherit it.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="golf-test-data-"))
os.environ.setdefault("GOLF_DATA_DIR", str(_DATA_DIR))
os.environ.pop("GOLF_TRACE_PLUGINS", None)

# Under pytest-xdist (`-n 2` on CI's 2 cores) each worker computes on one thread: tiny models
# are dominated by per-op overhead, and two workers x two threads each would oversubscribe
# the cores. Subprocesses started by tests inherit the setting.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # The test kit's fixtures come from golf-core's pytest11 entry point; an environment
    # installed before the entry point existed gets them here (rerun scripts/setup.sh).
    if not config.pluginmanager.has_plugin("golf"):
        config.pluginmanager.import_plugin("golf_core.testkit.pytest_plugin")


@pytest.fixture
def fresh_registry(golf_registry):
    """An empty plugin registry installed as the process-wide one (the test kit's)."""
    return golf_registry


@pytest.fixture(scope="session")
def demo_data(golf_demo_data):
    """The vocab-1024 demo dataset, built once per test session (DataPaths)."""
    return golf_demo_data


@pytest.fixture(scope="session")
def caseops_demo_data():
    """The vocab-1024 CaseOps demo dataset (with its byte sidecar), built once per session (DataPaths)."""
    from golf_core.config import DataSection
    from golf_core.data.paths import resolve_data

    return resolve_data(DataSection(source="demo", vocab_size=1024, variant="caseops"), build_missing=True)


@pytest.fixture
def triton_interpreted():
    """Run a snippet of Triton kernel checks on CPU through Triton's interpreter: a fresh Python
    with ``TRITON_INTERPRET=1`` (Triton reads it at import), which must print ``ok`` last.
    Skips where Triton is not installed."""
    try:
        import triton  # noqa: F401
    except Exception:  # ImportError, or a broken install raising at import time
        pytest.skip("triton is not installed (pip install triton to run its CPU interpreter)")
    import subprocess
    import sys

    def run(code: str) -> None:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=300)
        assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]

    return run
