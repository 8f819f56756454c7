"""Optional: agreement with PyTorch on ordinary logits, and where PyTorch rounds to 0 (needs the
`compare` extra; see tests/frameworks.py)."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from frameworks import need
from logitnet import ops

pytestmark = pytest.mark.compare
torch = need("torch")
F = torch.nn.functional


def _torch_loss_grad(fn, z, y):
    t = torch.tensor(z, requires_grad=True)
    loss = fn(t, torch.tensor(y), reduction="none")
    loss.sum().backward()
    return loss.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_agrees_with_torch_on_ordinary_logits(dtype):
    rng = np.random.default_rng(11)
    z = rng.normal(0, 2, (64, 10)).astype(dtype)
    y = rng.integers(0, 10, 64)
    loss_t, grad_t = _torch_loss_grad(F.cross_entropy, z, y)
    loss, grad = ops.softmax_cross_entropy(z, y)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(loss, loss_t, rtol=rtol)
    np.testing.assert_allclose(grad, grad_t, rtol=rtol, atol=1e-7 if dtype == np.float32 else 1e-16)
    t = rng.normal(0, 2, (64, 3)).astype(dtype)
    target = rng.uniform(0, 1, (64, 3)).astype(dtype)
    loss_t, grad_t = _torch_loss_grad(F.binary_cross_entropy_with_logits, t, target)
    loss, grad = ops.sigmoid_binary_cross_entropy(t, target)
    np.testing.assert_allclose(loss, loss_t, rtol=rtol)
    np.testing.assert_allclose(grad, grad_t, rtol=rtol, atol=1e-7 if dtype == np.float32 else 1e-16)


def test_torch_returns_zero_where_the_loss_is_not():
    z = np.array([[67.0, 0.0, 0.0]], np.float32)
    loss_t, grad_t = _torch_loss_grad(F.cross_entropy, z, np.array([0]))
    loss, grad = ops.softmax_cross_entropy(z, [0])
    truth, truth_grad = ref.softmax_xent(z[0], 0)
    assert loss_t[0] == 0.0 and grad_t[0, 0] == 0.0
    assert ref.ulp_error(loss[0], truth, np.float32) <= 0.5
    assert ref.ulp_error(grad[0, 0], truth_grad[0], np.float32) <= 0.5
