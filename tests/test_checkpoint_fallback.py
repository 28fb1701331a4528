"""Issue 16 (5): a corrupt latest checkpoint falls back to the previous good one; --resume takes
a run folder or a checkpoint folder; torch's weights_only advice never reaches the user."""
from __future__ import annotations

import pytest
import torch

from golf_core.errors import GolfError
from golf_core.train.checkpoint import load_checkpoint, resolve_resume, save_checkpoint


class NotATensor:
    """Anything a weights_only load refuses."""


def _two_checkpoints(run):
    root = run / "checkpoints"
    for step in (2, 4):
        save_checkpoint(root, step, {"step": step}, shared={"w": torch.full((3,), float(step))})
    return root


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    root = _two_checkpoints(tmp_path / "run")
    assert resolve_resume(tmp_path / "run") == (tmp_path / "run", root / "step_0000004")
    (root / "step_0000004" / "shared.pt").write_bytes(b"\0" * 100)
    said = []
    run_dir, ckpt = resolve_resume(tmp_path / "run", log=said.append)
    assert (run_dir, ckpt) == (tmp_path / "run", root / "step_0000002")
    assert said[0].startswith(f"skipping a corrupt checkpoint: checkpoint file '{root / 'step_0000004' / 'shared.pt'}' is unreadable")
    assert load_checkpoint(ckpt)[1]["w"].tolist() == [2.0, 2.0, 2.0]
    assert resolve_resume(root)[1] == root / "step_0000002"  # the checkpoint root works too


def test_a_named_checkpoint_folder_must_load(tmp_path):
    root = _two_checkpoints(tmp_path / "run")
    assert resolve_resume(root / "step_0000002") == (tmp_path / "run", root / "step_0000002")
    (root / "step_0000004" / "rank0.pt").unlink()
    with pytest.raises(GolfError, match="rank0.pt' is missing"):
        resolve_resume(root / "step_0000004")
    with pytest.raises(GolfError, match="^--resume .*nowhere: no such run directory or checkpoint$"):
        resolve_resume(tmp_path / "nowhere")


def test_no_weights_only_advice(tmp_path):
    root = _two_checkpoints(tmp_path / "run")
    torch.save({"evil": NotATensor()}, root / "step_0000004" / "rank0.pt")
    torch.save({"evil": NotATensor()}, root / "step_0000002" / "rank0.pt")
    with pytest.raises(GolfError) as e:
        resolve_resume(tmp_path / "run")
    msg = str(e.value)
    assert "holds objects other than tensors and plain values, which golf refuses to load" in msg
    assert "weights_only=False" not in msg and "\n" not in msg
