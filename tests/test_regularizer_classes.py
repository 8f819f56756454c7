"""Keras 3's regularizer classes L1, L2, L1L2: hand values, gradients, configs, get(), and Keras."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from frameworks import need

from logitnet import regularizers
from logitnet.layers import Dense
from logitnet.regularizers import L1, L1L2, L2, Regularizer

W = np.array([[1.0, -2.0], [3.0, 0.0]])  # Σ|w| = 6, Σw² = 14


def test_defaults_are_keras_3s():
    assert (L1().l1, L1().l2) == (0.01, 0.0)
    assert (L2().l1, L2().l2) == (0.0, 0.01)
    assert (L1L2().l1, L1L2().l2) == (0.0, 0.0)
    assert (L1(None).l1, L2(None).l2, L1L2(None, None).l1) == (0.01, 0.01, 0.0)  # as Keras
    # The functions keep their factors: l1_l2() is TF 2.x's, 0.01 each.
    assert (regularizers.l1().l1, regularizers.l2().l2) == (0.01, 0.01)
    assert (regularizers.l1_l2().l1, regularizers.l1_l2().l2) == (0.01, 0.01)


def test_penalties_by_hand_and_called_as_keras():
    cases = [(L1(0.1), 0.1 * 6), (L2(0.1), 0.1 * 14), (L1L2(0.1, 0.2), 0.1 * 6 + 0.2 * 14),
             (L1L2(), 0.0), (regularizers.l2(0.5), 7.0), (Regularizer(l1=0.25), 1.5)]
    for reg, want in cases:
        assert isinstance(reg, Regularizer)
        assert reg.penalty(W) == pytest.approx(want, rel=1e-15)
        assert reg(W) == reg.penalty(W)
        assert reg(W.tolist()) == reg.penalty(W)  # any array-like, as Keras converts
    assert L2(2.0)(np.ones((5, 5), np.float32)) == 50.0  # Keras' docstring example
    assert L1(0.01)(np.full((5, 5), 2.0)) == pytest.approx(0.5, rel=1e-15)


def test_gradients_by_hand_and_by_finite_differences():
    for reg, want in ((L1(0.1), 0.1 * np.sign(W)), (L2(0.1), 0.2 * W),
                      (L1L2(0.1, 0.3), 0.1 * np.sign(W) + 0.6 * W)):
        grad = np.full_like(W, 0.5)
        reg.add_gradient(W, grad)
        np.testing.assert_allclose(grad, 0.5 + want, rtol=1e-15)
        assert grad[1, 1] == 0.5  # w = 0: sign(0) = 0, no l1 pull (and no l2)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    reg, h = L1L2(0.03, 0.07), 1e-6
    grad = np.zeros_like(w)
    reg.add_gradient(w, grad)
    for idx in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[idx] += h
        down[idx] -= h
        assert grad[idx] == pytest.approx((reg(up) - reg(down)) / (2 * h), rel=1e-6)


def test_configs_stay_flat_and_round_trip():
    for reg in (L1(0.3), L2(0.2), L1L2(0.1, 0.4), regularizers.l1_l2(), Regularizer(0.5, 0.0)):
        config = reg.get_config()
        assert config == {"l1": reg.l1, "l2": reg.l2}  # the model file's form, for every class
        again = type(reg).from_config(config)
        assert type(again) is type(reg) and again.get_config() == config
        back = regularizers.get(config)  # the flat dict the model file stores
        assert back.get_config() == config and isinstance(back, Regularizer)
    # Keras' own configs: L1 {"l1": x}, L2 {"l2": x}.
    assert L2.from_config({"l2": 0.1}).get_config() == {"l1": 0.0, "l2": 0.1}
    assert L1.from_config({"l1": 0.2}).l1 == 0.2
    with pytest.raises(ValueError, match=r"L2 config has unexpected keys \['l1'\]"):
        L2.from_config({"l1": 0.1, "l2": 0.1})  # an l1 penalty an L2 cannot carry
    with pytest.raises(ValueError, match="unexpected keys"):
        L1L2.from_config({"l1": 0.1, "l3": 0.0})
    assert Dense(3, kernel_regularizer=L2(0.1)).get_config()["kernel_regularizer"] == {"l1": 0.0, "l2": 0.1}
    assert repr(L1L2(0.1, 0.2)) == "L1L2(l1=0.1, l2=0.2)" and repr(L2(0.5)) == "L2(l2=0.5)"


def test_get_accepts_keras_names_dicts_and_classes():
    for name, cls, factors in (("L1", L1, (0.01, 0.0)), ("L2", L2, (0.0, 0.01)), ("L1L2", L1L2, (0.0, 0.0)),
                               ("l1", L1, (0.01, 0.0)), ("l2", L2, (0.0, 0.01)), ("l1_l2", L1L2, (0.01, 0.01))):
        reg = regularizers.get(name)
        assert type(reg) is cls and (reg.l1, reg.l2) == factors, name
    reg = regularizers.get({"class_name": "L2", "config": {"l2": 0.1}})
    assert type(reg) is L2 and reg.l2 == 0.1
    keras_file_form = {"module": "keras.regularizers", "class_name": "L1L2",
                       "config": {"l1": 0.01, "l2": 0.02}, "registered_name": None}
    assert regularizers.get(keras_file_form).get_config() == {"l1": 0.01, "l2": 0.02}
    assert regularizers.get({"class_name": "L1", "config": {}}).l1 == 0.01
    assert type(regularizers.get(L2)) is L2
    same = L1(0.2)
    assert regularizers.get(same) is same and regularizers.get(None) is None
    with pytest.raises(ValueError, match="unknown regularizer class_name 'Orthogonal'"):
        regularizers.get({"class_name": "Orthogonal", "config": {}})
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        regularizers.get("l3")


def test_bad_factors_are_refused():
    for bad in (-0.1, math.inf, math.nan, "0.1"):
        for make in (lambda v: L1(v), lambda v: L2(v), lambda v: L1L2(l1=v), lambda v: L1L2(l2=v)):
            with pytest.raises(ValueError, match="must be finite and >= 0"):
                make(bad)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_match_keras():
    keras = need("keras")
    import torch

    for name in ("L1", "L2", "L1L2"):
        ours, theirs = inspect.signature(getattr(regularizers, name)), inspect.signature(getattr(keras.regularizers, name))
        assert {k: p.default for k, p in ours.parameters.items()} == \
            {k: p.default for k, p in theirs.parameters.items()}, name
    w = np.random.default_rng(1).normal(size=(5, 4))
    w[0, 0] = 0.0
    # Factors exact in float32: Keras' L1 keeps its factor as a float32 tensor (0.05 becomes 0.05000000075).
    for ours, theirs in ((L1(0.0625), keras.regularizers.L1(0.0625)), (L2(0.375), keras.regularizers.L2(0.375)),
                         (L1L2(0.03125, 0.75), keras.regularizers.L1L2(0.03125, 0.75))):
        t = torch.tensor(w, requires_grad=True)
        value = theirs(t)
        assert ours(w) == pytest.approx(value.item(), rel=1e-14)
        value.backward()
        grad = np.zeros_like(w)
        ours.add_gradient(w, grad)
        np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-14, atol=0)
        # Keras' serialized form reads back, and ours (flat, both keys) is Keras-constructible.
        back = regularizers.get(keras.regularizers.serialize(theirs))
        assert type(back) is type(ours) and back.get_config() == ours.get_config()
        assert keras.regularizers.L1L2(**ours.get_config())(t).item() == pytest.approx(ours(w), rel=1e-14)
