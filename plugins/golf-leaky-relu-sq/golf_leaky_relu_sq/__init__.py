"""golf-leaky-relu-sq: MLP activation leaky_relu(x, 0.5)**2 (PR #549, #1394).

Functional API: ``leaky_relu_squared(x, slope)``, ``LeakyReLUSquared``, ``install_leaky_relu_sq(model, slope)``.
"""
from golf_leaky_relu_sq.activation import LeakyReLUSquared, install_leaky_relu_sq, leaky_relu_squared

__all__ = ["LeakyReLUSquared", "install_leaky_relu_sq", "leaky_relu_squared"]
