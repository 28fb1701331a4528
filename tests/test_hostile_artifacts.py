"""Issue 16 (4): artifacts are untrusted input: bounded decompression, no path inside them is
used to write."""
from __future__ import annotations

import lzma
import os
import zlib

import brotli
import pytest

from golf_core.cli import main
from golf_core.errors import ArtifactError
from golf_core.quant.artifact import Artifact, write_artifact
from golf_core.quant.bounded import bounded_decompress, max_decoded_bytes
from golf_core.quant.compress import decompress_bytes
from golf_core.recipe import load_recipe

RAW = os.urandom(3000) + b"\0" * 50_000
PACK = {"zlib": lambda b: zlib.compress(b, 9), "lzma": lzma.compress, "brotli": brotli.compress}


@pytest.mark.parametrize("name", sorted(PACK))
def test_bounded_decompress_round_trips_and_stops_at_the_limit(name):
    blob = PACK[name](RAW)
    assert bounded_decompress(blob, name, len(RAW)) == RAW  # exactly at the limit: accepted
    with pytest.raises(ArtifactError, match=f"^{name} payload expands past {len(RAW) - 1} bytes"):
        bounded_decompress(blob, name, len(RAW) - 1)
    with pytest.raises(ArtifactError, match=f"^{name} payload does not decompress"):
        bounded_decompress(blob[: len(blob) // 2], name, 10 * len(RAW))
    bomb = PACK[name](b"\0" * (64 << 20))  # 64 MiB of zeros in a few KB
    with pytest.raises(ArtifactError, match="a decompression bomb or a corrupt artifact"):
        decompress_bytes(name, bomb, max_bytes=1 << 20)


def test_max_decoded_bytes_is_eight_bytes_a_parameter_plus_slack():
    assert max_decoded_bytes(1000) == 8000 + (16 << 20)


def bomb_artifact(path, data_root):
    """A golf artifact whose header is honest (the tiny demo model, no plugins) but whose payload
    is 200 MiB of zeros, and whose recorded recipe points data.root at ``data_root``."""
    recipe = load_recipe("demo", tiny=True).to_dict()
    recipe["plugins"], recipe["options"] = [], {}
    recipe["data"]["root"] = str(data_root)
    art = Artifact(codec="zlib", payload=zlib.compress(b"\0" * (200 << 20), 9),
                   model={**recipe["model"], "vocab_size": 1024}, plugins=[],
                   extra={"golf_core": "0.1.0", "recipe": recipe})
    write_artifact(path, art)
    return path


def test_golf_eval_refuses_a_bomb_in_one_line_and_never_writes_where_the_artifact_says(demo_data, tmp_path, capsys):
    evil = tmp_path / "chosen-by-the-artifact"
    art = bomb_artifact(tmp_path / "artifact.bin", evil)
    assert main(["eval", str(art)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("golf: error: zlib payload expands past ")
    assert err[-1].endswith("refused (a decompression bomb or a corrupt artifact)")
    assert not evil.exists()
