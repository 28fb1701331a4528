"""Code bytes (lzma raw + base85 exec wrapper) and the artifact budget."""
from __future__ import annotations

import base64
import lzma
import subprocess
import sys

import pytest

from golf_core.errors import GolfError
from golf_core.quant import CAP_BYTES, ByteBudget, code_bytes, collect_source, ship_code, under_cap
from golf_core.quant.accounting import unship_code


@pytest.fixture
def pkg(tmp_path):
    root = tmp_path / "mypkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("X = 1\n")
    (root / "sub" / "b.py").write_text("Y = 'ü'")  # no trailing newline, non-ASCII
    (root / "a.py").write_text("Z = 2\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.py").write_text("nope\n")
    (root / "data.toml").write_text("not code\n")
    return root


def test_collect_source_order_and_content(pkg):
    src = collect_source([pkg])
    assert src == "# mypkg/__init__.py\nX = 1\n# mypkg/a.py\nZ = 2\n# mypkg/sub/b.py\nY = 'ü'\n"


def test_wrapper_is_two_lines_and_decodes_like_the_records(pkg):
    src = collect_source([pkg])
    script = ship_code(src)
    lines = script.splitlines()
    assert len(lines) == 2 and lines[0] == "import lzma,base64"
    assert lines[1].startswith('exec(lzma.decompress(base64.b85decode("')
    assert lines[1].endswith('"),format=lzma.FORMAT_RAW,filters=[{"id":lzma.FILTER_LZMA2}]))')
    blob = lines[1][len('exec(lzma.decompress(base64.b85decode("'):lines[1].index('"),')]
    raw = lzma.decompress(base64.b85decode(blob), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    assert raw.decode("utf-8") == src
    assert unship_code(script) == src


def test_shipped_script_runs():
    script = ship_code("import sys\nsys.stdout.write('golf ' + str(6 * 7))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "golf 42"


def test_code_bytes_counts_utf8_of_the_script(pkg):
    n = code_bytes([pkg])
    assert n == len(ship_code(collect_source([pkg])).encode("utf-8"))
    assert code_bytes([pkg]) == n  # deterministic


def test_code_bytes_of_golf_core_is_compressed():
    raw = len(collect_source(["golf_core"]).encode())
    n = code_bytes(["golf_core"])
    assert 0 < n < raw / 2


def test_unknown_package():
    with pytest.raises(GolfError, match="'no_such_pkg_xyz' is not importable"):
        code_bytes(["no_such_pkg_xyz"])


def test_budget():
    b = ByteBudget(code_bytes=15_516, model_bytes=15_972_031)
    assert b.artifact_bytes == 15_987_547 and b.under_cap and b.cap_bytes == CAP_BYTES == 16_000_000
    assert b.as_dict()["headroom_bytes"] == 12_453
    assert under_cap(1, CAP_BYTES - 1) and not under_cap(1, CAP_BYTES)
    over = ByteBudget(10, 20, cap_bytes=29)
    assert not over.under_cap and over.headroom == -1
