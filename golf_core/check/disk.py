"""Data folders on disk for the audit's runs: the run's dataset with the validation shards
rewritten to hold a given stream (flipped tokens in place), the training shards and the
manifest linked, under the same folder and file names as the real dataset.

Every run of a check, the reported one included, reads its own such folder, so that what a
plugin finds on disk — through the eval session, ``np.fromfile`` on a shard, anything — is the
stream that run scores.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from ..data.paths import MANIFEST_NAME, DataPaths
from ..data.shards import read_shard, write_shard


def write_data_dir(dest: Path, data: DataPaths, flips: Mapping[int, int]) -> Path:
    """Make ``dest/datasets/<name>/`` for ``data`` with token ``p`` of the concatenated
    validation stream set to ``flips[p]``; return the dataset folder."""
    ds = Path(dest) / "datasets" / data.dataset_dir.name
    if ds.exists():
        shutil.rmtree(ds)
    ds.mkdir(parents=True)
    for f in data.train_files:
        os.symlink(os.path.abspath(f), ds / Path(f).name)
    for f in getattr(data, "val_byte_files", []):  # CaseOps byte sidecars: one per target, unflipped
        os.symlink(os.path.abspath(f), ds / Path(f).name)
    man = data.dataset_dir / MANIFEST_NAME
    if man.is_file():
        os.symlink(os.path.abspath(man), ds / MANIFEST_NAME)
    offset = 0
    pending = dict(flips)
    for f in sorted((Path(v) for v in data.val_files), key=lambda p: p.name):
        tokens = read_shard(f)
        n = int(tokens.shape[0])
        mine = {p - offset: v for p, v in pending.items() if offset <= p < offset + n}
        if mine:
            arr = np.array(tokens, dtype=tokens.dtype, copy=True)
            for i, v in mine.items():
                arr[i] = v
            write_shard(ds / f.name, arr)
        else:
            shutil.copyfile(f, ds / f.name)
        offset += n
    return ds
