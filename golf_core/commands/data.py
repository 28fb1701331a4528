"""``golf data build|download|inspect``: build a dataset in the challenge's layout, fetch FineWeb,
look inside a dataset."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BUILD_EPILOG = """\
examples:
  golf data build --vocab 1024                     the demo (the interpreter's own docs) into the cache
  golf data build --vocab 4096 --out data          the same at sp4096 into ./data
  golf data build --source corpus.jsonl --name web --vocab 8192 --out data
  golf data build --variant caseops --vocab 1024    the demo with CaseOps case markers + byte sidecar

writes OUT/datasets/<name>_sp<V>/fineweb_{train,val}_NNNNNN.bin, its manifest.json, and
OUT/tokenizers/<name>_<V>_bpe.model: a recipe reads it with [data] root = "OUT" (demo) or
[data] dataset_dir = "OUT/datasets/<name>_sp<V>". Nothing is rebuilt when the manifest matches.
--variant caseops (PR #1729) adds fineweb_val_bytes_NNNNNN.bin (original bytes per token; name
default demo_caseops); a recipe reads the demo's with [data] variant = "caseops". A validation
document whose text is also in training stops the build (--drop-repeats leaves those out of training).
"""

DOWNLOAD_EPILOG = """\
examples:
  golf data download --variant sp1024 --train-shards 80
  golf data download --variant caseops --train-shards 80   PR #1729's CaseOps sp8192 + byte sidecars
  MATCHED_FINEWEB_REPO_ID=kevclark/parameter-golf golf data download --variant sp8192 --train-shards 128

writes OUT/manifest.json, OUT/datasets/fineweb10B_<variant>/ and OUT/tokenizers/ (OUT default:
$GOLF_DATA_DIR, else ./data). A cached manifest.json that lacks the variant is fetched again.
"""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    """Handler of ``golf data build``."""
    from golf_core.data.build import build_dataset
    from golf_core.data.paths import default_root

    sources = args.source or ["demo"]
    is_demo = sources == ["demo"]
    if not is_demo and "demo" in sources:
        from golf_core.errors import DataError

        raise DataError("--source demo cannot be mixed with file paths")
    out = Path(args.out).expanduser() if args.out else default_root("demo" if is_demo else "custom")
    t0 = time.perf_counter()
    paths = build_dataset(out, args.vocab, "demo" if is_demo else sources, name=args.name,
                          num_val_docs=args.val_docs, shard_tokens=args.shard_tokens, force=args.force,
                          log=_say, variant=args.variant, drop_repeats=args.drop_repeats or None)
    m = paths.manifest() or {}
    st = m.get("stats", {})
    print(f"dataset   {paths.dataset_dir}")
    print(f"tokenizer {paths.tokenizer_path}")
    print(f"shards    {len(paths.train_files)} train, {len(paths.val_files)} val")
    if st:
        print(f"tokens    {st.get('tokens_train')} train, {st.get('tokens_val')} val "
              f"({st.get('docs_train')} + {st.get('docs_val')} documents)")
    if paths.val_byte_files:
        print(f"sidecars  {len(paths.val_byte_files)} val byte sidecars, {st.get('bytes_val')} original bytes")
    sc = m.get("split_check")
    if sc:
        print(f"split     {sc['shared']} of {sc['val_docs']} validation documents repeat in training"
              + (f" ({sc['train_dropped']} training documents left out)" if sc.get("train_dropped") else ""))
    print(f"corpus    sha256 {m.get('corpus_sha256', '?')}")
    print(f"seconds   {time.perf_counter() - t0:.1f}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Handler of ``golf data download``."""
    from golf_core.data.download import download

    n = args.train_shards_positional if args.train_shards_positional is not None else args.train_shards
    paths = download(args.variant, n, args.out, repo_id=args.repo_id, remote_prefix=args.remote_prefix,
                     with_docs=args.with_docs, skip_manifest=args.skip_manifest, log=_say)
    print(f"dataset   {paths.dataset_dir}")
    print(f"tokenizer {paths.tokenizer_path}")
    print(f"shards    {len(paths.train_files)} train, {len(paths.val_files)} val")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Handler of ``golf data inspect``."""
    from golf_core.data.inspect import dataset_dirs, inspect_dataset

    reports = [inspect_dataset(d, args.tokenizer, text_chars=args.chars) for d in dataset_dirs(args.dir)]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
        return 0
    for r in reports:
        print(f"dataset   {r.dataset_dir}")
        print(f"tokenizer {r.tokenizer} (vocab {r.vocab_size})")
        width = max([len(s.file) for s in r.shards] + [5])
        print(f"  {'shard':<{width}}  {'tokens':>12}  {'bytes':>13}  {'docs':>9}  {'tok/byte':>8}")
        for s in r.shards:
            tpb = s.tokens / s.bytes if s.bytes else float("nan")
            print(f"  {s.file:<{width}}  {s.tokens:>12,}  {s.bytes:>13,}  {s.docs:>9,}  {tpb:>8.4f}")
        for split, t in r.totals.items():
            if t["shards"]:
                print(f"  {split + ' total':<{width}}  {t['tokens']:>12,}  {t['bytes']:>13,}  {t['docs']:>9,}  "
                      f"{t['tokens_per_byte']:>8.4f}")
        print("first text:")
        for line in (r.first_text or "(empty)").splitlines() or [""]:
            print(f"  | {line}")
        print()
    return 0


def register(subparsers) -> None:
    """Add ``golf data`` and its actions to the ``golf`` parser."""
    p = subparsers.add_parser("data", help="build, download or inspect datasets (shards + tokenizer)",
                              description="Datasets in the challenge's shard layout.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    b = sub.add_parser("build", help="train a tokenizer and write shards (the bundled demo or your text)",
                       epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--source", nargs="+", metavar="demo|PATH",
                   help="'demo' (default: the interpreter's own docs) or .txt/.md/.jsonl files or folders")
    b.add_argument("--vocab", type=int, default=1024, help="tokenizer vocabulary size (default 1024)")
    b.add_argument("--out", help="data root (default $GOLF_DATA_DIR, else ~/.cache/golf/data for the demo, ./data otherwise)")
    b.add_argument("--name", help="dataset name (default 'demo' or 'custom')")
    b.add_argument("--val-docs", type=int, help="documents held out for validation (default: demo 300, else 5%%)")
    b.add_argument("--shard-tokens", type=int, help="tokens per shard (default: demo 262144, else 10**8)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cached dataset matches")
    b.add_argument("--variant", choices=("plain", "caseops"), default="plain",
                   help="caseops: CaseOps case markers + per-token byte sidecar (PR #1729)")
    b.add_argument("--drop-repeats", action="store_true",
                   help="leave out training documents that repeat a validation document (default for the CaseOps demo)")
    b.set_defaults(func=cmd_build)

    d = sub.add_parser("download", help="fetch the challenge's FineWeb shards from the Hugging Face Hub",
                       epilog=DOWNLOAD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("train_shards_positional", nargs="?", type=int, default=None, help=argparse.SUPPRESS)
    d.add_argument("--variant", default="sp1024", help="sp<VOCAB>, e.g. sp1024 or sp8192 (default sp1024), or caseops "
                   "(sp8192_lossless_caps_caseops_v1_reserved from romeerp/parameter-golf-caseops-v1)")
    d.add_argument("--train-shards", type=int, default=80, help="training shards to fetch (default 80)")
    d.add_argument("--out", help="data root (default $GOLF_DATA_DIR, else ./data)")
    d.add_argument("--repo-id", help="Hub dataset repository (default $MATCHED_FINEWEB_REPO_ID or willdepueoai/parameter-golf)")
    d.add_argument("--remote-prefix", help="folder inside the repository (default $MATCHED_FINEWEB_REMOTE_ROOT_PREFIX or 'datasets')")
    d.add_argument("--with-docs", action="store_true", help="also fetch docs_selected.jsonl and its sidecar")
    d.add_argument("--skip-manifest", action="store_true", help="never fetch manifest.json (it must be present)")
    d.set_defaults(func=cmd_download)

    i = sub.add_parser("inspect", help="shards, tokens, bytes, tokens per byte, first decoded text")
    i.add_argument("dir", help="a dataset folder (with fineweb_*.bin) or a data root (with datasets/)")
    i.add_argument("--tokenizer", help="SentencePiece model (default: the dataset's own)")
    i.add_argument("--chars", type=int, default=400, help="characters of decoded text to show (default 400)")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_inspect)
