"""``golf export RUN_DIR --out DIR``: the records folder of a run (or of its seed runs).

DIR gets ``train_gpt.py`` (the run's compact script, see ``golf_core.export.compact``; the
one its code bytes counted), ``prepare_data.py`` (builds or checks the dataset; not counted),
``README.md``, ``submission.json``, ``requirements.txt`` and ``train_seed<N>.log`` per seed.
With several seeds the script embeds the lowest seed's recipe; the others are
``--seed N`` away (the recipes may differ only in ``train.seed``).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import ExportError
from .bundle import ModuleSource, collect_sources, third_party_imports, tree_for
from .compact import PREP_ENTRY, build_compact
from .readme import readme_text
from .rebuild import rebuild_script
from .requirements import COMPACT_REQUIREMENTS, requirements_text
from .runs import read_runs
from .submission import SubmissionInfo, submission_json

SCRIPT = "train_gpt.py"
#: Data preparation (demo corpus, tokenizer training, download): beside the script, not counted.
PREP_SCRIPT = "prepare_data.py"


@dataclass
class ExportReport:
    """What an export wrote."""

    out_dir: Path
    files: list[str]
    code_bytes: int
    recorded_code_bytes: Optional[int]
    exact: bool
    modules: int
    seeds: list[int]
    warnings: list[str] = field(default_factory=list)


def export_runs(run_dir: Path, out_dir: Path, compress: bool = True, info: Optional[SubmissionInfo] = None,
                allow_changed_code: bool = False, readable: bool = False) -> ExportReport:
    """Write the records folder for the run (or seed runs) at ``run_dir`` into ``out_dir``.

    ``train_gpt.py`` is the compact script the run counted; ``readable`` (or ``compress=False``
    for plain source) writes the readable bundle of whole modules instead, for review."""
    runs = read_runs(Path(run_dir))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory")
    if out.resolve() in {r.run_dir.resolve() for r in runs}:
        raise ExportError(f"{out}: is a run directory; export into another folder")
    rebuilt = rebuild_script(runs[0], compress=compress, allow_changed_code=allow_changed_code, readable=readable)
    warnings = list(rebuilt.warnings)
    for r in runs[1:]:
        if r.code and runs[0].code and r.code.get("modules") != runs[0].code.get("modules"):
            warnings.append(f"{r.run_dir}: used other modules or module versions than {runs[0].run_dir}")
    out.mkdir(parents=True, exist_ok=True)
    code_bytes = rebuilt.code_bytes
    (out / SCRIPT).write_bytes(rebuilt.script.encode("utf-8"))

    tree = rebuilt.tree or tree_for(rebuilt.plugins, {})
    prep = build_compact(tree, runs[0].recipe_toml, rebuilt.plugins, entry=PREP_ENTRY, stubs={})
    (out / PREP_SCRIPT).write_bytes(prep.script.encode("utf-8"))
    if rebuilt.compact is not None:  # what the two compact scripts' code imports
        code = {**prep.modules, **rebuilt.compact.modules}
        shaken = [ModuleSource(m, tree.get(m).path, c, tree.get(m).is_package) for m, c in sorted(code.items())]
        requirements = requirements_text(third_party_imports(shaken, tree, as_given=True), COMPACT_REQUIREMENTS)
    else:
        requirements = requirements_text(third_party_imports(collect_sources(sorted({*rebuilt.modules, *prep.modules}),
                                                                             tree), tree))
    (out / "requirements.txt").write_text(requirements)

    sub = submission_json(runs, code_bytes, info)
    (out / "submission.json").write_text(json.dumps(sub, indent=2) + "\n")
    (out / "README.md").write_text(readme_text(runs, sub, code_bytes, compress, codec=rebuilt.codec,
                                               compact=rebuilt.compact is not None, prep_script=PREP_SCRIPT))
    files = [SCRIPT, PREP_SCRIPT, "README.md", "submission.json", "requirements.txt"]
    for r in runs:
        if r.train_log is not None:
            name = f"train_seed{r.seed}.log"
            shutil.copyfile(r.train_log, out / name)
            files.append(name)
    return ExportReport(out, files, code_bytes, rebuilt.recorded_bytes, rebuilt.exact, len(rebuilt.modules),
                        [r.seed for r in runs], warnings)
