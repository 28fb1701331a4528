"""One run of a recipe: the driver (:class:`Run`, the only place that knows the phase order),
the phases' building blocks and the one schema of ``result.json`` (:class:`Result`).

* ``driver``    :class:`Run` and :func:`run_recipe`;
* ``setup``     the run's context (plugins, distributed state, device, log), a run directory's recipe;
* ``build``     the model a recipe describes;
* ``scoring``   eval sessions and the scorer;
* ``artifact``  ``artifact.bin``: write (quantize, compress) and decode into a fresh model;
* ``manifest``  ``manifest.json``;
* ``result``    ``result.json`` (:class:`Result`) and the legality summary.
"""
from .artifact import artifact_for, load_artifact_into_fresh_model, write_artifact
from .build import build_model, count_params
from .driver import Run, run_recipe
from .manifest import manifest
from .result import Legality, Result, legality_summary
from .scoring import evaluate, make_session
from ..rundir import load_run_recipe
from .setup import make_context

__all__ = [
    "Legality", "Result", "Run", "artifact_for", "build_model", "count_params", "evaluate",
    "legality_summary", "load_artifact_into_fresh_model", "load_run_recipe", "make_context", "make_session",
    "manifest", "run_recipe", "write_artifact",
]
