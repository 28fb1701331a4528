"""Per-group compression of a golf QuantizedModel (#1855): ``pack_pergroup(qm, backend)`` /
``unpack_pergroup(blob)``, the greedy L1 row order ``similarity_order(rows)``, the backends."""
from .backends import BACKENDS, backend_compress, backend_decompress, check_backend
from .codec import pack_pergroup, unpack_pergroup
from .simsort import similarity_order

__version__ = "0.1.0"
__all__ = ["BACKENDS", "backend_compress", "backend_decompress", "check_backend", "pack_pergroup",
           "similarity_order", "unpack_pergroup"]
