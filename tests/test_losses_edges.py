"""Edges of the Keras-style losses that mutation testing found unguarded: ranks 1 and 3, the
(n, 1) forms of targets, weights and ignore_class labels, the class axis, dtype=, float64 means,
config lookups and the base classes (each against a float64 formula written here)."""

from __future__ import annotations

import numpy as np
import pytest

from logitnet import losses

P = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])


def _bce(y, p):
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def test_binary_targets_and_predictions_of_neighbouring_ranks():
    p = np.array([[0.9, 0.2, 0.6], [0.3, 0.5, 0.99]])
    y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    expected = _bce(y, p)  # (2, 3): one value per (sample, position), the last axis of size 1 averaged away
    # targets (2, 3) for predictions (2, 3, 1), and targets (2, 3, 1) for predictions (2, 3)
    np.testing.assert_allclose(losses.binary_crossentropy(y, p[..., None]), expected, rtol=1e-15)
    np.testing.assert_allclose(losses.binary_crossentropy(y[..., None], p), expected.mean(axis=-1), rtol=1e-15)
    # targets (4, 1) for predictions (4,): one sample of 4 labels, so one mean
    np.testing.assert_allclose(losses.binary_crossentropy(y[0, :, None], p[0]), expected[0].mean(), rtol=1e-15)
    # rank 1 on both sides: the mean over the last (only) axis, a scalar as in Keras
    value = losses.binary_crossentropy([1.0, 0.0], [0.8, 0.4])
    assert np.ndim(value) == 0 and value == pytest.approx((-np.log(0.8) - np.log(0.6)) / 2, rel=1e-15)


def test_float32_binary_crossentropy_means_in_float64():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.99, (300, 7)).astype(np.float32)
    y = rng.uniform(0.0, 1.0, (300, 7))
    got = losses.binary_crossentropy(y, p)
    elementwise = _bce(y, p.astype(np.float64)).astype(np.float32)  # each rounded once
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, elementwise.astype(np.float64).mean(axis=-1).astype(np.float32))


def test_categorical_crossentropy_with_the_class_axis_elsewhere():
    rng = np.random.default_rng(8)
    p = rng.uniform(0.05, 1.0, (2, 4, 3))
    p /= p.sum(axis=1, keepdims=True)  # classes on axis 1
    y = np.zeros_like(p)
    y[0, 1, :] = 1.0
    y[1, 3, :] = 1.0
    y[1, 3, 2], y[1, 0, 2] = 0.5, 0.5
    expected = -(y * np.log(p)).sum(axis=1)  # (2, 3)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p, axis=1), expected, rtol=1e-15)
    np.testing.assert_allclose(losses.CategoricalCrossentropy(axis=1, reduction=None)(y, p), expected, rtol=1e-15)
    # label smoothing over the 4 classes of axis 1, not the 3 of the last axis
    smoothed = y * 0.9 + 0.1 / 4
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p, label_smoothing=0.1, axis=1),
                               -(smoothed * np.log(p)).sum(axis=1), rtol=1e-14)


def test_dtype_argument_sets_the_computation_dtype():
    y = np.array([1, 0])
    got = losses.categorical_crossentropy(np.eye(3)[y], P, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (-np.log(P.astype(np.float32).astype(np.float64)[[0, 1], y]))
                                  .astype(np.float32))
    value = losses.SparseCategoricalCrossentropy(dtype="float32")(y, P)
    assert value.dtype == np.float32
    assert value == pytest.approx((-np.log(0.7) - np.log(0.5)) / 2, rel=1e-6)


def test_sample_weights_of_shape_n_by_1_and_of_rank_3():
    y = np.array([1, 0])
    per_sample = -np.log([0.7, 0.5])
    loss = losses.SparseCategoricalCrossentropy(reduction="sum")
    assert loss(y, P, sample_weight=[[0.3], [2.0]]) == pytest.approx(0.3 * per_sample[0] + 2.0 * per_sample[1],
                                                                     rel=1e-15)
    # per-sample losses (2, 3) from a (2, 3, 4) batch, weights (2, 3, 1)
    rng = np.random.default_rng(9)
    p = rng.uniform(0.05, 1.0, (2, 3, 4))
    p /= p.sum(axis=-1, keepdims=True)
    labels = rng.integers(0, 4, (2, 3))
    w = rng.uniform(0.0, 2.0, (2, 3, 1))
    values = -np.log(np.take_along_axis(p, labels[..., None], axis=-1)[..., 0])
    got = losses.SparseCategoricalCrossentropy(reduction="sum")(labels, p, sample_weight=w)
    assert got == pytest.approx((values * w[..., 0]).sum(), rel=1e-14)
    # weights (2, 1) broadcast over the (2, 3) losses: one weight per row
    got = losses.SparseCategoricalCrossentropy(reduction="sum")(labels, p, sample_weight=w[:, :1, 0])
    assert got == pytest.approx((values * w[:, :1, 0]).sum(), rel=1e-14)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(3,\) does not match the per-sample losses "
                                         r"of shape \(2,\)"):
        loss(y, P, sample_weight=[1.0, 2.0, 3.0])


def test_ignore_class_with_labels_of_shape_n_by_1():
    y = np.array([[1], [2], [0]])
    p = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
    got = losses.SparseCategoricalCrossentropy(ignore_class=2)(y, p)
    assert got == pytest.approx((-np.log(0.7) - np.log(0.5)) / 2, rel=1e-15)  # the mean over the kept two


def test_ignore_class_with_rank_3_predictions():
    rng = np.random.default_rng(10)
    p = rng.uniform(0.05, 1.0, (2, 3, 4))
    p /= p.sum(axis=-1, keepdims=True)
    labels = np.array([[0, 3, 1], [3, 2, 3]])
    values = -np.log(np.take_along_axis(p, labels[..., None], axis=-1)[..., 0])
    kept = labels != 3
    got = losses.SparseCategoricalCrossentropy(ignore_class=3)(labels, p)
    assert got == pytest.approx(values[kept].mean(), rel=1e-14)


def test_get_a_loss_from_a_config_without_its_config():
    loss = losses.get({"class_name": "BinaryCrossentropy"})
    assert isinstance(loss, losses.BinaryCrossentropy) and loss.get_config() == losses.BinaryCrossentropy().get_config()
    with pytest.raises(ValueError, match=r"unknown loss config \{'class_name': 'Hinge'\}"):
        losses.get({"class_name": "Hinge"})
    with pytest.raises(ValueError, match=r"unknown loss config \{'config': \{\}\}"):
        losses.get({"config": {}})


def test_repr_and_the_abstract_bases():
    assert repr(losses.SparseCategoricalCrossentropy(ignore_class=3)) == (
        "SparseCategoricalCrossentropy(name='sparse_categorical_crossentropy', "
        "reduction='sum_over_batch_size', dtype=None, from_logits=False, ignore_class=3)")
    with pytest.raises(TypeError, match=r"^Loss does not define call\(\)$"):
        losses.Loss()([0], [[1.0]])
    with pytest.raises(TypeError, match=r"^a concrete loss sets `function`$"):
        losses._SmoothedCrossentropy()([0], [[1.0]])
