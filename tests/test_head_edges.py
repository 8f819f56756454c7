"""Edges of the fused head that mutation testing found unguarded: the refusals and what they
tell the user, target checks, class_of, label smoothing for sigmoid outputs, reductions, the
float64 sums of a batch's loss, soft labels with sample weights, and pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import reference as ref
from logitnet import losses, ops
from logitnet.head import Head

SCCE, CCE, BCE = losses.SparseCategoricalCrossentropy, losses.CategoricalCrossentropy, losses.BinaryCrossentropy


# --- construction ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation, units, loss, message", [
    ("softmax", 1, SCCE(), r"SparseCategoricalCrossentropy needs at least 2 output units: a softmax over one "
     r"unit always outputs 1\. For a binary task use Dense\(1, activation='sigmoid'\) with "
     r"BinaryCrossentropy, or Dense\(2, activation='softmax'\)"),
    ("softmax", 3, SCCE(ignore_class=0), r"ignore_class is supported by the loss functions but not in "
     r"model training; drop those samples or give them sample_weight=0"),
    ("softmax", 3, losses.Loss(), r"unsupported loss Loss\(.*\): logitnet trains with the cross-entropies"),
    ("softmax", 3, CCE(axis=1), r"CategoricalCrossentropy\(axis=1\) is not supported in a model; use axis=-1"),
    ("sigmoid", 2, BCE(axis=0), r"BinaryCrossentropy\(axis=0\) is not supported in a model"),
    ("softmax", 3, CCE(reduction="none"), r"reduction must be 'sum_over_batch_size' or 'sum', got 'none'"),
    ("softmax", 3, CCE(from_logits=True), r"CategoricalCrossentropy\(from_logits=True\) after a softmax "
     r"output: the layer already outputs probabilities, not logits; use Dense\(n_classes, "
     r"activation='softmax'\) with from_logits=False, or activation='linear' with from_logits=True"),
    ("linear", 2, BCE(), r"BinaryCrossentropy\(from_logits=False\) expects probabilities, but the last layer "
     r"is linear and outputs logits; use activation='sigmoid' with from_logits=False, or "
     r"activation='linear' with from_logits=True"),
    ("relu", 2, BCE(), r"BinaryCrossentropy cannot follow a 'relu' output layer; use activation='sigmoid'"),
])
def test_refused_pairings_name_the_problem_and_the_fix(activation, units, loss, message):
    with pytest.raises(ValueError, match=message):
        Head(activation, units, loss)


def test_task_and_the_mean_reduction():
    assert Head("sigmoid", 1, BCE()).task == "binary"
    assert Head("sigmoid", 2, BCE()).task == "multilabel"
    assert Head("softmax", 2, SCCE()).task == "multiclass"
    # reduction="mean" is Keras' alias of "sum_over_batch_size": accepted, and a mean.
    z = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    y = np.array([1, 0, 1])
    per_sample, _ = ops.softmax_cross_entropy(z, y)
    total, grad = Head("softmax", 2, SCCE(reduction="mean")).batch(z, y, None)
    assert total == pytest.approx(per_sample.mean(), rel=1e-15)
    total, _ = Head("softmax", 2, SCCE(reduction="sum")).batch(z, y, None)
    assert total == pytest.approx(per_sample.sum(), rel=1e-15)


# --- targets --------------------------------------------------------------------------------

@pytest.mark.parametrize("units, loss, y, message", [
    (3, SCCE(), np.array(["a", "b"]), r"^y must be numeric \(class indices or 0/1 targets\), got dtype "
     r"<U1; map string labels to integers first$"),
    (3, SCCE(), np.array(1), r"^x has 2 samples but y has a scalar$"),
    (3, SCCE(), np.array([0, 1, 2]), r"^x has 2 samples but y has 3$"),
    (3, SCCE(), np.eye(3)[:2], r"^SparseCategoricalCrossentropy expects integer class labels of shape \(n,\) "
     r"or \(n, 1\), got shape \(2, 3\); these look one-hot: use CategoricalCrossentropy, or y\.argmax\(axis=1\)$"),
    (3, SCCE(), np.zeros((2, 3, 1)), r"^SparseCategoricalCrossentropy expects integer class labels of shape "
     r"\(n,\) or \(n, 1\), got shape \(2, 3, 1\)$"),  # not 2-D: no one-hot hint
    (3, SCCE(), np.zeros((2, 4)), r"got shape \(2, 4\)$"),  # 4 columns for 3 units: no hint either
    (3, CCE(), np.array([0, 2]), r"^CategoricalCrossentropy expects one-hot \(or probability\) rows of shape "
     r"\(n, 3\), got integer labels of shape \(n,\): use SparseCategoricalCrossentropy$"),
    (3, CCE(), np.eye(2), r"^CategoricalCrossentropy expects targets of shape \(n, 3\), got \(2, 2\)$"),
    (3, CCE(), np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]), r"row 0 sums to 1\.5"),
    (1, BCE(), np.zeros((2, 2)), r"^BinaryCrossentropy with 1 sigmoid output\(s\) expects targets of shape "
     r"\(n, 1\) or \(n,\), got \(2, 2\)$"),
    (2, BCE(), np.zeros((2, 2, 1)), r"^BinaryCrossentropy with 2 sigmoid output\(s\) expects targets of "
     r"shape \(n, 2\), got \(2, 2, 1\)$"),
    (2, BCE(), np.array([[0.0, 1.0], [1.0, 1.5]]), r"^binary targets must lie in \[0, 1\], got 1\.5$"),
])
def test_bad_targets_are_refused_with_what_is_wrong(units, loss, y, message):
    activation = "sigmoid" if isinstance(loss, BCE) else "softmax"
    with pytest.raises(ValueError, match=message):
        Head(activation, units, loss).check_targets(y, 2, np.float32)


def test_checked_targets_take_the_model_dtype():
    rows = Head("softmax", 3, CCE()).check_targets(np.eye(3)[[0, 2]], 2, np.float32)
    assert rows.dtype == np.float32 and rows.tolist() == [[1, 0, 0], [0, 0, 1]]
    bce = Head("sigmoid", 1, BCE()).check_targets(np.array([0, 1]), 2, np.float32)
    assert bce.dtype == np.float32 and bce.shape == (2, 1)
    rows_within_tolerance = np.array([[0.5, 0.5004, 0.0]])  # sums to 1.0004: within 1e-3
    assert Head("softmax", 3, CCE()).check_targets(rows_within_tolerance, 1, np.float64).shape == (1, 3)


def test_float16_rows_are_summed_in_float64_for_the_check():
    # Exactly 0.9989013671875: 1.1e-3 short of 1, so refused; a float16 sum would round it to
    # 0.9990234375 and let it through.
    y = np.array([[0.5, 0.25, 0.2489013671875]], np.float16)
    with pytest.raises(ValueError, match=r"row 0 sums to 0\.998901"):
        Head("softmax", 3, CCE()).check_targets(y, 1, np.float32)


def test_class_of_each_kind_of_target():
    labels = np.array([2, 0, 1])
    np.testing.assert_array_equal(Head("softmax", 3, SCCE()).class_of(labels), [2, 0, 1])
    rows = np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_array_equal(Head("softmax", 3, CCE()).class_of(rows), [2, 0, 1])
    # A 0/1 target (or a smoothed one) is class 1 from 0.5 on.
    binary = np.array([[0.0], [0.5], [0.49], [1.0]], np.float32)
    got = Head("sigmoid", 1, BCE()).class_of(binary)
    np.testing.assert_array_equal(got, [0, 1, 0, 1])
    assert got.dtype == np.intp
    with pytest.raises(ValueError, match=r"^class_weight applies to single-label targets; for multi-label "
                       r"targets pass sample_weight \(or BinaryCrossentropy per-label weights via ops\.pos_weight\)$"):
        Head("sigmoid", 2, BCE()).class_of(np.zeros((3, 2), np.float32))


# --- loss and gradient ----------------------------------------------------------------------

def test_sigmoid_head_with_label_smoothing():
    z = np.array([[-2.0, 0.5, 3.0], [1.0, -0.25, 0.0]])
    y = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    head = Head("sigmoid", 3, BCE(label_smoothing=0.2))
    loss, grad = head.per_sample(z, y, need_grad=True)
    ys = y * 0.8 + 0.1  # Keras: y·(1 − ls) + ls / 2
    softplus = np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)  # softplus(z); softplus(−z) = softplus(z) − z
    np.testing.assert_allclose(loss, (ys * (softplus - z) + (1 - ys) * softplus).mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-z)) - ys) / 3, rtol=1e-14)  # mean over the labels


def test_float32_sigmoid_loss_is_a_float64_mean_of_the_label_losses():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 3, (300, 7)).astype(np.float32)
    y = rng.uniform(0, 1, (300, 7)).astype(np.float32)
    loss, _ = Head("sigmoid", 7, BCE()).per_sample(z, y, need_grad=False)
    per_label, _ = ops.sigmoid_binary_cross_entropy(z, y)  # float32, each rounded once
    assert loss.dtype == np.float32
    np.testing.assert_array_equal(loss, per_label.astype(np.float64).mean(axis=1).astype(np.float32))


@pytest.mark.parametrize("loss, targets", [(SCCE(), "labels"), (CCE(), "rows")])
def test_float32_batch_loss_sums_the_rounded_sample_losses_in_float64(loss, targets):
    # The fast kernel (sparse) and the general path (one-hot rows) alike: Σ in float64 of the
    # float32 per-sample losses, which ops computes independently.
    rng = np.random.default_rng(6)
    z = rng.normal(0, 4, (300, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 300)
    y = labels if targets == "labels" else np.eye(5, dtype=np.float32)[labels]
    per_sample, _ = ops.softmax_cross_entropy(z, labels)
    assert per_sample.dtype == np.float32
    head = Head("softmax", 5, loss)
    total, grad = head.batch(z, y, None)
    assert total == float(per_sample.astype(np.float64).sum()) * (1.0 / 300)  # the mean, as the head forms it
    assert grad.dtype == np.float32 and grad.shape == (300, 5)
    total, _ = head.batch(z, y, None)  # again, with the head's work buffers already made
    assert total == float(per_sample.astype(np.float64).sum()) * (1.0 / 300)  # the mean, as the head forms it


def test_soft_labels_with_sample_weights_round_the_gradient_once():
    # dL/dz_i = w_i·(p ΣY − Y)/n in float64, then one rounding to float32 (the soft-label kernel
    # with one weight per row).
    rng = np.random.default_rng(7)
    n, c = 12, 4
    z = rng.normal(0, 2, (n, c)).astype(np.float32)
    y = rng.dirichlet(np.ones(c), n).astype(np.float32)
    w = rng.uniform(0.5, 3.0, n).astype(np.float32)
    total, grad = Head("softmax", c, CCE()).batch(z, y, w)
    assert grad.dtype == np.float32
    worst = 0.0
    for i in range(n):
        scale = ref.mpf(float(w[i])) / n
        loss_i, grad_i = ref.softmax_xent_soft(z[i], y[i])
        worst = max(worst, ref.max_ulp_error(grad[i], [g * scale for g in grad_i], np.float32))
    assert worst <= ref.HALF_ULP
    per_sample, _ = ops.softmax_cross_entropy(z, y)
    assert total == pytest.approx(float(np.dot(per_sample.astype(np.float64), w.astype(np.float64))) / n,
                                  rel=1e-15)


def test_a_head_pickles_without_its_work_buffers():
    head = Head("softmax", 3, SCCE())
    assert pickle.loads(pickle.dumps(head)).units == 3  # never used: no buffers yet
    z = np.zeros((4, 3), np.float32)
    head.batch(z, np.array([0, 1, 2, 0]), None)  # the fast kernel: makes the work buffers
    restored = pickle.loads(pickle.dumps(head))
    assert not hasattr(restored, "_work")
    total, grad = restored.batch(z, np.array([0, 1, 2, 0]), None)
    assert total == pytest.approx(np.log(3.0), rel=1e-7)
    np.testing.assert_allclose(grad[0], np.array([-2 / 3, 1 / 3, 1 / 3]) / 4, rtol=1e-6)
