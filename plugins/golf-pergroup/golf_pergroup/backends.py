"""The byte compressors of the per-group streams.

* ``zpaq``: ZPAQ level 5 in memory through the PyPI package ``zpaq`` (libzpaq, pybind11 wheels),
  one thread (deterministic output); within 0.2% of ``lrzip -z -L 9`` on int6 codes.
* ``lrzip``: the system ``lrzip`` binary, ``lrzip -z -L 9`` (rzip pre-pass + ZPAQ), as #1855 shells
  out to it; byte-identical to the record. Needs ``lrzip`` on PATH (``apt-get install lrzip``).
* ``brotli`` (quality 11, window 24) and ``lzma`` (preset 9): no extra dependency.
"""
from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import tempfile

import brotli

from golf_core import GolfError
from golf_core.api import ArtifactError

BACKENDS = ("zpaq", "lrzip", "brotli", "lzma")
LRZIP_HINT = "install it (Debian/Ubuntu: apt-get install lrzip; macOS: brew install lrzip) or use backend = \"zpaq\""


def check_backend(name: str) -> None:
    """Raise a one-line ``GolfError`` when ``name`` cannot run on this machine."""
    if name not in BACKENDS:
        raise GolfError(f"pergroup: unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    if name == "lrzip" and shutil.which("lrzip") is None:
        raise GolfError(f"pergroup: backend \"lrzip\" needs the lrzip binary, which is not on PATH: {LRZIP_HINT}")
    if name == "zpaq":
        try:
            import zpaq  # noqa: F401
        except ImportError:
            raise GolfError("pergroup: backend \"zpaq\" needs the Python package zpaq (pip install zpaq)") from None


def _lrzip(args: list[str], data: bytes, suffix_in: str, suffix_out: str) -> bytes:
    check_backend("lrzip")
    with tempfile.TemporaryDirectory(prefix="golf_pergroup_") as d:
        src, dst = os.path.join(d, "g" + suffix_in), os.path.join(d, "g" + suffix_out)
        with open(src, "wb") as f:
            f.write(data)
        proc = subprocess.run(["lrzip", *args, "-o", dst, src], capture_output=True)
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise ArtifactError(f"pergroup: lrzip {' '.join(args)} failed: {msg[-1] if msg else proc.returncode}")
        with open(dst, "rb") as f:
            return f.read()


def backend_compress(name: str, data: bytes) -> bytes:
    """Compress one stream with backend ``name`` (empty stays empty)."""
    if not data:
        return b""
    if name == "zpaq":
        check_backend("zpaq")
        import zpaq

        return zpaq.compress(data, level=5, threads=1)
    if name == "lrzip":
        return _lrzip(["-z", "-L", "9"], data, ".bin", ".bin.lrz")
    if name == "brotli":
        return brotli.compress(data, quality=11, lgwin=24)
    if name == "lzma":
        return lzma.compress(data, preset=9)
    raise GolfError(f"pergroup: unknown backend {name!r}; known: {', '.join(BACKENDS)}")


def backend_decompress(name: str, data: bytes) -> bytes:
    """Invert :func:`backend_compress`; ``ArtifactError`` on corrupt data."""
    if not data:
        return b""
    try:
        if name == "zpaq":
            import zpaq

            return zpaq.decompress(data)
        if name == "lrzip":
            return _lrzip(["-d", "-f"], data, ".lrz", ".bin")
        if name == "brotli":
            return brotli.decompress(data)
        if name == "lzma":
            return lzma.decompress(data)
    except (ArtifactError, GolfError):
        raise
    except Exception as e:  # zpaq.Error, brotli.error, lzma.LZMAError
        raise ArtifactError(f"pergroup: a {name} stream does not decompress: {e}") from None
    raise ArtifactError(f"pergroup: unknown backend {name!r}")
