"""The rotation: Sylvester Hadamard, orthogonal, exact inverse for every fan-in."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from golf_gptq import block_plan, fwht, rotate, rotate_hessian, rotation_matrix, tensor_signs, unrotate


def test_fwht_is_sylvester_hadamard():
    for n in (1, 2, 8, 64):
        x = torch.randn(5, n, dtype=torch.float64)
        ref = x.numpy() @ scipy.linalg.hadamard(n) / np.sqrt(n)
        assert np.allclose(fwht(x).numpy(), ref, atol=1e-12)
    with pytest.raises(ValueError):
        fwht(torch.zeros(3, 6))


@pytest.mark.parametrize("fan_in,expect", [(512, [512]), (2048, [2048]), (1536, [512, 512, 512]),
                                           (1000, [512, 256, 128, 64, 32, 8]), (777, [512, 256, 8, 1]),
                                           (96, [32, 32, 32]), (8, [8])])
def test_block_plan(fan_in, expect):
    assert block_plan(fan_in) == expect
    assert sum(block_plan(fan_in, max_block=128)) == fan_in
    assert max(block_plan(fan_in, max_block=128)) <= 128


@pytest.mark.parametrize("fan_in", [512, 1536, 2048, 1000, 777])
def test_round_trip_exact(fan_in):
    g = torch.Generator().manual_seed(fan_in)
    W = torch.randn(64, fan_in, generator=g, dtype=torch.float64) * 0.05
    signs = tensor_signs(3, "blocks.0.mlp.fc.weight", fan_in)
    blocks = block_plan(fan_in)
    back = unrotate(rotate(W, signs, blocks), signs, blocks)
    assert float((W - back).norm()) < 1e-6
    # float32 as the decoder runs it (float64 there) stays exact to float precision too
    W32 = W.float()
    assert float((W32 - unrotate(rotate(W32, signs, blocks), signs, blocks)).norm()) < 1e-4


@pytest.mark.parametrize("fan_in", [96, 1000, 512])
def test_dense_R_is_orthogonal_and_matches(fan_in):
    signs = tensor_signs(0, "w", fan_in)
    blocks = block_plan(fan_in)
    R = rotation_matrix(signs, blocks)
    assert torch.allclose(R @ R.T, torch.eye(fan_in, dtype=torch.float64), atol=1e-12)
    W = torch.randn(7, fan_in, dtype=torch.float64)
    assert torch.allclose(rotate(W, signs, blocks), W @ R, atol=1e-12)
    assert torch.allclose(unrotate(W, signs, blocks), W @ R.T, atol=1e-12)
    X = torch.randn(50, fan_in, dtype=torch.float64)
    H = X.T @ X
    assert torch.allclose(rotate_hessian(H, signs, blocks), R.T @ H @ R, atol=1e-9)


def test_signs_depend_on_seed_and_name_only():
    a = tensor_signs(1, "x", 256)
    assert torch.equal(a, tensor_signs(1, "x", 256))
    assert not torch.equal(a, tensor_signs(2, "x", 256)) and not torch.equal(a, tensor_signs(1, "y", 256))
    assert set(a.unique().tolist()) == {-1.0, 1.0}
