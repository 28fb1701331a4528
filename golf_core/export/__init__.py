"""``golf export``: one self-contained ``train_gpt.py`` per run, and the records folder around it.

Modules (one concept each). The first five ride along in every script (a run imports the
first four through ``ship_run``; ``runtime`` is the script's entry); the others serve
``golf export`` only and are never shipped:

* ``imports``     static import edges of a module (``ast``, nothing imported);
* ``bundle``      which modules a run used, and their sources;
* ``script``      the script text: embedded sources + finder + recipe, optionally lzma+base85;
* ``runtime``     what the script runs: registers the plugins in-process, runs the pipeline;
* ``shipping``    ``ship_run(ctx)``: a run's code bytes = the size of its exported script;
* ``runs``, ``rebuild``, ``requirements``, ``submission``, ``readme``, ``folder``: the records
  folder; ``isolate``: an interpreter without golf, to prove a script needs none.
"""
from __future__ import annotations

from ..errors import GolfError


class ExportError(GolfError):
    """A run directory or module that cannot be exported."""
