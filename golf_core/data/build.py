"""Build a dataset in the challenge's layout from the demo corpus or local text files.

``build_dataset(root, V)`` trains a SentencePiece BPE with the challenge's settings on every
document (the challenge's tokenizer also saw its validation documents), encodes each document as
``[BOS] + ids`` (no EOS, raw text), and writes the first ``num_val_docs`` documents to
``fineweb_val_*.bin`` and the rest to ``fineweb_train_*.bin``, splitting shards every
``shard_tokens`` tokens (pg_core.md §2.1-2.2, §2.6). A ``manifest.json`` next to the shards records
the corpus hash, the settings and the statistics; a later call with the same settings returns the
cached dataset without rebuilding.

``variant="caseops"`` (PR #1729) encodes every document with CaseOps (``golf_core.data.caseops``)
before the tokenizer is trained and the shards written, reserves the four case controls as
SentencePiece ``user_defined_symbols``, and writes beside each validation shard a byte sidecar
``fineweb_val_bytes_NNNNNN.bin`` (same format, one uint16 per token: the token's original UTF-8
bytes, 0 for BOS and the case controls) from which BPB is computed.

Before any shard is written, the split is checked (``golf_core.data.split``): a validation document
whose text is also a training document's is an error naming the count, unless ``drop_repeats``
leaves such training documents out (the default for the CaseOps demo; the plain demo, whose
figures are published, keeps its three repeated boilerplate documents and records them). Builds are atomic (temporary folder, then rename) and
serialized with a lock file, so concurrent ranks can all ask for the same dataset.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from golf_core.data import caseops, demo_corpus
from golf_core.data.paths import MANIFEST_NAME, DataPaths, layout, list_shards, with_byte_sidecars
from golf_core.data.preflight import seed_hash_cache
from golf_core.data.shards import num_tokens, write_shard
from golf_core.data.split import drop_validation_repeats, require_clean_split, split_check
from golf_core.data.tokenizer import BOS_ID, TRAINER_SETTINGS, build_byte_luts, load_tokenizer, train_tokenizer
from golf_core.errors import DataError, GolfError

#: Manifest format version (part of the cache key).
BUILD_FORMAT = 1
#: The challenge's shard size (tokens).
SHARD_TOKENS = 10**8
#: The demo's shard size: small, so that the demo has several training shards like FineWeb.
DEMO_SHARD_TOKENS = 2**18
ENCODE_BATCH_DOCS = 1024
VARIANTS = ("plain", "caseops")

Source = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


# ------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------

def _source_files(source: Source) -> list[Path]:
    """The text/jsonl files of a non-demo source (files as given, folders expanded sorted)."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in (".txt", ".md", ".jsonl", ".json"))
            if not found:
                raise DataError(f"{p}: folder holds no .txt, .md or .jsonl files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: source file does not exist")
    if not files:
        raise DataError("no source files given")
    return files


def read_documents(files: Iterable[Path]) -> list[str]:
    """Documents of local files: one per line of a ``.jsonl`` (its ``"text"`` field), one per other file."""
    docs: list[str] = []
    for f in files:
        if f.suffix == ".jsonl":
            with open(f, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        text = json.loads(line)["text"]
                    except (ValueError, KeyError, TypeError):
                        raise DataError(f"{f}:{lineno}: expected a JSON object with a \"text\" field") from None
                    docs.append(str(text))
        else:
            docs.append(f.read_text(encoding="utf-8", errors="replace"))
    return docs


def _files_fingerprint(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", errors="surrogatepass"))
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------
# shard writing (the challenge's export_shards semantics)
# ------------------------------------------------------------------------------------------

class _ShardSeries:
    """Buffers ``[BOS]+ids`` documents into fixed-size shards, one series per split (with
    ``sidecar``, validation documents carry their byte counts into ``fineweb_val_bytes_*``)."""

    def __init__(self, out_dir: Path, shard_tokens: int, vocab_size: int, sidecar: bool = False):
        self.out_dir = out_dir
        self.shard_tokens = shard_tokens
        self.vocab_size = vocab_size
        self.buf = np.empty(shard_tokens, dtype=np.uint16)
        self.byte_buf = np.empty(shard_tokens, dtype=np.uint16) if sidecar else None
        self.fill = 0
        self.split = "val"
        self.index = {"val": 0, "train": 0}
        self.stats = {k: 0 for k in ("docs_total", "docs_val", "docs_train", "files_total", "files_val",
                                      "files_train", "tokens_total", "tokens_val", "tokens_train")}

    def flush(self) -> None:
        """Write the buffered tokens as the split's next shard."""
        if self.fill == 0:
            return
        write_shard(self.out_dir / f"fineweb_{self.split}_{self.index[self.split]:06d}.bin", self.buf[: self.fill])
        if self.byte_buf is not None and self.split == "val":
            write_shard(self.out_dir / f"fineweb_val_bytes_{self.index['val']:06d}.bin", self.byte_buf[: self.fill])
        self.stats["files_total"] += 1
        self.stats[f"files_{self.split}"] += 1
        self.index[self.split] += 1
        self.fill = 0

    def add(self, split: str, ids: Sequence[int], byte_counts: Optional[Sequence[int]] = None) -> None:
        """Append one document as ``[BOS] + ids`` to ``split`` (flushing on a split change);
        ``byte_counts`` (one per id) go to the sidecar, with 0 for the BOS."""
        if split != self.split:
            self.flush()
            self.split = split
        toks = np.empty(len(ids) + 1, dtype=np.int64)
        toks[0] = BOS_ID
        toks[1:] = ids
        if toks.size and (toks.min() < 0 or toks.max() >= self.vocab_size):
            raise DataError(f"token id outside vocab_size={self.vocab_size}")
        toks = toks.astype(np.uint16)
        counts = None
        if self.byte_buf is not None and split == "val":
            if byte_counts is None or len(byte_counts) != len(ids):
                raise DataError("a validation document of a sidecar build needs one byte count per token")
            counts = np.zeros(toks.size, dtype=np.int64)
            counts[1:] = byte_counts
            if counts.max(initial=0) >= 2**16:
                raise DataError("a token's byte count does not fit the uint16 sidecar")
            counts = counts.astype(np.uint16)
        self.stats["docs_total"] += 1
        self.stats[f"docs_{split}"] += 1
        self.stats["tokens_total"] += toks.size
        self.stats[f"tokens_{split}"] += toks.size
        pos = 0
        while pos < toks.size:
            take = min(self.shard_tokens - self.fill, toks.size - pos)
            self.buf[self.fill: self.fill + take] = toks[pos: pos + take]
            if counts is not None:
                self.byte_buf[self.fill: self.fill + take] = counts[pos: pos + take]
            self.fill += take
            pos += take
            if self.fill == self.shard_tokens:
                self.flush()


# ------------------------------------------------------------------------------------------
# cache
# ------------------------------------------------------------------------------------------

def _trainer_overrides(variant: str) -> dict:
    """SentencePiece settings a variant adds to the challenge's (CaseOps: the reserved controls)."""
    return {"user_defined_symbols": list(caseops.CONTROLS)} if variant == "caseops" else {}


def _settings(name: str, vocab_size: int, source_desc, shard_tokens: int, num_val_docs,
              variant: str = "plain", drop_repeats: bool = False) -> dict:
    settings = {
        "format": BUILD_FORMAT,
        "name": name,
        "vocab_size": int(vocab_size),
        "tokenizer": {**TRAINER_SETTINGS, **_trainer_overrides(variant)},
        "shard_tokens": int(shard_tokens),
        "num_val_docs": num_val_docs,
        "source": source_desc,
    }
    if variant != "plain":  # plain builds keep the cache key they always had
        settings.update(variant=variant, text_transform=caseops.TRANSFORM_NAME)
    if drop_repeats:
        settings["drop_repeats"] = True
    return json.loads(json.dumps(settings))


def _demo_source_desc() -> dict:
    return {"kind": "demo", "python": demo_corpus.python_version(),
            "demo_corpus_version": demo_corpus.DEMO_CORPUS_VERSION}


def _manifest_ok(manifest: dict, dataset_dir: Path, tokenizer_path: Path) -> bool:
    """True when every file the manifest lists exists with the recorded size/hash."""
    try:
        for fname, n in manifest["files"].items():
            if num_tokens(dataset_dir / fname) != n:
                return False
        present = [p.name for split in ("train", "val", "val_bytes") for p in list_shards(dataset_dir, split)]
        if set(manifest["files"]) != set(present):
            return False
        return tokenizer_path.is_file() and _file_sha256(tokenizer_path) == manifest["tokenizer_sha256"]
    except (GolfError, KeyError, OSError, TypeError):
        return False


def _paths_from(dataset_dir: Path, tokenizer_path: Path, name: str, vocab_size: int) -> DataPaths:
    return with_byte_sidecars(DataPaths(dataset_dir, tokenizer_path, list_shards(dataset_dir, "train"),
                                        list_shards(dataset_dir, "val"), name, vocab_size))


def _check_cache(root: Path, vocab_size: int, source: Source, name: str, shard_tokens: int,
                 num_val_docs, docs_provider: Callable[[], list], variant: str = "plain",
                 drop_repeats: bool = False) -> Optional[DataPaths]:
    dataset_dir, tok = layout(root, name, vocab_size)
    mpath = dataset_dir / MANIFEST_NAME
    if not mpath.is_file():
        return None
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if source == "demo":
        desc, fingerprint = _demo_source_desc(), demo_corpus.demo_fingerprint()
    else:
        files = _source_files(source)
        desc, fingerprint = {"kind": "files", "files": [str(f.resolve()) for f in files]}, _files_fingerprint(files)
    if manifest.get("settings") != _settings(name, vocab_size, desc, shard_tokens, num_val_docs, variant, drop_repeats):
        return None
    if not _manifest_ok(manifest, dataset_dir, tok):
        return None
    if manifest.get("source_fingerprint") != fingerprint:
        # The sources changed on disk (or moved); the documents may still be the same.
        if manifest.get("corpus_sha256") != demo_corpus.corpus_sha256(docs_provider()):
            return None
        manifest["source_fingerprint"] = fingerprint
        _write_json(mpath, manifest)
    return _paths_from(dataset_dir, tok, name, vocab_size)


def _resolve_args(source: Source, name: Optional[str], shard_tokens: Optional[int], variant: str = "plain",
                  drop_repeats: Optional[bool] = None):
    is_demo = isinstance(source, str) and source == "demo"
    if variant not in VARIANTS:
        raise DataError(f"unknown data variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    name = name or ("demo" if is_demo else "custom") + ("_caseops" if variant == "caseops" else "")
    if shard_tokens is None:
        shard_tokens = DEMO_SHARD_TOKENS if is_demo else SHARD_TOKENS
    if shard_tokens < 1:
        raise DataError(f"shard_tokens must be positive, got {shard_tokens}")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise DataError(f"dataset name {name!r} must be letters, digits, '-' or '_'")
    if drop_repeats is None:
        drop_repeats = is_demo and variant == "caseops"
    return is_demo, name, shard_tokens, bool(drop_repeats)


def _default_val_docs(is_demo: bool, num_val_docs: Optional[int]) -> Optional[int]:
    return demo_corpus.NUM_VAL_DOCS if (is_demo and num_val_docs is None) else num_val_docs


def cached_dataset(root, vocab_size: int, source: Source = "demo", name: Optional[str] = None, *,
                   num_val_docs: Optional[int] = None, shard_tokens: Optional[int] = None,
                   variant: str = "plain", drop_repeats: Optional[bool] = None) -> Optional[DataPaths]:
    """The dataset ``build_dataset`` would return, if it is already built and up to date; else None."""
    is_demo, name, shard_tokens, drop_repeats = _resolve_args(source, name, shard_tokens, variant, drop_repeats)
    num_val_docs = _default_val_docs(is_demo, num_val_docs)
    root = Path(root).expanduser()
    provider = demo_corpus.demo_documents if is_demo else (lambda: read_documents(_source_files(source)))
    return _check_cache(root, vocab_size, "demo" if is_demo else source, name, shard_tokens,
                        num_val_docs, provider, variant, drop_repeats)


# ------------------------------------------------------------------------------------------
# build
# ------------------------------------------------------------------------------------------

def _caseops_byte_counts(sp, text: str, ids: Sequence[int]) -> list[int]:
    """Original bytes of each token of an encoded validation document (from the pieces' surfaces)."""
    proto_ids, surfaces = caseops.piece_surfaces(sp, text)
    if proto_ids != list(ids):
        raise DataError("SentencePiece's proto and id encodings of a document differ")
    return caseops.original_byte_counts(surfaces)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (no-op where fcntl is unavailable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def build_dataset(root, vocab_size: int, source: Source = "demo", name: Optional[str] = None, *,
                  num_val_docs: Optional[int] = None, shard_tokens: Optional[int] = None,
                  force: bool = False, log: Optional[Callable[[str], None]] = None,
                  variant: str = "plain", drop_repeats: Optional[bool] = None) -> DataPaths:
    """Build (or return the cached) dataset ``<root>/datasets/<name>_sp<V>`` and its tokenizer
    ``<root>/tokenizers/<name>_<V>_bpe.model``.

    ``source`` is ``"demo"`` (the bundled corpus, name "demo") or paths of ``.txt``/``.md`` files
    (one document each), ``.jsonl`` files (one document per line's ``"text"``) or folders of them
    (name default "custom"). ``num_val_docs`` defaults to ``demo_corpus.NUM_VAL_DOCS`` for the demo
    and to 5% of the documents (at least 1) otherwise. Nothing is rebuilt when the manifest's
    settings and corpus match, unless ``force``.

    ``variant`` is "plain" or "caseops" (name default "demo_caseops" / "custom_caseops"; see the
    module docstring). ``drop_repeats`` leaves out training documents that repeat a validation
    document (default: only for the CaseOps demo); without it such a split is a DataError, except
    for the plain demo, which records its repeats in the manifest.
    """
    is_demo, name, shard_tokens, drop_repeats = _resolve_args(source, name, shard_tokens, variant, drop_repeats)
    num_val_docs = _default_val_docs(is_demo, num_val_docs)
    root = Path(root).expanduser()
    if not 261 <= int(vocab_size) <= 2**16:
        raise DataError(f"vocab_size {vocab_size} must lie in [261, 65536] (byte fallback, uint16 shards)")
    say = log or (lambda msg: None)
    src = "demo" if is_demo else source
    dataset_dir, tok_path = layout(root, name, vocab_size)

    docs_cache: list = []

    def docs() -> list:
        if not docs_cache:
            docs_cache.append(demo_corpus.demo_documents() if is_demo else read_documents(_source_files(source)))
        return docs_cache[0]

    with _lock(root / "datasets" / f".{dataset_dir.name}.lock"):
        if not force:
            cached = _check_cache(root, vocab_size, src, name, shard_tokens, num_val_docs, docs, variant, drop_repeats)
            if cached is not None:
                return cached
        t0 = time.perf_counter()
        say(f"building {dataset_dir.name} in {root}: reading the corpus")
        documents = docs()
        if is_demo:
            desc, fingerprint = _demo_source_desc(), demo_corpus.demo_fingerprint()
            n_val = num_val_docs
        else:
            files = _source_files(source)
            desc = {"kind": "files", "files": [str(f.resolve()) for f in files]}
            fingerprint = _files_fingerprint(files)
            n_val = max(1, len(documents) // 20) if num_val_docs is None else num_val_docs
        if not 1 <= n_val < len(documents):
            raise DataError(f"num_val_docs = {n_val} must leave at least one training document "
                            f"of {len(documents)}")
        sha = demo_corpus.corpus_sha256(documents)
        val_docs, train_docs = documents[:n_val], documents[n_val:]
        check = split_check(val_docs, train_docs)
        if check.shared and drop_repeats:
            train_docs, check.train_dropped = drop_validation_repeats(val_docs, train_docs)
            say(f"split check: {check.shared} validation documents repeat in training; "
                f"left out {check.train_dropped} training documents")
        elif check.shared and is_demo and variant == "plain":
            say(f"split check: {check.shared} of {n_val} validation documents of the demo corpus repeat a training "
                f"document (boilerplate; kept so that the demo's published figures hold, recorded in manifest.json)")
        else:
            require_clean_split(check, f"{dataset_dir.name}",
                                hint="golf data build --drop-repeats leaves them out of training")
        documents = val_docs + train_docs
        texts = [caseops.encode(d) for d in documents] if variant == "caseops" else documents
        say(f"building {dataset_dir.name}: {len(documents)} documents, {sum(map(len, documents))} characters; "
            f"training the sp{vocab_size} tokenizer")

        tmp_dir = dataset_dir.with_name(f".{dataset_dir.name}.tmp{os.getpid()}")
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        tmp_dir.mkdir(parents=True)
        try:
            tmp_prefix = tmp_dir / tok_path.stem
            t_tok = time.perf_counter()
            train_tokenizer(texts, vocab_size, tmp_prefix, **_trainer_overrides(variant))
            sp = load_tokenizer(Path(str(tmp_prefix) + ".model"))
            if variant == "caseops" and not caseops.is_caseops_tokenizer(sp):
                raise DataError(f"{tok_path.name}: the CaseOps controls are not pieces of their own")
            if int(sp.vocab_size()) != int(vocab_size):
                raise DataError(f"the corpus is too small for vocab_size {vocab_size}: SentencePiece "
                                f"learned only {sp.vocab_size()} pieces")
            luts = build_byte_luts(sp, vocab_size)
            tok_seconds = time.perf_counter() - t_tok
            say(f"trained tokenizer sp{vocab_size} in {tok_seconds:.1f}s")

            series = _ShardSeries(tmp_dir, shard_tokens, vocab_size, sidecar=variant == "caseops")
            val_bytes = 0
            threads = max(1, os.cpu_count() or 1)
            for start in range(0, len(texts), ENCODE_BATCH_DOCS):
                batch = texts[start: start + ENCODE_BATCH_DOCS]
                say(f"encoding documents {start + 1}-{start + len(batch)} of {len(texts)}")
                encoded = sp.encode(batch, out_type=int, num_threads=threads)
                for i, ids in enumerate(encoded):
                    split = "val" if start + i < n_val else "train"
                    if variant == "caseops" and split == "val":
                        counts = _caseops_byte_counts(sp, batch[i], ids)
                        series.add(split, ids, counts)
                        val_bytes += sum(counts)
                        continue
                    series.add(split, ids)
                    if split == "val" and ids:
                        arr = np.asarray(ids, dtype=np.int64)
                        prev = np.concatenate([[BOS_ID], arr[:-1]])
                        val_bytes += int(luts.base_bytes[arr].sum()) + int(
                            (luts.has_leading_space[arr] & ~luts.is_boundary[prev]).sum())
            series.flush()

            tokenizers_dir = tok_path.parent
            tokenizers_dir.mkdir(parents=True, exist_ok=True)
            for suffix in (".model", ".vocab"):
                os.replace(str(tmp_prefix) + suffix, tok_path.with_suffix(suffix))
            files = {p.name: num_tokens(p) for p in sorted(tmp_dir.glob("fineweb_*.bin"))}
            manifest = {
                "settings": _settings(name, vocab_size, desc, shard_tokens, num_val_docs, variant, drop_repeats),
                "name": name,
                "vocab_size": int(vocab_size),
                "num_val_docs": n_val,
                "corpus_sha256": sha,
                "corpus_chars": sum(map(len, documents)),
                "source_fingerprint": fingerprint,
                "python_version": demo_corpus.python_version(),
                "tokenizer": os.path.relpath(tok_path, dataset_dir),
                "tokenizer_sha256": _file_sha256(tok_path),
                "stats": dict(series.stats, bytes_val=val_bytes),
                "variant": variant,
                "split_check": check.as_dict(),
                "files": files,
                "build_seconds": round(time.perf_counter() - t0, 3),
                "tokenizer_seconds": round(tok_seconds, 3),
            }
            _write_json(tmp_dir / MANIFEST_NAME, manifest)
            seed_hash_cache(tmp_dir)
            if dataset_dir.exists():
                shutil.rmtree(dataset_dir)
            os.replace(tmp_dir, dataset_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        st = manifest["stats"]
        say(f"built {dataset_dir}: {st['tokens_train']} train + {st['tokens_val']} val tokens "
            f"in {manifest['build_seconds']:.1f}s")
        return _paths_from(dataset_dir, tok_path, name, vocab_size)
