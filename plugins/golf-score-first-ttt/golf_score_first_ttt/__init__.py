"""Legal score-first chunked test-time training (#549 / #1413): score a chunk of the validation
stream with the current weights, then train on exactly those (already scored) tokens; the last
chunk is never trained on. Every event goes into the session's score/update ledger.

Usable without golf (with any session exposing ``chunks``, ``score``, ``update_tokens``)::

    from golf_score_first_ttt import TTTConfig, score_first_ttt, certify_ledger
"""
from .ledger import certify_ledger
from .hash_embed import HashEmbedTransform, bigram_index, install_hash_embedding, remove_hash_embedding
from .ngram_tilt import NgramMixer, StreamTilt, TiltConfig, tilt_rows
from .ttt import TTTConfig, TTTStats, chunk_lr, score_first_ttt, split_sequences, train_on_tokens

__all__ = ["certify_ledger", "HashEmbedTransform", "NgramMixer", "StreamTilt", "TiltConfig", "TTTConfig", "TTTStats",
           "bigram_index", "chunk_lr", "install_hash_embedding", "remove_hash_embedding", "score_first_ttt",
           "split_sequences", "tilt_rows", "train_on_tokens"]
