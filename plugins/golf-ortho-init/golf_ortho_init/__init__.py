"""golf-ortho-init: orthogonal init of the large linear layers (``orthogonal_(gain=1)``).

Functional API (usable without golf): ``orthogonal_init(model, min_dim=64, gain=1.0)``.
"""
from golf_ortho_init.ortho import eligible_linears, orthogonal_init

__all__ = ["eligible_linears", "orthogonal_init"]
