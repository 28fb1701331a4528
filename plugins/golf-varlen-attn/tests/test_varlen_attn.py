"""varlen-attn: #1530's packing loader against an independent walk, exact resume, the document
mask reaching training (cu_seqlens handed to the compiled forward) and evaluation, the contract."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from golf_core.api import DataError, cu_seqlens_for
from golf_core.data.shards import write_shard
from golf_core.model import GPT
from golf_core.testkit import plugin_problems, tiny_run_problems
from golf_core.train.testing import (assert_loader_resumes, build_model, make_train_context, synthetic_shards,
                                     tiny_recipe)
from golf_varlen_attn import DocumentPackingLoader, plugin

BOS = 1


def _docs_stream(rng, n_tokens, lead):
    """``lead`` non-BOS tokens, then documents [BOS, ...] of random lengths; token = 2 + position."""
    out = [2 + i for i in range(lead)]
    while len(out) < n_tokens:
        out.append(BOS)
        out.extend(2 + len(out) + j for j in range(rng.randint(0, 12)))
    return np.array(out[:n_tokens]) % 60000


@pytest.fixture
def shards(tmp_path):
    rng = random.Random(0)
    sizes = [rng.randint(50, 400) for _ in range(5)] + [30]  # the last one is too small for a span
    files = [write_shard(tmp_path / f"fineweb_train_{i:06d}.bin", _docs_stream(rng, n, rng.randint(0, 5)))
             for i, n in enumerate(sizes)]
    return files


def reference_rows(files, rank, world, local, nbatches, bos=BOS):
    """Walk the shards as #1530's README/code describe it, one batch at a time."""
    shards = [np.fromfile(f, dtype="<u2", offset=1024).astype(np.int64) for f in sorted(files, key=str)]
    span, out = local + 1, []
    k = 0
    cur = int(np.flatnonzero(shards[0] == bos)[0]) if (shards[0] == bos).any() else 0
    for _ in range(nbatches):
        while cur + span * world > len(shards[k]):
            k = (k + 1) % len(shards)
            cur = int(np.flatnonzero(shards[k] == bos)[0]) if (shards[k] == bos).any() else 0
        s = cur + rank * span
        out.append((shards[k][s: s + span - 1], shards[k][s + 1: s + span]))
        cur += span * world
    return out


@pytest.mark.parametrize("world", [1, 2, 3])
def test_batches_equal_an_independent_walk(shards, world):
    local = 24
    for rank in range(world):
        loader = DocumentPackingLoader(shards, rank, world, bos_id=BOS)
        for i, (rx, ry) in enumerate(reference_rows(shards, rank, world, local, 40)):
            x, y = loader.next_batch(local, 8)
            assert x.shape == (1, local) and x.dtype == torch.int64
            assert x[0].tolist() == rx.tolist() and y[0].tolist() == ry.tolist(), (rank, i)


def test_each_shard_starts_at_its_first_document(shards):
    loader = DocumentPackingLoader(shards, 0, 1)
    x, _ = loader.next_batch(16, 8)
    assert int(x[0, 0]) == BOS


def test_state_dict_resumes_exactly(shards):
    a = DocumentPackingLoader(shards, 1, 2)
    for _ in range(7):
        a.next_batch(20, 4)
    b = DocumentPackingLoader(shards, 1, 2)
    b.load_state_dict(a.state_dict())
    for _ in range(15):
        assert torch.equal(a.next_batch(20, 4)[0], b.next_batch(20, 4)[0])


def test_bad_input_is_one_clear_error(shards, tmp_path):
    with pytest.raises(DataError, match="no training shards"):
        DocumentPackingLoader([], 0, 1)
    with pytest.raises(DataError, match="rank 2 outside world size 2"):
        DocumentPackingLoader(shards, 2, 2)
    with pytest.raises(DataError, match="holds a global span of 1001 tokens"):
        DocumentPackingLoader(shards, 0, 1).next_batch(1000, 8)
    other = DocumentPackingLoader(shards[:2], 0, 1)
    with pytest.raises(DataError, match="different list of training shards"):
        other.load_state_dict(DocumentPackingLoader(shards, 0, 1).state_dict())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_shards(tmp_path_factory.mktemp("shards"), 64, train_tokens=48_000, num_train_shards=4)


def test_resumed_run_reads_the_same_batches(data, tmp_path, monkeypatch):
    assert_loader_resumes(DocumentPackingLoader, "varlen-attn", plugin, data, tmp_path, monkeypatch)


def test_training_hands_the_forward_the_batch_documents(data, monkeypatch):
    """Every micro-step's forward gets cu_seqlens = the documents of its packed row (cut every
    train_seq_len), computed by the loop; the model holds the mask the recipe asked for."""
    from golf_core.train.loop import train

    seen = []
    orig = GPT.forward

    def spy(self, x, y, cu_seqlens=None):
        seen.append((x.clone(), None if cu_seqlens is None else cu_seqlens.clone()))
        return orig(self, x, y, cu_seqlens)

    monkeypatch.setattr(GPT, "forward", spy)
    recipe = tiny_recipe(iterations=2, train_batch_tokens=512, train_seq_len=32)
    ctx = make_train_context(recipe, [("varlen-attn", plugin)], data=data)
    model = build_model(ctx, seed=0)
    assert model.document_mask.bos_id == BOS and model.document_mask.max_len == 32
    train(model, ctx)
    assert seen
    for x, cu in seen:
        assert x.shape == (1, 64) and cu is not None  # 512 tokens over 8 micro-steps
        assert torch.equal(cu, cu_seqlens_for(x, BOS, 32))
        assert int((cu[1:] - cu[:-1]).max()) <= 32


def test_keeps_the_golf_plugin_contract():
    assert plugin_problems("varlen-attn") == []


def test_runs_alone_in_a_tiny_recipe(tmp_path):
    assert tiny_run_problems("varlen-attn", tmp_path) == []


def test_eval_false_scores_over_whole_windows(data):
    """The decoded model keeps the mask by default; ``eval = false`` removes it at artifact load."""
    for keep in (True, False):
        recipe = tiny_recipe().model_copy(deep=True)
        recipe.options = {"varlen-attn": {"eval": keep, "segment_len": 16}}
        ctx = make_train_context(recipe, [("varlen-attn", plugin)], data=data)
        model = build_model(ctx, seed=0)
        assert model.document_mask.max_len == 16
        model = ctx.plugins.transform("golf_on_artifact_load", "model", model, ctx=ctx)
        assert (model.document_mask is not None) is keep
