"""Issue 16 (7): the small list, one test each with the line it expects."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from golf_core import TechniqueInfo, hookimpl
from golf_core.cli import main
from golf_core.errors import PluginError, RecipeError
from golf_core.recipe import Recipe, load_recipe, load_recipe_text

REPO = Path(__file__).resolve().parent.parent


def test_checkpoint_every_minus_one_is_a_clear_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "demo", "--checkpoint-every", "-1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert ("golf run: error: argument --checkpoint-every: must be 0 (no checkpoints) or a positive number "
            "of steps, not '-1'") in err
    assert "Traceback" not in err and "pydantic" not in err


def test_options_for_a_plugin_not_in_the_recipe_are_rejected(tmp_path):
    text = 'plugins = ["qk-gain"]\n[options.partial-rope]\nrope_dims = 16\n'
    with pytest.raises(RecipeError, match=r"^r.toml: \[options.partial-rope\] sets options of plugin 'partial-rope', "
                                          r"which is not in plugins = \['qk-gain'\]; add it there or remove the table$"):
        load_recipe_text(text, "r.toml")
    f = tmp_path / "r.toml"
    f.write_text(text)
    with pytest.raises(RecipeError, match=r"^r.toml: \[options.partial-rope\]"):
        load_recipe(f)
    # golf ablate's --set plugins=[...] may switch a plugin off and leave its table unused
    load_recipe("demo", overrides=["plugins=['qk-gain']"])


def _activation_plugin(name):
    class Act(nn.Module):
        def forward(self, x):
            return x

    class Plug:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name=name, summary=f"activation {name}", lineage=["#0"]))

        @hookimpl
        def golf_build_model(self, model, ctx, opts):
            for b in model.blocks:
                b.mlp.activation = Act()
            return model

    return Plug()


def test_two_plugins_on_one_model_seam_are_rejected_naming_both(fresh_registry):
    from golf_core.run import count_params
    from golf_core.plugins import activate

    fresh_registry.add("act-a", _activation_plugin("act-a"))
    fresh_registry.add("act-b", _activation_plugin("act-b"))
    recipe = Recipe(plugins=["act-a", "act-b"])
    with pytest.raises(PluginError, match=r"^plugins 'act-a' and 'act-b' both replace the model seam "
                                          r"block.mlp.activation; the later would silently win: keep one of them$"):
        count_params(recipe, activate(recipe, fresh_registry))
    one = Recipe(plugins=["act-a"])
    assert count_params(one, activate(one, fresh_registry)) > 0


def test_a_missing_extends_target_names_the_extending_file(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('extends = "no-such-parent"\n')
    with pytest.raises(RecipeError, match=f"^{child}: extends 'no-such-parent', which is not found"):
        load_recipe(child)


def test_export_calls_prequant_ttt_pre_quant_adaptation():
    from golf_core.export.runs import RunRecord
    from golf_core.export.submission import val_bpb_method

    result = {"plugins": ["prequant-ttt", "causal-slot"],
              "legality": {"plugins": {"prequant-ttt": "trains-on-val", "causal-slot": "score-first"}}}
    run = RunRecord(run_dir=Path("."), result=result, recipe_toml='[eval]\nseq_len = 2048\nstride = 64\n')
    text = val_bpb_method(run)
    assert text.endswith(", eval-time adaptation: causal-slot, pre-quant adaptation trained on validation data: "
                         "prequant-ttt")


def test_golf_piped_into_head_exits_quietly():
    p = subprocess.run(f"{sys.executable} -m golf_core.cli recipes | head -1", shell=True, capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert p.stdout.count("\n") == 1 and p.stderr == ""


def test_core_commands_start_without_torch():
    code = ("import sys, contextlib, io\nfrom golf_core.cli import main\n"
            "for argv in (['recipes'], ['--help'], ['run', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            "print('torch' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.stdout.strip() == "False", p.stderr


def test_data_build_says_what_it_does(tmp_path):
    from golf_core.data.build import build_dataset

    src = tmp_path / "docs"
    src.mkdir()
    for i in range(30):
        (src / f"d{i}.txt").write_text(f"document {i} " + "some words to learn a tokenizer from " * 40)
    said = []
    build_dataset(tmp_path / "root", 300, [src], name="mini", num_val_docs=3, log=said.append)
    assert said[0] == f"building mini_sp300 in {tmp_path / 'root'}: reading the corpus"
    assert said[1].endswith("training the sp300 tokenizer")
    assert "encoding documents 1-30 of 30" in said


def test_a_resumed_run_logs_its_recipe_and_ships_the_same_code(tmp_path, capsys):
    """Also: --resume DIR falls back past a corrupt latest checkpoint; manifest.json records the data."""
    import hashlib

    out = tmp_path / "run"
    base = ["run", "demo", "--tiny", "--set", "train.iterations=4", "--checkpoint-every", "2", "--quiet"]
    assert main([*base, "--out", str(out)]) == 0
    first = json.loads((out / "result.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    tok = manifest["data"]["tokenizer"]
    assert tok["sha256"] == hashlib.sha256(Path(tok["path"]).read_bytes()).hexdigest()
    assert all(len(s["sha256"]) == 64 for s in manifest["data"]["train_shards"] + manifest["data"]["val_shards"])
    (out / "result.json").unlink()
    (out / "checkpoints" / "step_0000004" / "shared.pt").write_bytes(b"junk")
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert "golf: skipping a corrupt checkpoint: checkpoint file" in capsys.readouterr().err
    second = json.loads((out / "result.json").read_text())
    log = (out / "train.log").read_text().splitlines()
    starts = [ln for ln in log if ln.startswith("golf:")]
    assert len(starts) == 2 and starts[0] == starts[1] and "recipe:None" not in starts[1]
    assert any(ln.startswith(f"resume:{out / 'checkpoints' / 'step_0000002'} step:2") for ln in log)
    assert second["code_bytes"] == first["code_bytes"]
