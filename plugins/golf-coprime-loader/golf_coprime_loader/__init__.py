"""The coprime-stride multi-shard training loader of PR #1060 (after #726).

Usable without the golf pipeline::

    from golf_coprime_loader import CoprimeLoader
    loader = CoprimeLoader(train_files, rank, world_size)     # seed: FNV hash of the paths
    x, y = loader.next_batch(local_tokens, seq_len)
    state = loader.state_dict()                                # exact resume
"""
from .cursor import Cursor, max_phase, new_cursor, pick_coprime_stride, walk_blocks
from .loader import PROGRESS_BATCHES, CoprimeLoader
from .seed import FNV_PRIME, hash_strings, path_hash_seed

__all__ = [
    "CoprimeLoader", "PROGRESS_BATCHES", "Cursor", "new_cursor", "pick_coprime_stride", "walk_blocks",
    "max_phase", "path_hash_seed", "hash_strings", "FNV_PRIME",
]
