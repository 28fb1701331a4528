"""golf-parallel-residuals: attention and MLP read the same stream, or two lanes (#1412, #1477, #1529).

Functional API (usable without golf): ``GPTJTrunk``, ``SplitLaneTrunk``, ``RoutedLaneTrunk``
(``golf_core.api.Trunk`` subclasses for ``model.trunk``) and ``install_parallel(model, mode, start)``.
"""
from golf_parallel_residuals.trunks import MODES, SKIP_PLACEMENTS, GPTJTrunk, RoutedLaneTrunk, SplitLaneTrunk, install_parallel

__all__ = ["GPTJTrunk", "MODES", "RoutedLaneTrunk", "SKIP_PLACEMENTS", "SplitLaneTrunk", "install_parallel"]
