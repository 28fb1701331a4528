"""golf: a plugin framework for Parameter Golf research.

Public API for plugin authors: ``hookimpl``, ``Options``, ``TechniqueInfo``, ``StashKey``,
``GolfError``. See CONTRIBUTING.md.
"""
from .errors import GolfError
from .hookspecs import hookimpl
from .options import NoOptions, Options
from .stash import Stash, StashKey
from .technique import TechniqueInfo

__version__ = "0.1.0"

__all__ = ["GolfError", "hookimpl", "NoOptions", "Options", "Stash", "StashKey", "TechniqueInfo", "__version__"]
