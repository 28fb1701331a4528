"""Shared fixtures: an isolated data cache, in-process plugin registries, the demo dataset."""
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


@pytest.fixture
def fresh_registry():
    """An empty plugin registry installed as the process-wide one; restored afterwards."""
    from golf_core import plugins

    old = plugins._REGISTRY
    reg = plugins.PluginRegistry()
    plugins.set_registry(reg)
    try:
        yield reg
    finally:
        plugins.set_registry(old)


@pytest.fixture(scope="session")
def demo_data():
    """The vocab-1024 demo dataset, built once per test session (DataPaths)."""
    from golf_core.config import DataSection
    from golf_core.data.paths import resolve_data

    return resolve_data(DataSection(source="demo", vocab_size=1024), build_missing=True)
