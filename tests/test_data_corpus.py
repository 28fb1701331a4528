"""The bundled demo corpus: real English, deterministic, the same on any machine with this Python."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from golf_core.data import demo_corpus as dc


def test_documents_are_english_and_bounded():
    docs = dc.demo_documents()
    assert len(docs) > 1500
    chars = sum(map(len, docs))
    assert 2_000_000 < chars < 10_000_000
    assert all(dc.MIN_DOC_CHARS <= len(d) <= dc.MAX_DOC_CHARS for d in docs)
    assert all(len(d.encode("utf-8")) <= 4192 for d in docs)  # SentencePiece's training line limit
    text = " ".join(docs)
    words = text.lower().split()
    common = sum(words.count(w) for w in ("the", "of", "and", "is", "to", "a"))
    assert common / len(words) > 0.08  # ordinary English prose
    assert dc.NUM_VAL_DOCS < len(docs) // 5


def test_hash_is_stable_and_sensitive():
    docs = dc.demo_documents()
    assert dc.corpus_sha256() == dc.corpus_sha256(list(docs))
    assert dc.corpus_sha256(docs[:-1]) != dc.corpus_sha256(docs)
    assert dc.corpus_sha256(["ab", "c"]) != dc.corpus_sha256(["a", "bc"])


def test_same_documents_in_a_different_environment(tmp_path):
    """A fresh interpreter, another working directory, hash seed, locale and PATH give the same corpus."""
    code = ("import json; from golf_core.data import demo_corpus as dc; d = dc.demo_documents(); "
            "print(json.dumps([dc.corpus_sha256(d), len(d), d[0][:50]]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONHASH"))}
    env.update(PYTHONHASHSEED="12345", LANG="C", PATH="/usr/bin:/bin", HOME=str(tmp_path),
               PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True)
    sha, n, head = json.loads(out.stdout)
    docs = dc.demo_documents()
    assert (sha, n, head) == (dc.corpus_sha256(docs), len(docs), docs[0][:50])


def test_uses_no_site_packages_and_no_imports():
    files = dc._source_files(dc.stdlib_dir())
    assert files == sorted(files)
    assert not any(part in f.split("/") for f in files for part in ("site-packages", "dist-packages", "test"))
    assert "pydoc_data/topics.py" in files


def test_fingerprint_cheap_and_stable():
    assert dc.demo_fingerprint() == dc.demo_fingerprint()
    assert len(dc.demo_fingerprint()) == 64


def test_split_long_keeps_text():
    para = ("word " * 300).strip()
    text = "\n\n".join([para] * 10) + "\n\n" + "x" * 9000
    pieces = dc._split_long(text, 4000)
    assert all(len(p) <= 4000 for p in pieces)
    assert "".join(pieces).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
