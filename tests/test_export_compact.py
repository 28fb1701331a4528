"""The compact script of record recipes (``pr1394 --tiny`` and the eval-adapter recipe
``pr1413 --tiny``, score-first TTT), each on one short run: its code_bytes is the compact
script's size and the artifact gives the model what the code no longer takes; run by an
interpreter without golf, it retrains the run to the same val_bpb and the same artifact.bin,
byte for byte. (The demo's case, with prepare_data.py, is in test_export_e2e.py.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golf_core.export.compact import BROTLI_PREFIX, LZMA_PREFIX, unwrap
from golf_core.export.folder import export_runs
from golf_core.export.isolate import isolated_python, isolated_workdir

REPO = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SHORT = ["model.num_layers=6", "model.mlp_mult=2.0", "train.iterations=2", "train.warmup_steps=0",
         "train.train_batch_tokens=1024", "eval.max_tokens=513", "options.gptq.calibration_batches=1",
         "options.gptq.calibration_seqs=2", "options.gptq.report=false"]
EXTRA = {"pr1413": ["options.score-first-ttt.chunk_tokens=128", "options.score-first-ttt.epochs=1"]}


def _sets(name: str) -> list[str]:
    return [a for o in SHORT + EXTRA.get(name, []) for a in ("--set", o)]


def _result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


@pytest.fixture(scope="module", params=["pr1394", "pr1413"])
def record_run(request, tmp_path_factory, demo_data):
    """One short ``golf run <recipe> --tiny`` per recipe, exported."""
    name = request.param
    root = tmp_path_factory.mktemp(f"compact-{name}")
    env = {**os.environ, **ONE_THREAD}
    done = subprocess.run([sys.executable, "-m", "golf_core.cli", "run", str(REPO / "recipes" / f"{name}.toml"),
                           "--tiny", *_sets(name), "--quiet", "--out", str(root / "run")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rep = export_runs(root / "run", root / "export")
    return name, root, rep


def test_code_bytes_is_the_compact_script(record_run):
    name, root, rep = record_run
    res = _result(root / "run")
    script = (root / "export" / "train_gpt.py").read_text()
    assert script.startswith((LZMA_PREFIX, BROTLI_PREFIX)) and res["code"]["compact"]
    assert rep.exact and len(script.encode()) == res["code_bytes"] == rep.code_bytes
    assert res["artifact_bytes"] == res["code_bytes"] + res["model_bytes"]
    # no CLI, export machinery, data preparation or minifier in the counted script
    modules = set(res["code"]["modules"])
    assert not modules & {"golf_core.cli", "golf_core.export.compact", "golf_core.export.shake",
                          "golf_core.export.script", "golf_core.data.demo_corpus", "golf_core.data.download"}
    source = unwrap(script)
    assert "python_minifier" not in source and "class SourceTree" not in source and "def demo_documents" not in source
    assert "run `python prepare_data.py` first" in source  # build_dataset is a stub naming it
    # the readable bundle of the same run is several times larger
    readable = export_runs(root / "run", root / "readable", readable=True)
    assert readable.code_bytes > 2 * rep.code_bytes


@pytest.mark.slow
def test_compact_script_retrains_the_run_without_golf(record_run, demo_data):
    name, root, rep = record_run
    data_root = Path(demo_data.dataset_dir).parent.parent  # <root>/datasets/<name>
    work, env = isolated_workdir(root / "export", root, extra={"GOLF_DATA_DIR": str(data_root), **ONE_THREAD})
    run = subprocess.run([*isolated_python(), "train_gpt.py", "--out", "rerun", "--quiet"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    old, new = _result(root / "run"), _result(work / "rerun")
    assert new["val_bpb"] == old["val_bpb"] and new["val_loss"] == old["val_loss"]
    assert (work / "rerun" / "artifact.bin").read_bytes() == (root / "run" / "artifact.bin").read_bytes()
    assert new["code_bytes"] == old["code_bytes"] == rep.code_bytes


def test_a_script_carries_checkpoints_and_resuming_only_where_it_can_reach_them():
    from golf_core.export.bundle import plugin_refs, tree_for
    from golf_core.export.compact import build_compact
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe

    sources = {}
    for every in (0, 5):
        recipe = load_recipe("demo", [f"train.checkpoint_every={every}"])
        plugins = plugin_refs(activate(recipe))
        script = build_compact(tree_for(plugins, {}), recipe.to_toml(), plugins)
        sources[every] = script.source
        # a script never resumes and shows no progress bars; it checkpoints only if its run did
        assert "def load_checkpoint" not in script.source and "golf_core.progress" not in script.modules
    # without checkpoints the folded ``checkpoint_every <= 0`` drops the whole path (and the script
    # refuses ``--set train.checkpoint_every``: golf_core.scripted.FOLDED)
    assert "def save_checkpoint" not in sources[0]
    assert "def save_checkpoint" in sources[5] and "exported from a run without checkpoints" not in sources[5]


def test_a_script_calls_only_the_hooks_its_code_names_and_keeps_no_audit_bookkeeping():
    from golf_core.export.bundle import plugin_refs, tree_for
    from golf_core.export.compact import TRAIN_ENTRY, baked_for, build_compact
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe

    recipe = load_recipe("pr1394")  # no checkpoints: nothing calls golf_state_dict / golf_load_state_dict
    plugins = plugin_refs(activate(recipe))
    assert "golf_state_dict" in baked_for(TRAIN_ENTRY, recipe.to_toml(), plugins)["active"]["hooks"]
    script = build_compact(tree_for(plugins, {}), recipe.to_toml(), plugins)
    source = script.source
    code = "".join(script.modules.values())
    assert "def golf_state_dict" not in code and "def golf_load_state_dict" not in code
    assert "def golf_on_step_end" in code  # a hook the loop calls keeps its implementations
    # only `golf check` reads these (golf_core.scripted.AUDITED): violations, watched rows, the ledger
    # file, the git state and shard hashes of manifest.json
    session = script.modules["golf_core.eval.session"]
    assert "watch_rows" not in session and "violations" not in session and "max_abs_lse" not in session
    assert "write_ledger" not in source and "rev-parse" not in source and "golf_core.data.preflight" not in script.modules
    assert "ledger.append" in session  # the ledger itself stays: plugins certify it
