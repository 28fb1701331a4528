"""Switches whose value a compact exported script knows (``golf_core.export.compact``).

Outside a script each one is what it says here, and nothing is dropped. Inside a compact
``train_gpt.py`` the tree-shaker replaces them by their value for the run
(``golf_core.export.shake``: ``if NAME:`` keeps one branch), so the features a script never
reaches are not counted in its code bytes:

* ``IN_SCRIPT``: True inside a script, which never resumes from a checkpoint and shows no
  progress bars (it logs lines, as the records do);
* ``SCRIPT_CHECKPOINTS``: False inside a script exported from a run that wrote no
  checkpoints (``[train] checkpoint_every = 0``); such a script refuses to checkpoint.
"""

IN_SCRIPT = False
SCRIPT_CHECKPOINTS = True
