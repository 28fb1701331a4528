"""The core decoder: dtypes from the template, shape/name checks, unknown codecs, plugin decoders."""
from __future__ import annotations

import pytest
import torch

from golf_core.errors import ArtifactError
from golf_core.quant import QuantizedModel, decode_entry, dequantize


def qm_example() -> QuantizedModel:
    qm = QuantizedModel()
    qm.add("w", {"codec": "per_row", "dtype": "float32"},
           q=torch.tensor([[1, -2], [3, 4]], dtype=torch.int8), scale=torch.tensor([0.5, 0.25]).half())
    qm.add("v", {"codec": "per_tensor", "dtype": "float32"},
           q=torch.tensor([1, 2, -3], dtype=torch.int8), scale=torch.tensor(0.1))
    qm.add("r", {"codec": "raw", "dtype": "bfloat16"}, data=torch.tensor([1.5, 2.5]).half())
    return qm


def test_decode_by_hand():
    out = dequantize(qm_example())
    assert torch.equal(out["w"], torch.tensor([[0.5, -1.0], [0.75, 1.0]]))
    assert torch.allclose(out["v"], torch.tensor([0.1, 0.2, -0.3]))
    assert out["r"].dtype == torch.bfloat16 and torch.equal(out["r"].float(), torch.tensor([1.5, 2.5]))


def test_template_dtype_and_checks():
    tpl = {"w": torch.zeros(2, 2, dtype=torch.bfloat16), "v": torch.zeros(3), "r": torch.zeros(2)}
    out = dequantize(qm_example(), template=tpl)
    assert out["w"].dtype == torch.bfloat16 and out["r"].dtype == torch.float32
    with pytest.raises(ArtifactError, match=r"'w' has shape \(2, 2\), the model expects \(4,\)"):
        dequantize(qm_example(), template={**tpl, "w": torch.zeros(4)})
    with pytest.raises(ArtifactError, match="missing \\['extra'\\]"):
        dequantize(qm_example(), template={**tpl, "extra": torch.zeros(1)})
    part = dequantize(qm_example(), template={"w": tpl["w"]}, strict=False)
    assert set(part) == {"w", "v", "r"}


def test_unknown_codec_names_tensor_and_codec():
    qm = qm_example()
    qm.entries["w"]["codec"] = "hadamard_per_row"
    with pytest.raises(ArtifactError, match="'w' uses codec 'hadamard_per_row'.*plugin"):
        dequantize(qm)


def test_plugin_decoder():
    qm = qm_example()
    qm.entries["w"]["codec"] = "negated"

    def neg(name, entry, tensors):
        return -decode_entry(name, {**entry, "codec": "per_row"}, tensors)

    out = dequantize(qm, decoders={"negated": neg})
    assert torch.equal(out["w"], -torch.tensor([[0.5, -1.0], [0.75, 1.0]]))


def test_missing_stored_tensor():
    qm = qm_example()
    del qm.tensors["w.scale"]
    with pytest.raises(ArtifactError, match="'w': its 'scale' tensor"):
        dequantize(qm)
