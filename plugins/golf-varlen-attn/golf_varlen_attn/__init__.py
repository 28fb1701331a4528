"""Document-masked (VarLen) attention and the document-packing loader of PR #1530; usable without golf.

::

    loader = DocumentPackingLoader(train_files, rank, world_size, bos_id=1)
    x, y = loader.next_batch(local_tokens, seq_len)      # one packed row [1, local_tokens]
    model.set_document_mask(DocumentMask(bos_id=1, max_len=seq_len))
    loss = model(x, y)                                   # attention stays inside documents
"""
from .loader import DocumentPackingLoader

__all__ = ["DocumentPackingLoader"]
