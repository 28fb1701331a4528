"""One audit process: post-training runs of a recipe, each on its own data folder on disk.

``python -m golf_core.check.worker JOB.json`` (started by ``golf_core.check.api``). The job
names the resolved recipe, the trained weights and stash, or an artifact and the stash left
after it was written (``eval`` runs: decode and scoring only), the plugins to load
(entry points, plus in-process registrations by ``module:qualname``), the watched targets, and
a list of runs in the order to do them. Every run is a real run of the post-training pipeline:
a fresh context on the recipe with ``[data] dataset_dir`` pointed at the run's folder (the
validation shards there hold the stream to score, flipped or not, the training shards are
links to the real ones), pre-quant, quantization, compression into the run's ``artifact.bin``,
decode, and scoring of the stream read back from disk. Nothing tells a run whether it is the
reported run or a probe: same recipe, same folder layout, same watched rows.

The audit hook (``golf_core.check.opens``) is installed before any plugin is imported. Each
run's results go to its ``out_dir``: ``outcome.npz`` (nll, coverage, watched rows) and
``outcome.json`` (ledger, violations, normalization, validation reads, file opens, artifact
payload hash, byte counts, timings, result).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from .opens import Recorder


def _registry(refs: list[list[str]]):
    from ..plugins import PluginRegistry

    reg = PluginRegistry.discover()
    for name, ref, version in refs:
        mod_name, _, qual = ref.partition(":")
        obj: Any = importlib.import_module(mod_name)
        for part in filter(None, qual.split(".")):
            obj = getattr(obj, part)
        if isinstance(obj, type):
            obj = obj()
        reg.add(name, obj, version)
    return reg


def _payload_sha(path: Path) -> str:
    from ..quant.artifact import read_artifact

    art = read_artifact(path)
    return hashlib.sha256(art.codec.encode() + b"\0" + bytes(art.payload)).hexdigest()


def _save_stash(path: Path, stash: Any) -> None:
    """The stash's picklable values (a file handle cannot travel)."""
    import io

    import torch

    keep = {}
    for k, v in stash.items():
        try:
            torch.save(v, io.BytesIO())
            keep[k] = v
        except Exception:  # noqa: BLE001 - unpicklable: left out
            pass
    torch.save(keep, path)


def run_job(job: dict[str, Any]) -> None:
    """Do every run of ``job`` in order (see the module docstring)."""
    holder: dict[str, Any] = {"E": None}

    def where() -> tuple[str, Any]:
        E = holder["E"]
        c = getattr(E, "last_ctx", None) if E is not None else None
        return (c.phase, c.current_plugin) if c is not None else ("setup", None)

    rec = Recorder(frozenset(job["val_names"]), frozenset(job["train_names"]), where).start()
    for p in reversed(job.get("sys_path", [])):
        if p not in sys.path:
            sys.path.insert(0, p)
    import numpy as np
    import torch

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    from ..run import make_context
    from ..recipe import validate_recipe_data
    from ..stash import Stash
    from .posttrain import PostTraining, Trained

    reg = _registry(job.get("plugins", []))
    blob = torch.load(job["trained"], weights_only=False) if job.get("trained") else None
    post = torch.load(job["post_stash"], weights_only=False) if job.get("post_stash") else None
    watch = [int(t) for t in job.get("watch", [])]
    for run in job["runs"]:
        whole = run.get("mode", "whole") == "whole" and blob is not None
        data = json.loads(json.dumps(job["recipe"]))
        data.setdefault("data", {}).update(dataset_dir=run["data_dir"], tokenizer_path=job["tokenizer_path"])
        data.setdefault("eval", {})["batch_tokens"] = int(run["batch_tokens"])
        recipe = validate_recipe_data(data, "check worker")
        recipe.tiny = bool(job.get("tiny"))
        out = Path(run["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        rec.events = []
        ctx = make_context(recipe, out, reg=reg, echo=False)
        with rec.sanctioned():
            _ = ctx.data, ctx.luts
        if whole:
            stash = Stash()
            for k, v in blob["stash"].items():
                stash[k] = v
            trained = Trained(blob["state"], stash, blob.get("steps", 0), blob.get("train_seconds", 0.0))
            E = PostTraining(ctx, out / ".work", trained=trained)
        else:
            E = PostTraining(ctx, out / ".work", artifact=Path(job["artifact"]))
            if post is not None:
                E.post_stash = Stash()
                for k, v in post.items():
                    E.post_stash[k] = v
        holder["E"] = E
        t0 = time.time()
        try:
            o = E(None, watch, artifact_path=out / "artifact.bin" if whole else None, log=ctx.log)
            err = None
            if whole and E.post_stash is not None:
                _save_stash(out / "post_stash.pt", E.post_stash)
        except Exception as e:  # noqa: BLE001 - a run that breaks is evidence, not a crash of the check
            o, err = None, f"{type(e).__name__}: {e}"
        seconds = time.time() - t0
        info: dict[str, Any] = {"id": run["id"], "mode": "whole" if whole else "eval", "error": err, "seconds": seconds, "opens": list(rec.events)}
        if o is not None:
            res = o.info["result"]
            art = Path(o.info["artifact_path"])
            info.update(aborted=o.aborted, adapter=o.info.get("adapter"), batch_seqs=o.info.get("batch_seqs"),
                        ledger=o.info["ledgers"].get(0, []), norm=o.info["norm"].as_dict(),
                        violations=[[v.kind, v.message] for v in o.info["violations"]],
                        reads=o.info["reads"], unrecorded_loads=o.info["unrecorded_loads"],
                        eval_seconds=o.info.get("eval_seconds"), artifact_seconds=o.info.get("artifact_seconds"),
                        model_bytes=o.info.get("model_bytes") or (art.stat().st_size if art.is_file() else None),
                        payload_sha256=_payload_sha(art) if art.is_file() else None,
                        result={"val_loss": res.val_loss, "val_bpb": res.val_bpb, "tokens": res.tokens,
                                "bytes": res.bytes, "coverage_ok": res.coverage_ok})
            rows = sorted(o.rows)
            np.savez(out / "outcome.npz", nll=o.nll, coverage=o.coverage, row_ids=np.array(rows, dtype=np.int64),
                     rows=np.stack([o.rows[k] for k in rows]) if rows else np.zeros((0, 0)))
        (out / "outcome.json").write_text(json.dumps(info, default=str))
        ctx.log.close()
        holder["E"] = None
        del E, ctx
    rec.stop()


def main(argv: list[str]) -> int:
    """Entry point: ``python -m golf_core.check.worker JOB.json``."""
    run_job(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
