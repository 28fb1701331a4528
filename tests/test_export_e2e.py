"""End to end on a short tiny demo run: ``golf eval`` on its artifact gives its val_bpb; the
exported train_gpt.py, run by an interpreter that sees only the listed requirements (no
golf), retrains it to the same val_bpb and imports nothing it does not carry; code_bytes is
the exported script's size."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from golf_core import plugins as P
from golf_core.commands.eval import evaluate_artifact
from golf_core.errors import ArtifactError
from golf_core.export.folder import export_runs
from golf_core.export.isolate import isolated_python, isolated_workdir

REPO = Path(__file__).resolve().parent.parent
DEMO = ["run", str(REPO / "recipes" / "demo.toml"), "--tiny", "--set", "train.iterations=4",
        "--set", "eval.max_tokens=4097", "--quiet"]
#: Both runs on one thread: the same arithmetic, hence the same numbers.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _golf(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, **ONE_THREAD}
    return subprocess.run([sys.executable, "-m", "golf_core.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """`golf run recipes/demo.toml --tiny` for 4 steps on 4,097 validation tokens."""
    out = tmp_path_factory.mktemp("export-e2e") / "run"
    done = _golf(*DEMO, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _result(run: Path) -> dict:
    return json.loads((run / "result.json").read_text())


@pytest.fixture
def registry_copy():
    """A freshly discovered registry installed as the process-wide one (tests edit it)."""
    old = P._REGISTRY
    reg = P.PluginRegistry.discover()
    P.set_registry(reg)
    try:
        yield reg
    finally:
        P.set_registry(old)


def test_golf_eval_gives_the_runs_val_bpb(demo_run):
    done = _golf("eval", str(demo_run / "artifact.bin"), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    want = _result(demo_run)
    assert abs(got["val_bpb"] - want["val_bpb"]) < 1e-9 and abs(got["val_loss"] - want["val_loss"]) < 1e-9
    assert got["val_tokens"] == want["val_tokens"] and got["coverage_exactly_once"]


def test_golf_eval_refuses_a_missing_required_plugin(demo_run, registry_copy):
    del registry_copy.plugins["partial-rope"]  # required_on_load: the rotary layout changes
    with pytest.raises(ArtifactError, match="needs plugin 'partial-rope' 0.1.0 .*not installed"):
        evaluate_artifact(demo_run / "artifact.bin", echo=False)


def test_golf_eval_refuses_another_version_of_a_required_plugin(demo_run, registry_copy):
    registry_copy.plugins["skip-gates"].version = "9.9"
    with pytest.raises(ArtifactError, match="skip-gates 0.1.0, installed is 9.9"):
        evaluate_artifact(demo_run / "artifact.bin", echo=False)


def test_golf_eval_scores_without_a_plugin_it_does_not_need(demo_run, registry_copy):
    del registry_copy.plugins["muon-eq-r"]  # training only
    got = evaluate_artifact(demo_run / "artifact.bin", echo=False)
    assert got["dropped_plugins"] == ["muon-eq-r"]
    assert abs(got["val_bpb"] - _result(demo_run)["val_bpb"]) < 1e-6


def test_code_bytes_is_the_exported_script(demo_run, tmp_path):
    res = _result(demo_run)
    rep = export_runs(demo_run, tmp_path / "out")
    script = (tmp_path / "out" / "train_gpt.py").read_bytes()
    assert rep.exact and len(script) == res["code_bytes"] == res["code"]["code_bytes"] == rep.code_bytes
    assert res["artifact_bytes"] == len(script) + res["model_bytes"]
    # nothing the run did not import
    modules = set(res["code"]["modules"])
    assert not {m for m in modules if m.startswith(("golf_core.commands", "golf_core.check"))}
    assert not modules & {"golf_core.cli", "golf_core.ablate", "golf_core.export.folder", "golf_core.data.download"}


def _imported(importtime_log: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", importtime_log, re.M)}


@pytest.mark.slow
def test_exported_script_retrains_the_run_without_golf(demo_run, tmp_path):
    rep = export_runs(demo_run, tmp_path / "export")
    work, env = isolated_workdir(tmp_path / "export", tmp_path, ("train_gpt.py", "prepare_data.py"),
                                 {"GOLF_DATA_DIR": str(tmp_path / "data"), **ONE_THREAD})

    probe = subprocess.run([*isolated_python(), "-c", "import golf_core"], cwd=work, env=env, capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode != 0 and "No module named 'golf_core'" in probe.stderr
    probe = subprocess.run([*isolated_python(), "-c", "import torch, numpy, sentencepiece, brotli"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    for absent in ("pydantic", "pluggy"):  # the scripts' drivers are baked (golf_core.export.driver)
        probe = subprocess.run([*isolated_python(), "-c", f"import {absent}"], cwd=work, env=env, capture_output=True,
                               text=True, timeout=60)
        assert probe.returncode != 0 and f"No module named '{absent}'" in probe.stderr

    # the counted script does not carry data preparation: it names prepare_data.py
    run = subprocess.run([*isolated_python(), "train_gpt.py", "--out", "rerun", "--quiet"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "prepare_data.py" in run.stderr, run.stderr[-3000:]
    prep = subprocess.run([*isolated_python(), "prepare_data.py", "--quiet"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-3000:]
    run = subprocess.run([*isolated_python(), "-X", "importtime", "train_gpt.py", "--out", "rerun", "--quiet"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    old, new = _result(demo_run), _result(work / "rerun")
    assert new["val_bpb"] == old["val_bpb"] and new["val_loss"] == old["val_loss"] and new["steps"] == old["steps"]
    assert new["model_bytes"] == old["model_bytes"]
    assert (work / "rerun" / "artifact.bin").read_bytes() == (demo_run / "artifact.bin").read_bytes()
    if rep.exact:  # the run recorded its code: the script reports itself as the same code bytes
        assert new["code_bytes"] == old["code_bytes"] == rep.code_bytes
        embedded = set(new["code"]["modules"])
        plugin_modules = {p[1] for p in new["code"]["plugins"]} | {p[1].split(".")[0] for p in new["code"]["plugins"]}
        unused = embedded - _imported(run.stderr) - plugin_modules
        # tiny: the original run resolved --tiny with it; the fused-kernel modules are imported only
        # on CUDA (the script must also run there), so a CPU rerun does not import them
        cuda_only = {"golf_core.model.softcap_ce", "golf_core.model.triton_compat", "golf_core.model.triton_mlp",
                     "golf_core.model.triton_softcap_ce"}
        assert unused <= {"golf_core.tiny"} | cuda_only, unused
    # the baked driver (golf_core.export.driver): neither pydantic nor pluggy at run time (argparse is
    # torch's, through unittest)
    assert not _imported(run.stderr) & {"pydantic", "pluggy"}
    # what reads a run folder reads the script's: `golf eval` scores its artifact to its val_bpb, its
    # result.json has golf's keys; only what `golf check` alone reads (golf_core.scripted.AUDITED) is not
    # written: eval_ledger.jsonl, manifest.json's git state and shard hashes
    done = _golf("eval", str(work / "rerun" / "artifact.bin"), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert abs(got["val_bpb"] - new["val_bpb"]) < 1e-9 and got["coverage_exactly_once"]
    assert set(new) == set(old) and new["legality"] == old["legality"]
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (demo_run, work / "rerun")]
    assert set(manifests[0]) - set(manifests[1]) == {"git", "data"} and not set(manifests[1]) - set(manifests[0])
    assert (demo_run / "eval_ledger.jsonl").is_file() and not (work / "rerun" / "eval_ledger.jsonl").exists()
