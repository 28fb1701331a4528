"""``golf export``: one self-contained ``train_gpt.py`` per run, and the records folder around it.

Modules (one concept each). ``runtime`` (or ``lean``), ``shipping`` and ``prepared`` ride along (tree-shaken)
in every compact script; the others serve ``golf export`` only:

* ``shake``       tree-shaking: the definitions (and methods) reached from an entry (``ast``);
* ``compact``     the compact script a run counts: shaken, stripped of prose (``strip``), minified (python-minifier),
                  smaller of lzma/brotli + base85; and ``prepare_data.py``;
* ``strip``       the prose a compact script drops (docstrings, descriptions, error English);
* ``imports``     static import edges of a module (``ast``, nothing imported);
* ``bundle``      which modules a run used, and their sources (the readable bundle);
* ``script``      the readable bundle's text: whole sources + finder + recipe, optionally lzma+base85;
* ``runtime``     what a script runs: registers the plugins in-process, runs the pipeline
                  (``main``), or prepares the data (``prepare_main``);
* ``driver``      the compact script's driver baked for its recipe (validation and activation at export);
* ``lean``        inside a compact script: the baked recipe, hook table and ``main`` that stand in for
                  pydantic's ``Recipe``/``Result``, pluggy's ``activate`` and ``runtime.main``;
* ``prepared``    inside a script: the dataset prepare_data.py built;
* ``shipping``    ``ship_run(ctx)``: a run's code bytes = the size of its compact script;
* ``runs``, ``rebuild``, ``requirements``, ``submission``, ``readme``, ``folder``: the records
  folder; ``isolate``: an interpreter without golf, to prove a script needs none.
"""
from __future__ import annotations

from ..errors import GolfError


class ExportError(GolfError):
    """A run directory or module that cannot be exported."""
