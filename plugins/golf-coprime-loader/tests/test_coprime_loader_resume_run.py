"""Run level: a training run killed after a checkpoint and resumed sees the same batches as an
uninterrupted one (the core loop's checkpoints carry the loader's state_dict)."""
from __future__ import annotations

import pytest

from golf_core.train.testing import assert_loader_resumes, synthetic_shards
from golf_coprime_loader import CoprimeLoader
from golf_coprime_loader import plugin


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_shards(tmp_path_factory.mktemp("shards"), 64, train_tokens=48_000, num_train_shards=12)


def test_resumed_run_reads_the_same_batches(data, tmp_path, monkeypatch):
    assert_loader_resumes(CoprimeLoader, "coprime-loader", plugin, data, tmp_path, monkeypatch)
