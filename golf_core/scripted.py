"""Switches whose value a compact exported script knows (``golf_core.export.compact``).

Outside a script each one is what it says here, and nothing is dropped. Inside a compact
``train_gpt.py`` the tree-shaker replaces them by their value for the run
(``golf_core.export.shake``: ``if NAME:`` keeps one branch), so the features a script never
reaches are not counted in its code bytes:

* ``IN_SCRIPT``: True inside a script, which never resumes from a checkpoint and shows no
  progress bars (it logs lines, as the records do);
* ``SCRIPT_CHECKPOINTS``: False inside a script exported from a run that wrote no
  checkpoints (``[train] checkpoint_every = 0``); such a script refuses to checkpoint;
* ``AUDITED``: False inside every script: the bookkeeping only ``golf check`` reads (the audit
  reruns golf, never a script) is not kept there: the eval session's violations, watched rows,
  largest |logsumexp| and rows checked, ``eval_ledger.jsonl`` (the ledger itself stays: plugins
  certify it), and ``manifest.json``'s ``git`` and ``data`` (shard hashes) entries;
* ``FOLDED``: True inside a script whose code was specialized to its recipe's values
  (``golf_core.export.fold``); such a script refuses ``--set`` but of the keys it never
  folds (``NEVER_FOLDED``: seed, data, device settings; ``refused_override``).
"""
from typing import Iterable, Optional

IN_SCRIPT = False
AUDITED = True
SCRIPT_CHECKPOINTS = True
#: Recipe keys a script never folds: they follow the machine, the seed or the data folder.
NEVER_FOLDED = ("train.device", "train.compile", "train.cpu_threads", "train.seed", "model.dtype",
                "model.attention_backend", "model.fused_kernels", "data.", "meta.", "check.")
FOLDED = False


def refused_override(overrides: Iterable[str], folded: Optional[bool] = None) -> Optional[str]:
    """The key of the first ``KEY=VALUE`` override a folded script refuses (any but the
    ``NEVER_FOLDED`` keys: its code may no longer read the value), else None. ``folded``
    defaults to ``FOLDED``."""
    for o in overrides if (FOLDED if folded is None else folded) else ():
        key = o.split("=", 1)[0].strip()
        if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in NEVER_FOLDED):
            return key
    return None
