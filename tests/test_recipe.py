"""Recipe resolution and validation: extends, --set, --tiny, and one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from golf_core import tomlio
from golf_core.errors import RecipeError
from golf_core.recipe import apply_override, deep_merge, load_recipe


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_defaults_are_the_baseline(tmp_path):
    r = load_recipe(write(tmp_path, "r.toml", "plugins = []\n"))
    assert (r.model.num_layers, r.model.model_dim, r.model.num_heads, r.model.num_kv_heads) == (9, 512, 8, 4)
    assert r.model.mlp_mult == 2.0 and r.model.qk_gain_init == 1.5 and r.model.logit_softcap == 30.0
    assert r.train.train_batch_tokens == 524288 and r.train.train_seq_len == 1024
    assert (r.train.matrix_lr, r.train.scalar_lr, r.train.tied_embed_lr) == (0.04, 0.04, 0.05)
    assert (r.train.muon_momentum, r.train.muon_momentum_warmup_start, r.train.muon_momentum_warmup_steps) == (0.95, 0.85, 500)
    assert r.artifact.cap_bytes == 16_000_000 and r.artifact.compressor == "zlib"


def test_deep_merge_tables_merge_lists_replace():
    base = {"a": {"x": 1, "y": [1, 2]}, "plugins": ["p", "q"]}
    over = {"a": {"y": [3]}, "plugins": ["r"]}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [3]}, "plugins": ["r"]}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "plugins": ["p", "q"]}


def test_extends_chain_and_override(tmp_path):
    write(tmp_path, "base.toml", 'plugins = ["a", "b"]\n[train]\nseed = 1\nmatrix_lr = 0.02\n[options.a]\nx = 1\n')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\nplugins = ["b", "a"]\n[train]\nseed = 2\n[options.a]\ny = 2\n')
    r = load_recipe(child, overrides=["train.seed=7", "options.a.z=[1, 2]", "data.source=demo"])
    assert r.plugins == ["b", "a"]
    assert r.train.seed == 7 and r.train.matrix_lr == 0.02
    assert r.options["a"] == {"x": 1, "y": 2, "z": [1, 2]}


def test_meta_is_not_inherited(tmp_path):
    write(tmp_path, "base.toml", '[meta]\nsource = "PR #1"\nreported_val_bpb = 1.1\n[train]\nseed = 3\n')
    r = load_recipe(write(tmp_path, "child.toml", 'extends = "base.toml"\n[meta]\nnotes = "mine"\n'))
    assert r.meta.reported_val_bpb is None and r.meta.source == "" and r.meta.notes == "mine"
    assert r.train.seed == 3


def test_set_values_are_toml_typed():
    d: dict = {}
    apply_override(d, "train.seed=42")
    apply_override(d, "eval.stride=64")
    apply_override(d, "train.compile=off")
    apply_override(d, 'meta.source="PR #1"')
    apply_override(d, "options.qk-gain.init=5.25")
    assert d == {"train": {"seed": 42, "compile": "off"}, "eval": {"stride": 64}, "meta": {"source": "PR #1"},
                 "options": {"qk-gain": {"init": 5.25}}}


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[train]\nsed = 1\n", "unknown key 'train.sed'; did you mean 'seed'?"),
        ("[trian]\nseed = 1\n", "unknown key 'trian'; did you mean 'train'?"),
        ('[train]\nseed = "many"\n', "train.seed"),
        ("[model]\nmodel_dim = 100\nnum_heads = 8\n", "not divisible"),
        ("plugins = [1]\n", "plugins must be a list of plugin names"),
        ('plugins = ["a", "a"]\n', "listed twice"),
        ("[train\n", "invalid TOML"),
        ("[artifact]\nfit = true\n", "[artifact] fit moved to [options.gptq] fit"),
        ("[artifact]\nfit = 1\n", "[artifact] fit moved to [options.gptq] fit"),
    ],
)
def test_bad_recipes_fail_with_one_line(tmp_path, text, needle):
    p = write(tmp_path, "bad.toml", text)
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert needle in msg and "bad.toml" in msg and "\n" not in msg


def test_extends_cycle_is_detected(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "c.toml"\n')
    write(tmp_path, "c.toml", 'extends = "a.toml"\n')
    with pytest.raises(RecipeError, match=r"cycle in extends: a.toml -> b.toml -> c.toml -> a.toml"):
        load_recipe(tmp_path / "a.toml")


def test_missing_recipe_suggests_shipped(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.toml")


def test_tiny_then_set_wins(tmp_path):
    p = write(tmp_path, "r.toml", "[eval]\nstride = 64\nseq_len = 2048\n[train]\ntrain_seq_len = 2048\n")
    r = load_recipe(p, tiny=True, overrides=["train.iterations=3"])
    assert r.tiny and r.train.iterations == 3 and r.train.train_seq_len == 128
    assert r.eval.stride == 32 and r.eval.seq_len == 128 and r.data.source == "demo"
    assert r.model.model_dim == 64


def test_resolved_toml_round_trips(tmp_path):
    p = write(tmp_path, "r.toml", 'plugins = ["x"]\n[meta]\nsource = "PR #1394"\nreported_val_bpb = 1.08563\n'
                                  '[options.x]\nlayers = [4, 5]\nname = "a \\"q\\""\n[eval]\nstride = 64\n')
    r = load_recipe(p)
    again = tomlio.loads(r.to_toml())
    assert again == r.to_dict()
    assert again["options"]["x"] == {"layers": [4, 5], "name": 'a "q"'}


def test_resolved_toml_from_before_the_fit_move_still_loads(tmp_path):
    """resolved.toml written before ``[artifact] fit`` moved to gptq holds ``fit = false``."""
    r = load_recipe(write(tmp_path, "old.toml", "[artifact]\nfit = false\ncompressor = \"lzma\"\n"))
    assert r.artifact.compressor == "lzma" and "fit" not in r.to_dict()["artifact"]
