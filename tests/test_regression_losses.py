"""The regression losses (MSE, MAE, Huber): hand values, mpmath references, the one rounding of
regression_loss_and_grad, reductions, shapes, names and configs, and Keras 3 side by side."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import reference as ref
from frameworks import need

from logitnet import losses

mpf = mpmath.mpf
CLASSES = (losses.MeanSquaredError, losses.MeanAbsoluteError, losses.Huber)


# --- exact references (mpmath, from the same float inputs) -------------------------------------

def _pointwise(kind: str, e: mpmath.mpf, delta: float) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(value, d value / d y_pred) of one error e = y_pred − y_true, exactly."""
    if kind == "mse":
        return e * e, 2 * e
    if kind == "mae":
        return abs(e), mpmath.sign(e)
    d = mpf(delta)
    if abs(e) <= d:
        return e * e / 2, e
    return d * abs(e) - d * d / 2, d * mpmath.sign(e)


def _exact(kind: str, y_true: np.ndarray, y_pred: np.ndarray, delta: float = 1.0, scale=None):
    """Per-sample mean losses and gradients (times scale_i / units) as mpf lists of lists."""
    n, units = y_pred.shape
    scale = np.ones(n) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), (n,))
    values, grads = [], []
    for i in range(n):
        pairs = [_pointwise(kind, mpf(float(p)) - mpf(float(t)), delta) for p, t in zip(y_pred[i], y_true[i])]
        values.append(mpmath.fsum(v for v, _ in pairs) / units)
        grads.append([g * mpf(float(scale[i])) / units for _, g in pairs])
    return values, grads


KINDS = {"mse": (losses.MeanSquaredError, {}), "mae": (losses.MeanAbsoluteError, {}),
         "huber": (losses.Huber, {}), "huber_delta_0.3": (losses.Huber, {"delta": 0.3})}


def _make(kind: str) -> tuple[losses.Loss, str, float]:
    cls, kwargs = KINDS[kind]
    return cls(**kwargs), kind.split("_")[0], kwargs.get("delta", 1.0)


def _data(dtype, n=40, units=3, seed=0):
    rng = np.random.default_rng(seed)
    # Errors spanning many binades (both Huber branches for any delta used here), some exact zeros.
    y_true = rng.normal(size=(n, units)).astype(dtype)
    low, high = (-3, 1) if dtype == np.float16 else (-6, 2)  # float16 overflows beyond 65504
    y_pred = (y_true.astype(np.float64) + rng.normal(size=(n, units)) * 10.0 ** rng.uniform(low, high, (n, units)))
    y_pred = y_pred.astype(dtype)
    y_pred[::7, 0] = y_true[::7, 0]
    return y_true, y_pred


# --- hand-derived values ------------------------------------------------------------------------

def test_keras_documentation_examples_and_hand_values():
    # Keras' docstring examples: 0.02, 0.5666667, 0.155.
    assert losses.MeanSquaredError()([1.0, 0.0, 1.0], [0.9, 0.1, 0.8]) == pytest.approx(0.02, rel=1e-14)
    assert losses.MeanAbsoluteError()([1.0, 0.3, 1.0], [1.9, 0.3, 1.8]) == pytest.approx(1.7 / 3, rel=1e-14)
    # Huber rows: e = (0.6, −0.6) -> (0.18 + 0.18)/2; e = (0.4, 0.6) -> (0.08 + 0.18)/2.
    np.testing.assert_allclose(losses.huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]), [0.18, 0.13], rtol=1e-14)
    assert losses.Huber()([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]) == pytest.approx(0.155, rel=1e-14)
    # Rows of 2: mse (1 + 4)/2; mae (1 + 2)/2; huber δ=1: 0.5 (e = 1, the boundary) and 1·(2 − 0.5).
    y, p = np.array([[0.0, 0.0]]), np.array([[1.0, -2.0]])
    assert losses.mean_squared_error(y, p) == pytest.approx([2.5], rel=0)
    assert losses.mean_absolute_error(y, p) == pytest.approx([1.5], rel=0)
    assert losses.huber(y, p) == pytest.approx([(0.5 + 1.5) / 2], rel=0)
    # δ = 2, e = −5: 2·(5 − 1) = 8; e = 2 = δ: 2²/2 = 2.
    assert losses.huber([[0.0, 0.0]], [[-5.0, 2.0]], delta=2.0) == pytest.approx([5.0], rel=0)


def test_hand_gradients_including_the_kinks():
    y_pred = np.array([[1.0, -1.0, 0.0, 2.0, -3.0]])
    y_true = np.zeros((1, 5))
    cases = {
        losses.MeanSquaredError(): [2.0, -2.0, 0.0, 4.0, -6.0],
        losses.MeanAbsoluteError(): [1.0, -1.0, 0.0, 1.0, -1.0],  # sign(0) = 0 at a zero error
        losses.Huber(): [1.0, -1.0, 0.0, 1.0, -1.0],  # |e| = δ: quadratic branch, e = ±δ
        losses.Huber(delta=2.5): [1.0, -1.0, 0.0, 2.0, -2.5],
    }
    for loss, want in cases.items():
        value, grad = losses.regression_loss_and_grad(loss, y_pred, y_true, True)
        np.testing.assert_array_equal(grad, np.array([want]) / 5, err_msg=repr(loss))
        assert value.shape == (1,) and value == pytest.approx(loss.call(y_true, y_pred), rel=0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradient_matches_finite_differences(kind):
    loss, _, _ = _make(kind)
    y_true, y_pred = _data(np.float64, n=6, units=4, seed=3)
    y_pred = y_true + np.random.default_rng(4).uniform(-3, 3, y_true.shape)  # away from the kinks
    _, grad = losses.regression_loss_and_grad(loss, y_pred, y_true, True)
    h = 1e-6
    for i, j in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[i, j] += h
        down[i, j] -= h
        numeric = (loss.call(y_true, up)[i] - loss.call(y_true, down)[i]) / (2 * h)
        assert grad[i, j] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


# --- against mpmath -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_values_against_mpmath(kind, dtype):
    loss, name, delta = _make(kind)
    y_true, y_pred = _data(dtype)
    got = loss.call(y_true, y_pred)
    assert got.dtype == dtype and got.shape == (len(y_pred),)
    values, _ = _exact(name, y_true, y_pred, delta)
    bound = ref.F64_ULPS if dtype == np.float64 else ref.HALF_ULP  # float16/32: rounded once
    assert ref.max_ulp_error(got, values, dtype) <= bound
    fn = {"mse": losses.mean_squared_error, "mae": losses.mean_absolute_error}.get(name)
    direct = fn(y_true, y_pred) if fn else losses.huber(y_true, y_pred, delta)
    np.testing.assert_array_equal(direct, got)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("scale", ["one", "number", "rows"])
def test_loss_and_gradient_are_rounded_once(kind, dtype, scale):
    """Gradient within 0.5 ulp of the exact d loss_i / d y_pred · grad_scale_i (float16/32)."""
    loss, name, delta = _make(kind)
    y_true, y_pred = _data(dtype, n=60, seed=1)
    grad_scale = {"one": 1.0, "number": 1 / 60,
                  "rows": np.random.default_rng(2).uniform(0.01, 3.0, 60) / 60}[scale]
    value, grad = losses.regression_loss_and_grad(loss, y_pred, y_true, True, grad_scale)
    assert value.dtype == grad.dtype == dtype and grad.shape == y_pred.shape
    values, grads = _exact(name, y_true, y_pred, delta, grad_scale)
    bound = ref.F64_ULPS if dtype == np.float64 else ref.HALF_ULP
    assert ref.max_ulp_error(value, values, dtype) <= bound
    assert ref.max_ulp_error(grad, [g for row in grads for g in row], dtype) <= bound
    # The float64 value times grad_scale, rounded once, is exactly what comes back.
    _, grad64 = losses.regression_loss_and_grad(loss, y_pred.astype(np.float64), y_true, True, grad_scale)
    np.testing.assert_array_equal(grad, grad64.astype(dtype))
    none_value, none_grad = losses.regression_loss_and_grad(loss, y_pred, y_true, False, grad_scale)
    assert none_grad is None
    np.testing.assert_array_equal(none_value, value)


def test_the_one_rounding_checks_can_fail():
    """Plain float32 arithmetic (error, square, mean; gradient then scale) misses the 0.5 ulp bound
    that the tests above hold the library to, on the same data."""
    y_true, y_pred = _data(np.float32, n=60, seed=1)
    values, grads = _exact("mse", y_true, y_pred)
    naive = np.mean(np.square(y_pred - y_true), axis=-1, dtype=np.float32)
    assert ref.max_ulp_error(naive, values, np.float32) > ref.HALF_ULP
    scale = np.random.default_rng(2).uniform(0.01, 3.0, 60) / 60
    _, grads = _exact("mse", y_true, y_pred, scale=scale)
    _, grad = losses.regression_loss_and_grad(losses.MeanSquaredError(), y_pred, y_true, True)
    twice = grad * scale[:, None].astype(np.float32)  # rounded before the scale, then after
    assert ref.max_ulp_error(twice, [g for row in grads for g in row], np.float32) > ref.HALF_ULP


def test_non_finite_values_propagate():
    y_true = np.zeros((1, 3))
    y_pred = np.array([[np.nan, np.inf, -np.inf]])
    for loss in (losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber()):
        _, grad = losses.regression_loss_and_grad(loss, y_pred[:, :1], y_true[:, :1], True)
        assert np.isnan(grad).all(), loss  # a NaN error has no direction
        value, grad = losses.regression_loss_and_grad(loss, y_pred[:, 1:], y_true[:, 1:], True)
        assert value[0] == np.inf
        assert (np.sign(grad) == [[1, -1]]).all()
    _, grad = losses.regression_loss_and_grad(losses.Huber(0.5), y_pred[:, 1:], y_true[:, 1:], True)
    np.testing.assert_array_equal(grad, [[0.25, -0.25]])  # δ·sign(e)/units


# --- reductions, sample weights, shapes, dtypes -------------------------------------------------

def test_reductions_with_sample_weight():
    y_true = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    y_pred = np.array([[1.0, 3.0], [1.0, 2.0], [0.0, 2.0]])
    per = {"mse": [5.0, 0.5, 2.0], "mae": [2.0, 0.5, 1.0], "huber": [(0.5 + 2.5) / 2, 0.25, 1.5 / 2]}
    w = np.array([2.0, 0.0, 0.5])
    for loss_cls, key in zip(CLASSES, ("mse", "mae", "huber")):
        v = np.array(per[key])
        np.testing.assert_allclose(loss_cls(reduction=None)(y_true, y_pred), v, rtol=1e-15)
        np.testing.assert_allclose(loss_cls(reduction="none")(y_true, y_pred, sample_weight=w), v * w, rtol=1e-15)
        assert loss_cls()(y_true, y_pred) == pytest.approx(v.mean(), rel=1e-15)
        assert loss_cls()(y_true, y_pred, sample_weight=w) == pytest.approx((v * w).sum() / 3, rel=1e-15)
        assert loss_cls(reduction="sum")(y_true, y_pred, sample_weight=w) == pytest.approx((v * w).sum(), rel=1e-15)
        assert loss_cls(reduction="mean_with_sample_weight")(y_true, y_pred, sample_weight=w) \
            == pytest.approx((v * w).sum() / w.sum(), rel=1e-15)
        assert loss_cls()(y_true, y_pred, sample_weight=w[:, None]) == pytest.approx((v * w).sum() / 3, rel=1e-15)


def test_targets_of_shape_n_against_predictions_n_by_1():
    y = np.array([0.5, -1.0, 2.0], np.float32)
    p = np.array([[1.0], [1.0], [-1.0]], np.float32)
    for loss in (losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(0.7)):
        np.testing.assert_array_equal(loss.call(y, p), loss.call(y[:, None], p))
        np.testing.assert_array_equal(loss.call(p, y), loss.call(p, y[:, None]))  # and the reverse
        assert loss(y, p) == loss(y[:, None], p)
        a = losses.regression_loss_and_grad(loss, p, y, True, 0.5)
        b = losses.regression_loss_and_grad(loss, p, y[:, None], True, 0.5)
        for x, z in zip(a, b):
            np.testing.assert_array_equal(x, z)
    with pytest.raises(ValueError, match=r"y_true of shape \(3,\) does not match y_pred of shape \(3, 2\)"):
        losses.mean_squared_error(y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="does not match"):
        losses.Huber()(np.zeros((4, 1)), p)
    # 1-D against 1-D: Keras' mean over the last (only) axis, a scalar.
    assert losses.mean_squared_error([0.0, 0.0], [1.0, 3.0]) == pytest.approx(5.0, rel=0)


def test_dtypes():
    y, p = np.zeros((2, 2)), np.full((2, 2), 1 / 3, np.float32)
    assert losses.mean_squared_error(y, p).dtype == np.float32
    assert losses.mean_squared_error(y, p.astype(np.float64)).dtype == np.float64
    assert losses.mean_absolute_error(y, p, dtype="float64").dtype == np.float64
    assert losses.Huber(dtype="float64").call(y, p).dtype == np.float64
    assert losses.MeanSquaredError(dtype="float16")(y, p).dtype == np.float16
    assert losses.mean_squared_error([[0, 1]], [[1, 1]]).dtype == np.float64  # integers: float64
    value, grad = losses.regression_loss_and_grad(losses.MeanSquaredError(dtype="float64"), p, y, True)
    assert value.dtype == grad.dtype == np.float32  # y_pred's dtype, as the head works in


def test_bad_arguments_are_refused():
    for bad in (0, -1.0, math.inf, math.nan, True, "1", None, 10**400):
        with pytest.raises(ValueError, match="delta must be a finite number > 0"):
            losses.Huber(delta=bad)
        with pytest.raises(ValueError, match="delta must be a finite number > 0"):
            losses.huber([[0.0]], [[1.0]], delta=bad)
    assert losses.Huber(np.float32(0.5)).delta == 0.5
    p = np.zeros((2, 1))
    with pytest.raises(TypeError, match="MeanSquaredError, MeanAbsoluteError or Huber"):
        losses.regression_loss_and_grad(losses.BinaryCrossentropy(), p, p, True)
    with pytest.raises(ValueError, match=r"grad_scale must be a number or an array of shape \(2,\)"):
        losses.regression_loss_and_grad(losses.MeanSquaredError(), p, p, True, np.ones(3))
    with pytest.raises(ValueError, match="2-D array"):
        losses.regression_loss_and_grad(losses.MeanSquaredError(), np.zeros(2), np.zeros(2), True)


# --- names, aliases, configs --------------------------------------------------------------------

def test_function_and_class_aliases_are_the_same_objects():
    assert losses.mse is losses.MSE is losses.mean_squared_error
    assert losses.mae is losses.MAE is losses.mean_absolute_error
    assert losses.BinaryCrossEntropy is losses.BinaryCrossentropy
    assert losses.CategoricalCrossEntropy is losses.CategoricalCrossentropy
    assert losses.SparseCategoricalCrossEntropy is losses.SparseCategoricalCrossentropy
    for name, cls in (("BinaryCrossEntropy", losses.BinaryCrossentropy),
                      ("CategoricalCrossEntropy", losses.CategoricalCrossentropy),
                      ("SparseCategoricalCrossEntropy", losses.SparseCategoricalCrossentropy)):
        assert type(losses.get(name)) is cls


@pytest.mark.parametrize("name, cls", [
    ("mean_squared_error", losses.MeanSquaredError), ("mse", losses.MeanSquaredError),
    ("MSE", losses.MeanSquaredError), ("MeanSquaredError", losses.MeanSquaredError),
    ("mean_absolute_error", losses.MeanAbsoluteError), ("mae", losses.MeanAbsoluteError),
    ("MAE", losses.MeanAbsoluteError), ("MeanAbsoluteError", losses.MeanAbsoluteError),
    ("huber", losses.Huber), ("huber_loss", losses.Huber), ("Huber", losses.Huber)])
def test_get_by_every_keras_spelling(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls and loss.reduction == "sum_over_batch_size"
    assert type(losses.get(loss.name)) is cls  # the default name finds the class again


def test_defaults_and_config_round_trips():
    assert losses.MeanSquaredError().get_config() == {"name": "mean_squared_error",
                                                      "reduction": "sum_over_batch_size", "dtype": None}
    assert losses.MeanAbsoluteError().name == "mean_absolute_error"
    h = losses.Huber()
    assert (h.name, h.delta, h.reduction) == ("huber_loss", 1.0, "sum_over_batch_size")
    for loss in (losses.MeanSquaredError(reduction="sum", name="m", dtype="float64"),
                 losses.MeanAbsoluteError(reduction=None), losses.Huber(0.25, "mean", "h", "float32")):
        config = loss.get_config()
        again = type(loss).from_config(config)
        assert again.get_config() == config
        via_get = losses.get({"class_name": type(loss).__name__, "config": config})
        assert type(via_get) is type(loss) and via_get.get_config() == config
    assert losses.Huber(0.25).get_config()["delta"] == 0.25
    # Keras 3's own Huber config has no delta (nor dtype): the defaults fill in.
    assert losses.get({"class_name": "Huber", "config": {"name": "huber_loss",
                                                         "reduction": "sum_over_batch_size"}}).delta == 1.0


# --- Keras 3 side by side -----------------------------------------------------------------------

KERAS_CASES = [("mean_squared_error", {}), ("mean_absolute_error", {}), ("huber", {}),
               ("huber", {"delta": 0.25}), ("huber", {"delta": 3.0})]


def _keras_fn(keras, name):
    return getattr(keras.losses, name)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name, kwargs", KERAS_CASES)
def test_functions_values_and_gradients_match_keras(name, kwargs):
    keras = need("keras")
    import torch

    y_true, y_pred = _data(np.float32, n=50, units=3, seed=5)
    ours = getattr(losses, name)(y_true, y_pred, **kwargs)
    p = torch.tensor(y_pred, requires_grad=True)
    theirs = _keras_fn(keras, name)(torch.tensor(y_true), p, **kwargs)
    assert ours.dtype == np.float32 and tuple(theirs.shape) == ours.shape
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=2e-6, atol=1e-30)
    # Keras' gradient of the mean batch loss against regression_loss_and_grad with scale 1/n.
    theirs.mean().backward()
    loss = {"mean_squared_error": losses.MeanSquaredError, "mean_absolute_error": losses.MeanAbsoluteError,
            "huber": losses.Huber}[name](**kwargs)
    _, grad = losses.regression_loss_and_grad(loss, y_pred, y_true, True, 1 / len(y_pred))
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=2e-6, atol=1e-30)
    # (n,) targets against (n, 1) predictions, as Keras' squeeze_or_expand_to_same_rank.
    ours = getattr(losses, name)(y_true[:, 0], y_pred[:, :1], **kwargs)
    theirs = _keras_fn(keras, name)(torch.tensor(y_true[:, 0]), torch.tensor(y_pred[:, :1]), **kwargs)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=2e-6, atol=1e-30)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", None])
@pytest.mark.parametrize("cls_name", ["MeanSquaredError", "MeanAbsoluteError", "Huber"])
def test_classes_reductions_match_keras(cls_name, reduction):
    keras = need("keras")
    y_true, y_pred = _data(np.float32, n=30, units=2, seed=6)
    w = np.random.default_rng(7).uniform(0, 2, 30).astype(np.float32)
    ours, theirs = getattr(losses, cls_name)(reduction=reduction), getattr(keras.losses, cls_name)(reduction=reduction)
    assert ours.name == theirs.name
    for weight in (None, w):
        got = ours(y_true, y_pred, sample_weight=weight)
        want = keras.ops.convert_to_numpy(theirs(y_true, y_pred, sample_weight=weight))
        np.testing.assert_allclose(got, want, rtol=1e-5)
    keys = ("name", "reduction")
    assert {k: ours.get_config()[k] for k in keys} == {k: theirs.get_config()[k] for k in keys}


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_keras_names_resolve_to_the_same_losses():
    keras = need("keras")
    import inspect

    y_true, y_pred = _data(np.float32, n=8, units=2, seed=8)
    for name in ("mean_squared_error", "mse", "MSE", "MeanSquaredError", "mean_absolute_error", "mae",
                 "MAE", "MeanAbsoluteError", "huber", "Huber"):
        theirs = keras.losses.get(name)
        if inspect.isclass(theirs):
            theirs = theirs()
        want = keras.ops.convert_to_numpy(theirs(y_true, y_pred))
        got = losses.get(name)(y_true, y_pred)
        np.testing.assert_allclose(got, np.mean(want), rtol=1e-6)  # Keras' functions: per sample
    sig = inspect.signature(keras.losses.Huber)
    assert sig.parameters["delta"].default == inspect.signature(losses.Huber).parameters["delta"].default
    assert inspect.signature(keras.losses.huber).parameters["delta"].default == 1.0
