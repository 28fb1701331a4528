"""Inside an exported training script: the dataset that ``prepare_data.py`` built.

It stands in for ``golf_core.data.build.cached_dataset`` there: the dataset's files as laid
out under the root, without the staleness check (which would need the demo corpus builder,
data preparation that the counted script does not carry); ``None`` when not built yet.
"""
from __future__ import annotations

from typing import Optional

from ..data.paths import MANIFEST_NAME, DataPaths, layout, list_shards


def prepared_dataset(root, vocab_size: int, source="demo", name: Optional[str] = None, **_: object) -> Optional[DataPaths]:
    """The dataset ``name`` (default: ``demo`` for the demo source) under ``root``, if built."""
    name = name or ("demo" if source == "demo" else "custom")
    dataset_dir, tok = layout(root, name, vocab_size)
    if not (dataset_dir / MANIFEST_NAME).is_file() or not tok.is_file():
        return None
    return DataPaths(dataset_dir, tok, list_shards(dataset_dir, "train"), list_shards(dataset_dir, "val"), name,
                     vocab_size)
