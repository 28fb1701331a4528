"""golf-skip-gates: sigmoid-gated U-Net skips (PR #1394).

Functional API: ``SigmoidGatedSkips(num_skips, dim)``, ``install_skip_gates(model)``.
"""
from golf_skip_gates.gates import SigmoidGatedSkips, install_skip_gates

__all__ = ["SigmoidGatedSkips", "install_skip_gates"]
