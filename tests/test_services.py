"""``ctx.services``: each service a plugin asks the run for, with and without a providing plugin,
and the one-line error of a context the driver did not make."""
from __future__ import annotations

import lzma
import zlib

import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.context import RunContext
from golf_core.errors import GolfError
from golf_core.plugins import ActivePlugins
from golf_core.quant.artifact import unpack_artifact
from golf_core.recipe import Recipe
from golf_core.train.testing import make_train_context, synthetic_shards, tiny_recipe

DATA = bytes(range(256)) * 40 + b"golf" * 100


def _ctx(tmp_path, plugins=(), **artifact):
    recipe = tiny_recipe(vocab_size=64)
    if artifact:
        recipe = recipe.model_copy(update={"artifact": recipe.artifact.model_copy(update=artifact)})
    return make_train_context(recipe, list(plugins), data=synthetic_shards(tmp_path / "d", vocab_size=64))


def test_compress_is_the_recipes_compressor_without_a_plugin(tmp_path):
    ctx = _ctx(tmp_path, compressor="zlib", byte_shuffle=False)
    codec, blob = ctx.services.compress(DATA)
    assert zlib.decompress(blob) == DATA  # an independent decoder reads it back
    ctx = _ctx(tmp_path, compressor="lzma", byte_shuffle=True)
    codec2, blob2 = ctx.services.compress(DATA)
    shuffled = lzma.decompress(blob2)
    # BSHF stride 2 (header "BSHF" + stride): the even bytes, then the odd ones
    assert shuffled == b"BSHF\x02" + DATA[0::2] + DATA[1::2] and codec2 != codec


def test_compress_and_loader_come_from_the_active_plugin(tmp_path):
    seen = []

    class Provider:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="provider"))

        @hookimpl
        def golf_compress(self, data, ctx, opts):
            return "reversed", data[::-1]

        @hookimpl
        def golf_make_loader(self, ctx, opts, purpose):
            seen.append(purpose)
            return ("loader", purpose)

    ctx = _ctx(tmp_path, [("provider", Provider())])
    assert ctx.services.compress(b"abc") == ("reversed", b"cba")
    assert ctx.services.make_loader("calibration") == ("loader", "calibration") and seen == ["calibration"]


def test_make_loader_defaults_to_the_sequential_stream(tmp_path):
    ctx = _ctx(tmp_path)
    loader = ctx.services.make_loader("calibration")
    x, y = loader.next_batch(64, 32)
    assert x.shape == (2, 32) and torch.equal(x[0, 1:], y[0, :-1])


def test_pack_artifact_and_overhead(tmp_path):
    ctx = _ctx(tmp_path)
    data = ctx.services.pack_artifact("zlib", b"payload-bytes")
    art = unpack_artifact(data)
    assert art.codec == "zlib" and art.payload == b"payload-bytes"
    assert art.model["vocab_size"] == 64 and art.extra["recipe_sha256"] == ctx.recipe.sha256()
    assert ctx.services.artifact_overhead("zlib") == len(data) - len(b"payload-bytes")


def test_code_bytes_is_the_exported_scripts_size(tmp_path):
    from golf_core.export.shipping import ship_run

    ctx = _ctx(tmp_path)
    n = ctx.services.code_bytes()
    assert n == len(ship_run(ctx).script.encode("utf-8")) and n > 10_000


def test_a_context_without_services_says_so():
    ctx = RunContext(recipe=Recipe(), plugins=ActivePlugins([], {}, {}))
    with pytest.raises(GolfError, match=r"ctx.services.code_bytes: .*golf_core.services.attach"):
        ctx.services.code_bytes()
