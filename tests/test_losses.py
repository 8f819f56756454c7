"""Keras semantics of the loss classes and functions: golden values, reductions, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from logitnet import losses
from logitnet.ops import InfiniteLossWarning
from logitnet.ops.naive import naive_softmax

# Values from the examples in Keras' own documentation (3 decimals there).
BCE_TRUE = [[0.0, 1.0], [0.0, 0.0]]
BCE_PRED = [[0.6, 0.4], [0.4, 0.6]]
CCE_TRUE = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
CCE_PRED = [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]


def test_binary_crossentropy_keras_examples():
    bce = losses.BinaryCrossentropy()
    assert bce(BCE_TRUE, BCE_PRED) == pytest.approx(0.815, abs=5e-4)
    assert bce(BCE_TRUE, BCE_PRED, sample_weight=[1, 0]) == pytest.approx(0.458, abs=5e-4)
    assert losses.BinaryCrossentropy(reduction="sum")(BCE_TRUE, BCE_PRED) == pytest.approx(1.630, abs=5e-4)
    np.testing.assert_allclose(losses.BinaryCrossentropy(reduction=None)(BCE_TRUE, BCE_PRED),
                               [0.916, 0.714], atol=5e-4)
    # Hand-derived: −(log 0.4 + log 0.4) / 2 and −(log 0.6 + log 0.4) / 2.
    np.testing.assert_allclose(losses.binary_crossentropy(BCE_TRUE, BCE_PRED),
                               [-np.log(0.4), -(np.log(0.6) + np.log(0.4)) / 2], rtol=1e-15)
    logits = [-18.6, 0.51, 2.94, -12.8]
    value = losses.BinaryCrossentropy(from_logits=True)([0.0, 1.0, 0.0, 0.0], logits)
    assert value == pytest.approx(0.865, abs=5e-4)
    true = ref.mpmath.fsum(ref.bce(z, t)[0] for z, t in zip(logits, [0.0, 1.0, 0.0, 0.0])) / 4
    assert ref.ulp_error(value, true, np.float64) <= ref.F64_ULPS


def test_categorical_and_sparse_keras_examples():
    cce = losses.CategoricalCrossentropy()
    scce = losses.SparseCategoricalCrossentropy()
    for loss, y in ((cce, CCE_TRUE), (scce, [1, 2])):
        assert loss(y, CCE_PRED) == pytest.approx(1.177, abs=5e-4)
        assert loss(y, CCE_PRED, sample_weight=np.array([0.3, 0.7])) == pytest.approx(0.814, abs=5e-4)
    np.testing.assert_allclose(losses.categorical_crossentropy(CCE_TRUE, CCE_PRED),
                               [-np.log(0.95), -np.log(0.1)], rtol=1e-15)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy([[1], [2]], CCE_PRED),
                               [-np.log(0.95), -np.log(0.1)], rtol=1e-15)


def test_from_logits_matches_probabilities_in_ordinary_cases_and_beats_them_in_extreme_ones():
    z = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = [0, 2]
    # From the logits: the exact loss (mpmath). From the probabilities: −log p as given, so the
    # probabilities' own rounding (a few ulps) is what separates the two.
    from_logits = losses.sparse_categorical_crossentropy(y, z, from_logits=True)
    assert ref.max_ulp_error(from_logits, [ref.softmax_xent(z[i], y[i])[0] for i in range(2)],
                             np.float64) <= ref.F64_ULPS
    true_of_p = [-ref.mpmath.log(ref.mpf(float(p[i, y[i]]))) for i in range(2)]
    assert ref.max_ulp_error(losses.sparse_categorical_crossentropy(y, p), true_of_p, np.float64) <= 1.0
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y, p), from_logits, rtol=1e-14)
    z = np.array([[200.0, 0.0]], np.float32)
    probs = naive_softmax(z)  # [1, e^-200]: e^-200 underflows, so float32 holds exactly [1, 0]
    np.testing.assert_array_equal(probs, [[1.0, 0.0]])
    assert losses.sparse_categorical_crossentropy([0], probs)[0] == 0.0  # truth: e^-200
    assert losses.sparse_categorical_crossentropy([0], z, from_logits=True)[0] == 0.0  # below float32
    z40 = np.array([[40.0, 0.0]], np.float32)
    assert losses.sparse_categorical_crossentropy([0], naive_softmax(z40))[0] == 0.0
    exact = losses.sparse_categorical_crossentropy([0], z40, from_logits=True)
    assert exact[0] > 0 and ref.ulp_error(exact[0], ref.softmax_xent(z40[0], 0)[0], np.float32) <= ref.HALF_ULP
    assert losses.sparse_categorical_crossentropy([1], z, from_logits=True)[0] == 200.0
    with pytest.warns(InfiniteLossWarning, match="from_logits=True"):
        wrong = losses.sparse_categorical_crossentropy([1], probs)
    assert wrong[0] == np.inf  # the truth is 200; Keras clips p to 1e-7 and reports 16.1


def test_probability_checks():
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\], got 3.0.*from_logits=True"):
        losses.CategoricalCrossentropy()(CCE_TRUE, [[3.0, -2.0, 0.0], [0.1, 0.8, 0.1]])
    # 0·log(0) is 0: a zero probability where the label has no mass is fine.
    assert losses.binary_crossentropy([[1.0, 0.0]], [[1.0, 0.0]])[0] == 0.0


def test_label_smoothing():
    # Keras' smoothing, y·(1 − ls) + ls/C (categorical) and y·(1 − ls) + ls/2 (binary), then the
    # cross-entropy of the smoothed labels: against mpmath from the smoothed labels.
    y = np.array([[0.0, 1.0, 0.0]])
    z = np.array([[0.3, 2.0, -1.0]])
    smoothed = y * (1 - 0.2) + 0.2 / 3
    got = losses.categorical_crossentropy(y, z, from_logits=True, label_smoothing=0.2)
    assert ref.ulp_error(got[0], ref.softmax_xent_soft(z[0], smoothed[0])[0], np.float64) <= ref.F64_ULPS
    got = losses.binary_crossentropy([[1.0, 0.0]], [[2.0, -3.0]], from_logits=True, label_smoothing=0.1)
    t = np.array([1.0, 0.0]) * (1 - 0.1) + 0.1 / 2  # 0.9500000000000001 and 0.05 as floats
    true = (ref.bce(2.0, t[0])[0] + ref.bce(-3.0, t[1])[0]) / 2
    assert ref.ulp_error(got[0], true, np.float64) <= ref.F64_ULPS
    # The smoothing moves the loss: unsmoothed, it is that of the hard labels.
    hard = losses.categorical_crossentropy(y, z, from_logits=True)
    assert ref.ulp_error(hard[0], ref.softmax_xent(z[0], 1)[0], np.float64) <= ref.F64_ULPS
    with pytest.raises(ValueError, match="label_smoothing must lie in"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)


def test_binary_target_ranks_and_dtypes():
    pred = np.array([[0.2], [0.7]], np.float32)
    a = losses.binary_crossentropy([0.0, 1.0], pred)
    b = losses.binary_crossentropy([[0.0], [1.0]], pred)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2,) and a.dtype == np.float32
    p = [ref.mpf(float(v)) for v in pred[:, 0]]  # −log(1 − p) for target 0, −log p for target 1
    assert ref.max_ulp_error(a, [-ref.mpmath.log1p(-p[0]), -ref.mpmath.log(p[1])], np.float32) <= ref.HALF_ULP
    assert losses.BinaryCrossentropy()([0.0, 1.0], pred).dtype == np.float32
    assert losses.BinaryCrossentropy()([0.0, 1.0], pred.astype(np.float64)).dtype == np.float64
    assert losses.BinaryCrossentropy(dtype="float64")([0.0, 1.0], pred).dtype == np.float64


def test_ignore_class_drops_entries_from_the_mean():
    z = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    per = losses.sparse_categorical_crossentropy([0, 1, -1], z, from_logits=True, ignore_class=-1)
    true = [ref.softmax_xent(z[0], 0)[0], ref.softmax_xent(z[1], 1)[0]]
    assert per[2] == 0.0
    assert ref.max_ulp_error(per[:2], true, np.float64) <= ref.F64_ULPS
    # The mean over the two entries kept (Keras), not over all three.
    assert ref.ulp_error(loss([0, 1, -1], z), (true[0] + true[1]) / 2, np.float64) <= ref.F64_ULPS


def test_reductions_and_sample_weights():
    z = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    y = [1, 1, 0]
    per = losses.sparse_categorical_crossentropy(y, z, from_logits=True)
    true = [ref.softmax_xent(z[i], y[i])[0] for i in range(3)]  # log1p(e^-1), 3 + log1p(e^-3), log 2
    assert ref.max_ulp_error(per, true, np.float64) <= ref.F64_ULPS
    w = np.array([2.0, 0.0, 1.5])  # Σw = 3.5 differs from n = 3, so the two means differ
    weighted = [t * ref.mpf(wi) for t, wi in zip(true, w)]
    true_sum = ref.mpmath.fsum(weighted)  # 2·log1p(e^-1) + 1.5·log 2
    make = lambda r: losses.SparseCategoricalCrossentropy(from_logits=True, reduction=r)  # noqa: E731
    tol = ref.F64_ULPS
    assert ref.ulp_error(make("sum")(y, z, w), true_sum, np.float64) <= tol
    assert ref.ulp_error(make("sum_over_batch_size")(y, z, w), true_sum / 3, np.float64) <= tol
    # Keras 3: Σ w·loss / Σ w.
    assert ref.ulp_error(make("mean_with_sample_weight")(y, z, w), true_sum / ref.mpf(3.5), np.float64) <= tol
    assert ref.max_ulp_error(make(None)(y, z, w), weighted, np.float64) <= tol
    assert ref.ulp_error(make("sum")(y, z, 0.5), ref.mpmath.fsum(true) / 2, np.float64) <= tol
    with pytest.raises(ValueError, match="sample_weight of shape"):
        make("sum")(y, z, [1.0, 2.0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        make("average")


def test_config_round_trip_and_lookup():
    for loss in (losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1, reduction="sum"),
                 losses.CategoricalCrossentropy(axis=-1, name="cce"),
                 losses.SparseCategoricalCrossentropy(ignore_class=3, dtype="float64")):
        config = loss.get_config()
        clone = type(loss).from_config(config)
        assert clone.get_config() == config
        assert losses.get({"class_name": type(loss).__name__, "config": config}).get_config() == config
    assert isinstance(losses.get("sparse_categorical_crossentropy"), losses.SparseCategoricalCrossentropy)
    assert losses.get("binary_crossentropy").from_logits is False
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.get("hinge")


def test_shape_errors_name_the_fix():
    with pytest.raises(ValueError, match="use sparse_categorical_crossentropy"):
        losses.categorical_crossentropy([1, 2], CCE_PRED)
    with pytest.raises(ValueError, match="use categorical_crossentropy"):
        losses.sparse_categorical_crossentropy(CCE_TRUE[0], CCE_PRED)
