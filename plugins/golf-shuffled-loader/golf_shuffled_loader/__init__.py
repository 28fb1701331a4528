"""PR #1394's ShuffledSequenceLoader: per-rank shards, windows sampled without replacement.

Usable without the golf pipeline::

    from golf_shuffled_loader import ShuffledSequenceLoader
    loader = ShuffledSequenceLoader(train_files, rank, world_size, seq_len=2048)  # PCG64(rank)
    x, y = loader.next_batch(local_tokens, 2048)
"""
from .loader import ShuffledSequenceLoader, make_rng

__all__ = ["ShuffledSequenceLoader", "make_rng"]
