"""A tiny model trained once per session on a learnable synthetic token stream."""
from __future__ import annotations

import pytest
import torch


def fresh_model(ctx):
    """The core GPT of ``ctx.recipe`` on CPU in float32 (seeded, so every call builds the same)."""
    from golf_core.model import build_model, prepare_for_device

    torch.manual_seed(0)
    model = build_model(ctx.recipe.model, ctx.recipe.data.vocab_size)
    prepare_for_device(model, "cpu", dtype="fp32")
    return model


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(ctx_factory, model state dict, data): a 2-layer width-64 GPT trained 80 steps."""
    from golf_core.train.loop import train
    from golf_core.train.testing import make_train_context, synthetic_shards, tiny_recipe

    data = synthetic_shards(tmp_path_factory.mktemp("gptq_data"), vocab_size=128, train_tokens=200_000,
                            val_tokens=8_193)
    recipe = tiny_recipe(vocab_size=128, model={"model_dim": 64, "num_heads": 4, "num_kv_heads": 2},
                         iterations=80, train_batch_tokens=4096, train_seq_len=64, log_every=0)
    recipe = recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"seq_len": 64})})
    ctx = make_train_context(recipe, data=data)
    torch.manual_seed(0)
    model = fresh_model(ctx)
    train(model, ctx)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return recipe, state, data


@pytest.fixture(scope="session")
def build():
    """``build(ctx) -> model``: the fresh core GPT (see :func:`fresh_model`)."""
    return fresh_model
