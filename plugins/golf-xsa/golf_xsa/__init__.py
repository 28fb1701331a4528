"""golf-xsa: exclusive self attention on the last N layers (11 = all in PR #1394).

Functional API: ``exclusive_self_attention(y, v)``, ``ExclusiveSelfAttention``,
``install_xsa(model, last_n)``.
"""
from golf_xsa.xsa import ExclusiveSelfAttention, exclusive_self_attention, install_xsa, xsa_layers

__all__ = ["ExclusiveSelfAttention", "exclusive_self_attention", "install_xsa", "xsa_layers"]
