"""``golf export``: one self-contained ``train_gpt.py`` per run, and the records folder around it.

Modules (one concept each; only the first four are imported by a run, so only they are
shipped in the scripts):

* ``imports``     static import edges of a module (``ast``, nothing imported);
* ``bundle``      which modules a run used and their sources;
* ``script``      the script text: embedded sources + finder + recipe, optionally lzma+base85;
* ``runtime``     what the script runs: registers the plugins in-process, runs the pipeline;
* ``shipping``    ``ship_run(ctx)``: the pipeline's code bytes = the exported script's size;
* ``requirements``, ``readme``, ``submission``, ``folder``: the records folder (``golf export``).
"""
from __future__ import annotations

from ..errors import GolfError


class ExportError(GolfError):
    """A run directory or module that cannot be exported."""
