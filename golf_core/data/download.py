"""Download the challenge's FineWeb shards from the Hugging Face Hub (pg_core.md §2.3).

The logic of the challenge's ``data/cached_challenge_fineweb.py``: read ``<root>/manifest.json``
(fetching ``<prefix>/manifest.json`` when absent), find ``fineweb10B_<variant>``, check the requested
train shards against ``stats.files_train``, then fetch every validation shard, train shards
``0..N-1`` and the tokenizer artifacts (``model_path``, ``vocab_path``, ``path``), skipping files
already present. Remote ``<prefix>/datasets/X`` lands in ``<root>/datasets/X``, ``<prefix>/tokenizers/X``
in ``<root>/tokenizers/X``, anything else in ``<root>/X``.

CaseOps (PR #1729): ``--variant caseops`` is ``sp8192_lossless_caps_caseops_v1_reserved`` from the
Hub dataset ``romeerp/parameter-golf-caseops-v1`` (the repository the record's README names, unless
a repository is given); where the manifest's dataset entry has ``val_bytes_glob``, the byte
sidecar ``fineweb_val_bytes_NNNNNN.bin`` of every validation shard is fetched too, and a CaseOps
variant without one is refused (its BPB could not be computed).

One difference, on purpose: the challenge's script trusts a cached ``manifest.json`` forever, so a
manifest fetched before a variant was published hides that variant ("rm -f data/manifest.json" in
PR #1394's README). Here a cached manifest that lacks the requested variant is re-fetched, and the
log says so.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from golf_core.data.paths import CASEOPS_SUFFIX, DataPaths, default_root, list_shards, with_byte_sidecars
from golf_core.data.shards import num_tokens
from golf_core.errors import DataError, GolfError

DEFAULT_REPO_ID = "willdepueoai/parameter-golf"
DEFAULT_REMOTE_PREFIX = "datasets"
ENV_REPO_ID = "MATCHED_FINEWEB_REPO_ID"
ENV_REMOTE_PREFIX = "MATCHED_FINEWEB_REMOTE_ROOT_PREFIX"
#: The published CaseOps data (PR #1729's README) and the variant name it uses.
CASEOPS_REPO_ID = "romeerp/parameter-golf-caseops-v1"
CASEOPS_VARIANT = f"sp8192_{CASEOPS_SUFFIX}"

HubDownload = Callable[..., str]


def canonical_variant(variant: str) -> str:
    """``caseops`` -> the published CaseOps variant name; anything else as given."""
    return CASEOPS_VARIANT if variant == "caseops" else variant


def dataset_dir_for_variant(variant: str) -> str:
    """``sp1024`` -> ``fineweb10B_sp1024`` (also ``sp<V>_<suffix>``, e.g. the CaseOps variant);
    DataError for anything else."""
    variant = canonical_variant(variant)
    if re.fullmatch(r"sp\d+(_[a-z0-9_]+)?", variant or ""):
        return f"fineweb10B_{variant}"
    if variant == "byte260":
        raise DataError("variant byte260 has no SentencePiece tokenizer; golf supports sp<VOCAB> variants")
    raise DataError(f"unknown variant {variant!r}; expected sp<VOCAB_SIZE>, e.g. sp1024 or sp8192, or caseops")


class _Fetcher:
    """Maps remote paths to local ones and fetches them through ``hub_download``."""

    def __init__(self, root: Path, repo_id: str, prefix: str, hub_download: HubDownload, log):
        self.root, self.repo_id, self.prefix = root, repo_id, prefix.strip("/")
        self.hub_download, self.log = hub_download, log
        self.fetched = 0

    def remote(self, rel: str) -> str:
        """``rel`` under the remote prefix."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def local(self, remote_path: str) -> Path:
        """Where a remote path lands under the data root (the challenge's mapping)."""
        parts = PurePosixPath(remote_path).parts
        if self.prefix and parts[:1] == (self.prefix,):
            parts = parts[1:]
        if parts[:1] == ("datasets",):
            return self.root.joinpath("datasets", *parts[1:])
        if parts[:1] == ("tokenizers",):
            return self.root.joinpath("tokenizers", *parts[1:])
        return self.root.joinpath(*parts)

    def get(self, remote_path: str, refresh: bool = False) -> Path:
        """Fetch ``remote_path`` unless present (``refresh``: fetch and replace it anyway)."""
        dest = self.local(remote_path)
        if dest.exists() and not refresh:
            return dest
        if dest.is_symlink():
            dest.unlink()
        rp = PurePosixPath(remote_path)
        parent = rp.parent.as_posix()
        try:
            cached = self.hub_download(repo_id=self.repo_id, filename=rp.name,
                                       subfolder=parent if parent not in ("", ".") else None,
                                       repo_type="dataset")
        except GolfError:
            raise
        except Exception as exc:
            raise DataError(f"could not download {remote_path} from {self.repo_id}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        source = Path(cached).resolve(strict=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
        os.replace(tmp, dest)
        self.fetched += 1
        return dest


def _find(entries, name: str) -> Optional[dict]:
    return next((e for e in entries or [] if isinstance(e, dict) and e.get("name") == name), None)


def _find_tokenizer(entries, name, variant: str) -> Optional[dict]:
    """The tokenizer entry named ``name``; else the one whose model file ends with the variant's
    suffix (``fineweb_8192_bpe_<suffix>.model``: PR #1729's export names its entries by path)."""
    found = _find(entries, name)
    suffix = variant.split("_", 1)[1] if "_" in variant else None
    if found is None and suffix:
        found = next((e for e in entries or [] if isinstance(e, dict)
                      and PurePosixPath(str(e.get("model_path", ""))).stem.endswith(suffix)), None)
    return found


def download(variant: str, train_shards: int = 80, root=None, repo_id: Optional[str] = None,
             remote_prefix: Optional[str] = None, hub_download: Optional[HubDownload] = None, *,
             with_docs: bool = False, skip_manifest: bool = False,
             log: Optional[Callable[[str], None]] = None) -> DataPaths:
    """Fetch FineWeb ``variant`` (``sp<V>``): all validation shards, the first ``train_shards``
    training shards and the tokenizer, into ``root`` (default ``$GOLF_DATA_DIR`` or ``./data``).

    ``repo_id``/``remote_prefix`` default to ``$MATCHED_FINEWEB_REPO_ID`` /
    ``$MATCHED_FINEWEB_REMOTE_ROOT_PREFIX``, else the challenge's defaults. ``hub_download`` defaults
    to ``huggingface_hub.hf_hub_download`` (tests pass a fake). Returns the resolved ``DataPaths``.
    """
    say = log or (lambda msg: None)
    variant = canonical_variant(variant)
    ds_name = dataset_dir_for_variant(variant)
    vocab = int(re.match(r"sp(\d+)", variant).group(1))
    caseops = CASEOPS_SUFFIX in variant
    if train_shards < 0:
        raise DataError(f"--train-shards must be non-negative, got {train_shards}")
    root = Path(root).expanduser() if root is not None else default_root("fineweb")
    repo_id = repo_id or os.environ.get(ENV_REPO_ID) or (CASEOPS_REPO_ID if caseops else DEFAULT_REPO_ID)
    if remote_prefix is None:
        remote_prefix = os.environ.get(ENV_REMOTE_PREFIX, DEFAULT_REMOTE_PREFIX)
    if hub_download is None:
        try:
            from huggingface_hub import hf_hub_download as hub_download
        except ImportError:
            raise DataError("golf data download needs huggingface_hub: pip install 'golf-core[download]'") from None
    fetch = _Fetcher(root, repo_id, remote_prefix, hub_download, say)

    manifest_remote = fetch.remote("manifest.json")
    manifest_path = fetch.local(manifest_remote)
    fresh = False
    if not manifest_path.is_file():
        if skip_manifest:
            raise DataError(f"{manifest_path}: manifest.json is required but absent (drop --skip-manifest)")
        say(f"fetching {manifest_remote} from {repo_id}")
        fetch.get(manifest_remote)
        fresh = True

    def load() -> dict:
        try:
            return json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            raise DataError(f"{manifest_path}: not valid JSON") from None

    manifest = load()
    entry = _find(manifest.get("datasets"), ds_name)
    if entry is None and not fresh and not skip_manifest:
        say(f"cached {manifest_path} does not list {ds_name} (stale manifest); "
            f"re-fetching {manifest_remote} from {repo_id}")
        fetch.get(manifest_remote, refresh=True)
        manifest = load()
        entry = _find(manifest.get("datasets"), ds_name)
    if entry is None:
        listed = sorted(str(e.get("name")) for e in manifest.get("datasets") or [] if isinstance(e, dict))
        raise DataError(f"dataset {ds_name} not found in {repo_id}/{manifest_remote} "
                        f"(it lists: {', '.join(listed) or 'nothing'})")
    stats = entry.get("stats") or {}
    try:
        max_train, n_val = int(stats["files_train"]), int(stats["files_val"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{manifest_path}: {ds_name} has no stats.files_train/files_val") from None
    if train_shards > max_train:
        raise DataError(f"{variant} only has {max_train} training shards on {repo_id}, requested {train_shards}")
    tok_entry = _find_tokenizer(manifest.get("tokenizers"), entry.get("tokenizer_name"), variant)
    if tok_entry is None:
        raise DataError(f"tokenizer {entry.get('tokenizer_name')!r} not found in {repo_id}/{manifest_remote}")
    artifacts = [str(tok_entry[k]) for k in ("model_path", "vocab_path", "path") if tok_entry.get(k)]
    if not artifacts:
        raise DataError(f"tokenizer entry {tok_entry.get('name')!r} lists no files to download")

    if with_docs:
        fetch.get(fetch.remote("docs_selected.jsonl"))
        fetch.get(fetch.remote("docs_selected.source_manifest.json"))

    sidecars = bool(entry.get("val_bytes_glob"))
    if caseops and not sidecars:
        raise DataError(f"{ds_name} in {repo_id}/{manifest_remote} has no val_bytes_glob: a CaseOps variant "
                        f"needs its byte sidecars to be scored")
    ds_prefix = fetch.remote(f"datasets/{ds_name}")
    shard_remotes = ([f"{ds_prefix}/fineweb_val_{i:06d}.bin" for i in range(n_val)]
                     + [f"{ds_prefix}/fineweb_val_bytes_{i:06d}.bin" for i in range(n_val if sidecars else 0)]
                     + [f"{ds_prefix}/fineweb_train_{i:06d}.bin" for i in range(train_shards)])
    say(f"{ds_name}: {n_val} validation{' (+ byte sidecars)' if sidecars else ''} + {train_shards} "
        f"training shards into {root}")
    for k, remote in enumerate(shard_remotes, 1):
        dest = fetch.get(remote)
        try:
            num_tokens(dest)
        except GolfError as exc:  # a broken local copy: fetch it again once
            say(f"{exc}; downloading it again")
            dest = fetch.get(remote, refresh=True)
            num_tokens(dest)
        if k % 10 == 0 or k == len(shard_remotes):
            say(f"  {k}/{len(shard_remotes)} shards")
    model_path = None
    for art in artifacts:
        dest = fetch.get(fetch.remote(art))
        if dest.suffix == ".model":
            model_path = dest
    if model_path is None:
        raise DataError(f"tokenizer entry {tok_entry.get('name')!r} has no .model file")
    from golf_core.data.tokenizer import load_tokenizer

    load_tokenizer(model_path, vocab)
    dataset_dir = fetch.local(ds_prefix)
    train_files = list_shards(dataset_dir, "train")[:train_shards]
    paths = with_byte_sidecars(DataPaths(dataset_dir, model_path, train_files, list_shards(dataset_dir, "val"),
                                         "fineweb", vocab))
    if sidecars:
        for tok_file, byte_file in zip(paths.val_files, paths.val_byte_files):
            if num_tokens(tok_file) != num_tokens(byte_file):
                raise DataError(f"{byte_file}: {num_tokens(byte_file)} byte counts for the "
                                f"{num_tokens(tok_file)} tokens of {tok_file.name}")
    return paths
