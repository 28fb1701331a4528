"""The CONTRIBUTING.md example plugin, copied out of the repo, pip-installed, discovered, passing
its own tests and the contract kit (``pytest --golf-contract``), and changing a run."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def extract_files(markdown: str) -> dict[str, str]:
    """Map ``<!-- file: PATH -->`` markers to the fenced block that follows each."""
    pattern = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\s*```[a-z]*\n(?P<body>.*?)```", re.S)
    return {m["path"]: m["body"] for m in pattern.finditer(markdown)}


def golf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "golf_core", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=900)


@pytest.mark.slow
def test_example_plugin_installs_is_discovered_and_changes_a_run(tmp_path):
    files = extract_files((REPO / "CONTRIBUTING.md").read_text())
    assert {"golf-embed-scale/pyproject.toml", "golf-embed-scale/golf_embed_scale/plugin.py",
            "golf-embed-scale/README.md", "golf-embed-scale/tests/test_embed_scale.py"} <= set(files)
    for rel, body in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           str(tmp_path / "golf-embed-scale")]
    subprocess.run(pip, check=True, capture_output=True, timeout=300)
    try:
        listed = golf("plugins", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in json.loads(listed.stdout)}
        assert rows["embed-scale"]["version"] == "0.1.0"
        assert rows["embed-scale"]["options"][0]["name"] == "factor"
        assert "golf_build_model" in rows["embed-scale"]["hooks"]

        # its own tests and the contract kit, in its own pytest session, as CONTRIBUTING says
        kit = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                              "--golf-contract=embed-scale"], cwd=tmp_path / "golf-embed-scale",
                             capture_output=True, text=True, timeout=600,
                             env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
        assert kit.returncode == 0 and re.search(r"\b4 passed", kit.stdout), kit.stdout[-3000:] + kit.stderr[-2000:]

        recipe = tmp_path / "my.toml"
        recipe.write_text('plugins = ["embed-scale"]\n[options.embed-scale]\nfactor = 40.0\n')
        base = tmp_path / "base.toml"
        base.write_text("plugins = []\n")
        short = ["--tiny", "--set", "train.iterations=4", "--set", "eval.max_tokens=4097", "--quiet"]
        r1 = golf("run", str(base), "--out", str(tmp_path / "base_run"), *short, cwd=tmp_path)
        r2 = golf("run", str(recipe), "--out", str(tmp_path / "plug_run"), *short, cwd=tmp_path)
        assert r1.returncode == 0, r1.stderr[-3000:]
        assert r2.returncode == 0, r2.stderr[-3000:]
        res1 = json.loads((tmp_path / "base_run" / "result.json").read_text())
        res2 = json.loads((tmp_path / "plug_run" / "result.json").read_text())
        assert res2["plugins"] == ["embed-scale"] and res1["plugins"] == []
        assert abs(res1["val_bpb"] - res2["val_bpb"]) > 1e-4
        manifest = json.loads((tmp_path / "plug_run" / "manifest.json").read_text())
        assert manifest["plugins"][0]["options"] == {"factor": 40.0}
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "--quiet", "golf-embed-scale"],
                       capture_output=True, timeout=300)
