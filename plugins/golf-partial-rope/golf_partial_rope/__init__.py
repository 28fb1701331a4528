"""golf-partial-rope: rotary embedding on the first ``rope_dims`` dims of each head (16 of 64 in PR #1394).

Functional API: ``install_partial_rope(model, rope_dims)``, ``scaled_rope_dims(...)``.
"""
from golf_partial_rope.rope import REFERENCE_HEAD_DIM, install_partial_rope, scaled_rope_dims

__all__ = ["REFERENCE_HEAD_DIM", "install_partial_rope", "scaled_rope_dims"]
