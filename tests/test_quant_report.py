"""The per-tensor quantization report."""
from __future__ import annotations

import json
import math

import torch

from golf_core.quant import quant_report, quantize_state_dict_intk, write_quant_report
from golf_core.quant.report import code_entropy_bits


def test_entropy_by_hand():
    q = torch.tensor([0, 0, 1, 1, 1, 1, -1, 2], dtype=torch.int8)
    p = [2 / 8, 4 / 8, 1 / 8, 1 / 8]
    assert abs(code_entropy_bits(q) - -sum(x * math.log2(x) for x in p)) < 1e-12
    assert code_entropy_bits(torch.zeros(10, dtype=torch.int8)) == 0.0


def test_report_fields(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {"a.weight": torch.randn(300, 300, generator=g), "b": torch.randn(10, generator=g)}
    qm = quantize_state_dict_intk(sd, keep_float_max_numel=100)
    rep = quant_report(qm, sd, compressor="zlib")
    rows = {r["name"]: r for r in rep["tensors"]}
    a = rows["a.weight"]
    assert a["bits"] == 6 and a["numel"] == 90000 and a["stored_bytes"] == 90000 + 600
    assert 0 < a["compressed_bytes"] < a["stored_bytes"]
    deq = qm.tensors["a.weight.q"].double() * qm.tensors["a.weight.scale"].double()[:, None]
    ref_err = (deq - sd["a.weight"].double()).norm() / sd["a.weight"].double().norm()
    assert abs(a["rel_err"] - float(ref_err)) < 1e-9
    assert rows["b"]["codec"] == "raw" and rows["b"]["bits"] is None
    write_quant_report(tmp_path / "q.json", rep)
    assert json.loads((tmp_path / "q.json").read_text())["total"]["numel"] == 90010
