"""Metrics: hand-worked cases, batch accumulation, exact thresholds on logits, scikit-learn parity."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logitnet import metrics as M
from logitnet import ops

# --------------------------------------------------------------------------- helpers


def exact_at_least(z: float, t: float) -> bool:
    """σ(z) >= t in 80-digit mpmath, comparing the smaller tail so that nothing rounds to 0 or 1."""
    z, t = float(z), float(t)
    if np.isinf(z):
        return z > 0 or t == 0
    # σ(z) − ½ ≈ z/4: tiny logits need as many more digits as they have leading zeros.
    digits = 80 + (int(-np.log10(abs(z))) if 0 < abs(z) < 1 else 0)
    with mpmath.workdps(digits):
        e = mpmath.exp(-abs(mpmath.mpf(z)))
        if z < 0:
            return e / (1 + e) >= t  # σ(z) = e / (1 + e)
        return t <= 0.5 or e / (1 + e) <= 1 - t  # 1 − σ(z) = e / (1 + e); 1 − t is exact here


def exact_logit(t: float) -> float:
    """logit(t) rounded to the nearest float64."""
    with mpmath.workdps(80):
        return float(mpmath.log(mpmath.mpf(t)) - mpmath.log(1 - mpmath.mpf(t)))


def pairwise_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None = None) -> float:
    """Brute force: Σ over (positive, negative) pairs of w⁺w⁻·([s⁺ > s⁻] + ½[s⁺ == s⁻]) / Σ w⁺w⁻."""
    w = np.ones(len(y)) if w is None else w
    num = den = 0.0
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            num += w[i] * w[j] * ((s[i] > s[j]) + 0.5 * (s[i] == s[j]))
            den += w[i] * w[j]
    return num / den


def random_batch(task: str, n: int, width: int, rng: np.random.Generator):
    """(y_true, logits) for a task; logits on a coarse grid so that ties occur."""
    z = rng.integers(-6, 7, size=(n, width)) / 2.0
    if task == "multiclass":
        return rng.integers(0, width, size=n), z
    if task == "binary":
        return rng.integers(0, 2, size=n), z[:, 0]
    return rng.integers(0, 2, size=(n, width)), z


ALL_METRICS = [
    (cls, task, kwargs)
    for task in M.CLASSIFICATION
    for cls, kwargs in [
        (M.Accuracy, {}), (M.Precision, {}), (M.Recall, {}), (M.F1Score, {}),
        (M.F1Score, {"average": "micro"}), (M.F1Score, {"average": "macro"}), (M.AUC, {}),
        (M.HammingLoss, {}), (M.SubsetAccuracy, {}),
    ]
    if task == "multilabel" or cls not in (M.HammingLoss, M.SubsetAccuracy)
]


def _id(case) -> str:
    cls, task, kwargs = case
    return f"{cls.__name__}-{task}" + "".join(f"-{v}" for v in kwargs.values())


# --------------------------------------------------------------------------- functional metrics


def test_confusion_matrix_hand_worked():
    cm = M.confusion_matrix([0, 1, 2, 2, 1, 0], [0, 2, 2, 1, 1, 0])
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[2, 0, 0], [0, 1, 1], [0, 1, 1]])
    np.testing.assert_array_equal(M.confusion_matrix([1], [0], n_classes=3), [[0, 0, 0], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(M.confusion_matrix(np.array([[0.0], [1.0]]), [1, 1]), [[0, 1], [0, 1]])
    assert M.confusion_matrix([], []).shape == (0, 0)


@pytest.mark.parametrize(
    "y_true,y_pred,kwargs,match",
    [
        ([0, 3], [0, 1], {"n_classes": 3}, "outside"),
        ([0, -1], [0, 1], {}, ">= 0"),
        ([0, 1.5], [0, 1], {}, "integer"),
        ([0, 1, 1], [0, 1], {}, "does not match"),
        ([[0, 1]], [[0, 1]], {}, "shape"),
    ],
)
def test_confusion_matrix_errors(y_true, y_pred, kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.confusion_matrix(y_true, y_pred, **kwargs)


Y_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
Y_PRED = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0]])
# Per label: tp = (2, 1, 0), fp = (0, 0, 1), fn = (0, 1, 1).


def test_multilabel_scores_hand_worked():
    assert M.hamming_loss(Y_TRUE, Y_PRED) == 3 / 12
    assert M.subset_accuracy(Y_TRUE, Y_PRED) == 1 / 4
    assert M.precision_score(Y_TRUE, Y_PRED) == 3 / 4
    assert M.recall_score(Y_TRUE, Y_PRED) == 3 / 5
    assert M.f1_score(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)
    np.testing.assert_allclose(M.precision_score(Y_TRUE, Y_PRED, average=None), [1, 1, 0])
    np.testing.assert_allclose(M.recall_score(Y_TRUE, Y_PRED, average=None), [1, 0.5, 0])
    np.testing.assert_allclose(M.f1_score(Y_TRUE, Y_PRED, average=None), [1, 2 / 3, 0])
    assert M.f1_score(Y_TRUE, Y_PRED, average="macro") == pytest.approx(5 / 9)
    assert M.precision_score(Y_TRUE, Y_PRED, average="macro") == pytest.approx(2 / 3)
    # average="binary": a single label, the positive class.
    assert M.f1_score([1, 0, 1, 1], [1, 1, 0, 1], average="binary") == pytest.approx(2 / 3)
    assert M.precision_score([[1], [0]], [[1], [1]], average="binary") == 0.5


def test_zero_division_is_zero_without_warning():
    zeros = np.zeros((3, 2), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (M.precision_score, M.recall_score, M.f1_score):
            assert fn(zeros, zeros) == 0.0
            np.testing.assert_array_equal(fn(zeros, zeros, average=None), [0.0, 0.0])
        assert M.hamming_loss(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0
        assert M.subset_accuracy(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: M.f1_score([[0, 2]], [[0, 1]]), "0/1"),
        (lambda: M.f1_score([[0, 0.5]], [[0, 1]]), "0/1"),
        (lambda: M.hamming_loss([[0, 1]], [[0, 1, 1]]), "does not match"),
        (lambda: M.f1_score(Y_TRUE, Y_PRED, average="weighted"), "average"),
        (lambda: M.f1_score(Y_TRUE, Y_PRED, average="binary"), "single label"),
        (lambda: M.subset_accuracy(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), "shape"),
    ],
)
def test_functional_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- thresholds on logits


def test_multilabel_predict_special_thresholds():
    z = np.array([[-np.inf, -1e300, -1e-300, -0.0, 0.0, 5e-324, 1e300, np.inf]])
    np.testing.assert_array_equal(M.multilabel_predict(z), [[0, 0, 0, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(M.multilabel_predict(z, 0.0), np.ones((1, 8)))
    np.testing.assert_array_equal(M.multilabel_predict(z, 1.0), [[0, 0, 0, 0, 0, 0, 0, 1]])
    out = M.multilabel_predict(np.array([[np.nan, np.nan]]), [0.0, 1.0])
    assert out.dtype == np.int8 and not out.any()  # NaN is never positive


def test_multilabel_predict_per_label_thresholds_and_probabilities():
    z = np.array([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]], dtype=np.float32)
    t = np.array([0.5, 0.9, 0.1])
    expected = [[1, 0, 1], [1, 0, 1]]  # σ(1) ≈ 0.73 < 0.9, σ(−2) ≈ 0.12 >= 0.1
    np.testing.assert_array_equal(M.multilabel_predict(z, t), expected)
    np.testing.assert_array_equal(M.multilabel_predict(ops.sigmoid(z.astype(np.float64)), t, from_logits=False),
                                  expected)
    np.testing.assert_array_equal(M.multilabel_predict([0.2, 0.7], 0.5, from_logits=False), [0, 1])


@pytest.mark.parametrize(
    "scores,thresholds,kwargs,match",
    [
        ([[0.0, 1.0]], 1.5, {}, r"\[0, 1\]"),
        ([[0.0, 1.0]], -0.1, {}, r"\[0, 1\]"),
        ([[0.0, 1.0]], np.nan, {}, r"\[0, 1\]"),
        ([[0.0, 1.0]], [0.5, 0.5, 0.5], {}, "3 thresholds for 2 labels"),
        ([[0.0, 1.0]], [[0.5, 0.5]], {}, "shape"),
        ([[0.2, 1.3]], 0.5, {"from_logits": False}, "probabilities"),
        (np.zeros((1, 1, 1)), 0.5, {}, "shape"),
    ],
)
def test_multilabel_predict_errors(scores, thresholds, kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.multilabel_predict(scores, thresholds, **kwargs)


def _boundary_thresholds() -> list[float]:
    ts = [0.5, 0.1, 0.9, 0.3, 1e-10, 1 - 1e-10, 5e-324, 1 - 2.0**-53]
    ts += [np.nextafter(0.5, 1), np.nextafter(0.5, 0)]
    # Thresholds that are rounded sigmoids of floats: the exact boundary sits a fraction of an ulp away.
    for z0 in (1.0, -7.25, 2.5, 30.0, 1e-8, -0.1):
        ts.append(float(ops.sigmoid(np.float64(z0))))
        ts.append(float(ops.sigmoid(np.float32(z0))))
    return ts


@pytest.mark.parametrize("t", _boundary_thresholds())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thresholds_on_logits_equal_exact_probabilities_at_the_boundary(t, dtype):
    cut = dtype(exact_logit(t))
    z = [cut]
    for direction in (np.inf, -np.inf):
        for _ in range(4):
            z.append(np.nextafter(z[-1], dtype(direction)))
    z = np.array(z + [dtype(0), -z[0]], dtype=dtype)[:, None]
    got = M.multilabel_predict(z, t)[:, 0]
    expected = [exact_at_least(v, t) for v in z[:, 0]]
    np.testing.assert_array_equal(got, expected)


def test_per_label_thresholds_at_the_boundary():
    ts = np.array(_boundary_thresholds())
    cuts = np.array([exact_logit(t) for t in ts])
    z = np.stack([cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf), np.zeros_like(cuts)])
    got = M.multilabel_predict(z, ts)
    expected = [[exact_at_least(z[i, j], ts[j]) for j in range(len(ts))] for i in range(z.shape[0])]
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=150, deadline=None)
@given(
    z=st.floats(allow_nan=False, allow_infinity=True) | st.floats(-40, 40),
    t=st.floats(0, 1) | st.sampled_from([0.0, 0.5, 1.0]),
)
def test_threshold_on_logit_property(z, t):
    assert M.multilabel_predict(np.array([[z]]), t)[0, 0] == exact_at_least(z, t)
    z32 = np.float32(z) if abs(z) < 3e38 or np.isinf(z) else np.float32(np.sign(z) * 3e38)
    assert M.multilabel_predict(np.array([[z32]]), t)[0, 0] == exact_at_least(float(z32), t)


@settings(max_examples=150, deadline=None)
@given(t=st.floats(0, 1, exclude_min=True, exclude_max=True), steps=st.integers(-3, 3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_threshold_property_at_the_boundary(t, steps, dtype):
    # A logit within a few ulps of logit(t), where log(t) − log1p(−t) in float64 alone errs often.
    z = dtype(exact_logit(t))
    for _ in range(abs(steps)):
        z = np.nextafter(z, dtype(np.sign(steps) * np.inf))
    assert M.multilabel_predict(np.array([[z]]), t)[0, 0] == exact_at_least(float(z), t)


# --------------------------------------------------------------------------- ROC AUC


def test_roc_auc_hand_worked_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.9])
    # Pairs (pos, neg): 0.4 vs {0.1 win, 0.4 tie, 0.8 loss}; 0.8 vs {win, win, tie}; 0.9 wins all.
    assert M.roc_auc(y, s) == pytest.approx((1.5 + 2.5 + 3) / 9)
    assert M.roc_auc([0, 1], [-np.inf, np.inf]) == 1.0
    assert M.roc_auc([1, 0], [3.0, 3.0]) == 0.5
    w = np.array([1, 1, 2, 1, 1, 1])
    assert M.roc_auc(y, s, sample_weight=w) == pytest.approx(pairwise_auc(y, s, w))


def test_roc_auc_logits_beat_saturated_probabilities():
    z = np.array([40.0, 50.0, 60.0, 70.0])  # σ(z) rounds to 1.0 for all four
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(y, z) == 1.0
    assert M.roc_auc(y, ops.sigmoid(z)) == 0.5  # the rounded probabilities are all tied


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_roc_auc_matches_pairwise_count(data):
    n = data.draw(st.integers(2, 30))
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[0], y[1] = 0, 1
    s = np.array(data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)), dtype=float)
    w = np.array(data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)), dtype=float)
    assert M.roc_auc(y, s, w) == pytest.approx(pairwise_auc(y, s, w), rel=1e-12)
    # Any strictly increasing map (logits -> probabilities) leaves the AUC unchanged.
    assert M.roc_auc(y, ops.sigmoid(s), w) == pytest.approx(M.roc_auc(y, s, w), rel=1e-12)


@pytest.mark.parametrize(
    "y,s,w,match",
    [
        ([1, 1], [0.1, 0.2], None, "both positive and negative"),
        ([1, 0], [0.1, 0.2], [1, 0], "both positive and negative"),
        ([1, 0], [np.nan, 0.2], None, "NaN"),
        ([1, 0], [0.1, 0.2, 0.3], None, "shape"),
        ([1, 0], [0.1, 0.2], [1, -1], ">= 0"),
        ([1, 2], [0.1, 0.2], None, "0/1"),
    ],
)
def test_roc_auc_errors(y, s, w, match):
    with pytest.raises(ValueError, match=match):
        M.roc_auc(y, s, w)


# --------------------------------------------------------------------------- stateful metrics


def test_accuracy_multiclass_sparse_and_onehot():
    z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    y = np.array([0, 2, 2, 1])
    for labels in (y, y[:, None], np.eye(3)[y], np.eye(3)[y] * 0.8 + 0.2 / 3):
        metric = M.Accuracy("multiclass")
        metric.update_state(labels, z)
        assert metric.result() == 0.5
    metric = M.Accuracy("multiclass")
    metric.update_state(y, z, sample_weight=[1.0, 0.0, 3.0, 0.0])
    assert metric.result() == 1.0


def test_accuracy_binary_and_multilabel_hand_worked():
    z = np.array([2.0, -1.0, 0.0, -3.0])
    y = np.array([1, 1, 0, 0])
    for zz, yy in [(z, y), (z[:, None], y), (z, y[:, None]), (z[:, None], y[:, None])]:
        metric = M.Accuracy("binary")
        metric.update_state(yy, zz)
        assert metric.result() == 0.5
    metric = M.Accuracy("binary", thresholds=0.6)  # σ(0) = 0.5 < 0.6 now counts as negative
    metric.update_state(y, z)
    assert metric.result() == 0.75

    z = np.array([[1.0, -1.0, 0.5], [-2.0, 2.0, -0.5]])
    y = np.array([[1, 0, 0], [0, 1, 1]])
    acc, ham, sub = M.Accuracy("multilabel"), M.HammingLoss(), M.SubsetAccuracy()
    for metric in (acc, ham, sub):
        metric.update_state(y, z)
    assert (acc.result(), ham.result(), sub.result()) == (4 / 6, 2 / 6, 0.0)
    # Per-label thresholds: σ(0.5) ≈ 0.62 < 0.7 and σ(−0.5) ≈ 0.38 >= 0.3.
    assert M.Accuracy("multilabel", [0.5, 0.5, 0.7])(y, z) == pytest.approx(5 / 6)
    assert M.Accuracy("multilabel", np.array([0.5, 0.5, 0.3]))(y, z) == pytest.approx(5 / 6)
    assert M.SubsetAccuracy(thresholds=[0.5, 0.5, 0.3])(y, z) == 0.5
    assert M.HammingLoss(thresholds=[0.5, 0.5, 0.7])(y, z) == pytest.approx(1 / 6)


def test_precision_recall_f1_hand_worked():
    # Binary: decisions (1, 0, 1, 1, 0) against (1, 1, 0, 1, 0): tp 2, fp 1, fn 1.
    z = np.array([3.0, -1.0, 0.0, 0.2, -5.0])
    y = np.array([1, 1, 0, 1, 0])
    assert M.Precision("binary")(y, z) == pytest.approx(2 / 3)
    assert M.Recall("binary")(y, z) == pytest.approx(2 / 3)
    assert M.F1Score("binary")(y, z) == pytest.approx(2 / 3)
    # σ(0) = 0.5 and σ(0.2) ≈ 0.5498: at t = 0.54 only the first drops out, at t = 0.55 both do.
    assert M.Precision("binary", thresholds=0.54)(y, z) == 1.0
    assert M.Recall("binary", thresholds=0.54)(y, z) == pytest.approx(2 / 3)
    assert M.Recall("binary", thresholds=0.55)(y, z) == pytest.approx(1 / 3)

    # Multiclass: predictions (0, 1, 1, 2) against labels (0, 1, 2, 2); class 3 is never seen.
    z = np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 0]])
    y = np.array([0, 1, 2, 2])
    # Per class: precision (1, 1/2, 1), recall (1, 1, 1/2), F1 (1, 2/3, 2/3).
    assert M.Precision("multiclass")(y, z) == pytest.approx(5 / 6)
    assert M.Recall("multiclass")(y, z) == pytest.approx(5 / 6)
    assert M.F1Score("multiclass")(y, z) == pytest.approx(7 / 9)
    assert M.F1Score("multiclass", average="micro")(y, z) == 0.75  # micro = accuracy


def test_auc_stateful_tasks():
    metric = M.AUC("binary")
    metric.update_state([0, 1], [0.0, 1.0])
    metric.update_state([[1], [0]], [[0.0], [1.0]])
    assert metric.result() == pytest.approx(pairwise_auc(np.array([0, 1, 1, 0]), np.array([0.0, 1, 0, 1])))
    metric = M.AUC("multilabel")
    y = np.array([[1, 0], [0, 1]])
    metric.update_state(y, np.array([[2.0, -1.0], [0.5, 3.0]]))
    assert metric.result() == pytest.approx(pairwise_auc(y.ravel(), np.array([2.0, -1.0, 0.5, 3.0])))
    metric = M.AUC("multiclass")  # probabilities (0.7, 0.2, 0.1), (0.2, 0.7, 0.1): ranks 0.7 > 0.2 > 0.1
    logp = np.log(np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]]))
    metric.update_state([0, 1], logp + np.array([[3.0], [-40.0]]))  # row shifts do not change softmax
    assert metric.result() == 1.0
    empty = M.AUC("binary")
    assert empty.result() == 0.0
    empty.update_state([1, 1], [0.2, 0.3])
    assert empty.result() == 0.0  # undefined until both classes are seen, as Keras


@pytest.mark.parametrize("case", ALL_METRICS, ids=_id)
def test_batches_accumulate_to_one_shot(case):
    cls, task, kwargs = case
    rng = np.random.default_rng(7)
    y, z = random_batch(task, 60, 4, rng)
    w = rng.integers(0, 4, size=60).astype(float)
    for weights in (None, w):
        whole = cls(task, **kwargs)
        whole.update_state(y, z, weights)
        parts = cls(task, **kwargs)
        for lo, hi in [(0, 7), (7, 8), (8, 8), (8, 45), (45, 60)]:
            parts.update_state(y[lo:hi], z[lo:hi], None if weights is None else weights[lo:hi])
        assert parts.result() == pytest.approx(whole.result(), rel=1e-12, abs=1e-15)
        # Integer weights are repeated samples.
        if weights is not None:
            rep = cls(task, **kwargs)
            keep = np.repeat(np.arange(60), w.astype(int))
            rep.update_state(y[keep], z[keep])
            if cls not in (M.Precision, M.Recall, M.F1Score) or task != "multiclass":
                assert rep.result() == pytest.approx(whole.result(), rel=1e-12)
        parts.reset_state()
        assert parts.result() == 0.0


def test_get_names_and_instances():
    for name, cls in [("accuracy", M.Accuracy), ("acc", M.Accuracy), ("precision", M.Precision),
                      ("recall", M.Recall), ("f1", M.F1Score), ("f1_score", M.F1Score), ("auc", M.AUC),
                      ("micro_f1", M.F1Score), ("macro_f1", M.F1Score)]:
        metric = M.get(name, "multiclass")
        assert type(metric) is cls and metric.name == name and metric.task == "multiclass"
    assert M.get("micro_f1", "multilabel").average == "micro"
    assert M.get("macro_f1", "multilabel").average == "macro"
    assert M.get("F1", "binary").name == "F1"
    assert M.get("hamming_loss", "multilabel").name == "hamming_loss"
    assert isinstance(M.get("subset_accuracy", "multilabel"), M.SubsetAccuracy)
    metric = M.Recall("binary", name="r")
    assert M.get(metric, "binary") is metric
    with pytest.raises(ValueError, match="known names: acc, accuracy"):
        M.get("top_k", "multiclass")
    with pytest.raises(ValueError, match="task must be one of"):
        M.get("accuracy", "ranking")
    with pytest.raises(ValueError, match="Accuracy is for the task.s. multiclass, binary, multilabel, not 'regression'"):
        M.get("accuracy", "regression")
    with pytest.raises(ValueError, match="MeanSquaredError is for the task.s. regression, not 'binary'"):
        M.get("mse", "binary")
    with pytest.raises(ValueError, match="multilabel"):
        M.get("hamming_loss", "multiclass")
    with pytest.raises(TypeError):
        M.get(3, "binary")


@pytest.mark.parametrize(
    "make,y,z,w,match",
    [
        (lambda: M.Accuracy("multiclass"), [0, 1, 2], np.zeros((2, 3)), None, "does not match"),
        (lambda: M.Accuracy("multiclass"), [0, 3], np.zeros((2, 3)), None, r"outside \[0, 3\)"),
        (lambda: M.Accuracy("multiclass"), [0, 1], np.zeros((2, 1)), None, "C >= 2"),
        (lambda: M.Accuracy("multiclass"), np.eye(2), np.zeros((2, 3)), None, "does not match"),
        (lambda: M.Accuracy("binary"), [0, 1], np.zeros((2, 2)), None, "task='multilabel'"),
        (lambda: M.Accuracy("binary"), [0, 1, 1], np.zeros(2), None, "does not match"),
        (lambda: M.Accuracy("binary"), [0, 2], np.zeros(2), None, "0/1"),
        (lambda: M.F1Score("multilabel"), [[0, 0.5]], np.zeros((1, 2)), None, "0/1"),
        (lambda: M.AUC("multilabel"), [[0, 1]], np.zeros((1, 3)), None, "does not match"),
        (lambda: M.AUC("multilabel"), [0, 1], np.zeros(2), None, r"\(n, L\)"),
        (lambda: M.Accuracy("binary"), [0, 1], np.zeros(2), [1.0], "sample_weight"),
        (lambda: M.Accuracy("binary"), [0, 1], np.zeros(2), [1.0, -1.0], ">= 0"),
        (lambda: M.Accuracy("multilabel", [0.5, 0.5]), [[0, 1, 1]], np.zeros((1, 3)), None, "2 thresholds"),
    ],
)
def test_stateful_errors(make, y, z, w, match):
    with pytest.raises(ValueError, match=match):
        make().update_state(y, z, w)


def test_constructor_errors():
    with pytest.raises(ValueError, match="task must be one of"):
        M.Accuracy("softmax")
    with pytest.raises(ValueError, match="multilabel"):
        M.SubsetAccuracy("binary")
    with pytest.raises(ValueError, match="argmax"):
        M.Accuracy("multiclass", thresholds=0.7)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.Precision("binary", thresholds=2.0)
    with pytest.raises(ValueError, match="average"):
        M.F1Score("multilabel", average="binary")
    with pytest.raises(ValueError, match="average"):
        M.F1Score("multiclass", average="weighted")
    metric = M.F1Score("multiclass")
    metric.update_state([0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="earlier batches"):
        metric.update_state([0], np.zeros((1, 4)))


# --------------------------------------------------------------------------- scikit-learn parity


@pytest.fixture(scope="module")
def skm():
    return pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(3))
def test_functional_matches_sklearn(skm, seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 5, 80), rng.integers(0, 5, 80)
    np.testing.assert_array_equal(M.confusion_matrix(y, p, 6), skm.confusion_matrix(y, p, labels=range(6)))
    yt, yp = rng.integers(0, 2, (40, 5)), rng.integers(0, 2, (40, 5))
    yt[:, 4] = yp[:, 4] = 0  # an empty label: zero division
    yt[:, 3] = 0
    assert M.hamming_loss(yt, yp) == pytest.approx(skm.hamming_loss(yt, yp))
    assert M.subset_accuracy(yt, yp) == pytest.approx(skm.accuracy_score(yt, yp))
    for mine, ref in [(M.f1_score, skm.f1_score), (M.precision_score, skm.precision_score),
                      (M.recall_score, skm.recall_score)]:
        for average in ("micro", "macro", None):
            expected = ref(yt, yp, average=average, zero_division=0)
            np.testing.assert_allclose(mine(yt, yp, average=average), expected)
        expected = ref(yt[:, 0], yp[:, 0], zero_division=0)
        assert mine(yt[:, 0], yp[:, 0], average="binary") == pytest.approx(expected)
    s, w = rng.integers(-4, 5, 40) / 4.0, rng.random(40)
    assert M.roc_auc(yt[:, 0], s) == pytest.approx(skm.roc_auc_score(yt[:, 0], s))
    assert M.roc_auc(yt[:, 0], s, w) == pytest.approx(skm.roc_auc_score(yt[:, 0], s, sample_weight=w))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("task", M.CLASSIFICATION)
def test_stateful_matches_sklearn(skm, seed, task):
    rng = np.random.default_rng(seed)
    y, z = random_batch(task, 90, 5, rng)
    w = rng.random(90)
    w[:5] = 0.0

    def run(metric, weighted):
        for lo, hi in [(0, 30), (30, 31), (31, 90)]:
            metric.update_state(y[lo:hi], z[lo:hi], w[lo:hi] if weighted else None)
        return metric.result()

    for weighted in (False, True):
        sw = w if weighted else None
        if task == "multiclass":
            pred, onehot = z.argmax(1), np.eye(5)[y]
            probs = ops.softmax(z)
            acc_ref = skm.accuracy_score(y, pred, sample_weight=sw)
            assert run(M.Accuracy(task), weighted) == pytest.approx(acc_ref)
            auc_ref = skm.roc_auc_score(onehot.ravel(), probs.ravel(),
                                        sample_weight=None if sw is None else np.repeat(sw, 5))
            averages = ("macro", "micro")
        else:
            pred = (z >= 0).astype(int)
            flat_y, flat_z = np.ravel(y), np.ravel(z)
            flat_w = None if sw is None else np.repeat(sw, flat_z.size // 90)
            acc_ref = skm.accuracy_score(flat_y, (flat_z >= 0), sample_weight=flat_w)
            assert run(M.Accuracy(task), weighted) == pytest.approx(acc_ref)
            auc_ref = skm.roc_auc_score(flat_y, flat_z, sample_weight=flat_w)
            averages = ("binary",) if task == "binary" else ("micro", "macro")
        assert run(M.AUC(task), weighted) == pytest.approx(auc_ref)
        for cls, ref in [(M.Precision, skm.precision_score), (M.Recall, skm.recall_score),
                         (M.F1Score, skm.f1_score)]:
            for average in averages:
                expected = ref(y, pred, average=average, sample_weight=sw, zero_division=0)
                assert run(cls(task, average=average), weighted) == pytest.approx(expected), (cls, average)
        if task == "multilabel":
            hamming, subset = (skm.hamming_loss(y, pred, sample_weight=sw),
                               skm.accuracy_score(y, pred, sample_weight=sw))
            assert run(M.HammingLoss(), weighted) == pytest.approx(hamming)
            assert run(M.SubsetAccuracy(), weighted) == pytest.approx(subset)
