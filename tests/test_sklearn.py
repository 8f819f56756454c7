"""LogitNetClassifier as a scikit-learn estimator: check_estimator, pipelines, grid search,
partial_fit, pickling, exact probabilities, and multi-label against MLPClassifier."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_circles, make_classification, make_multilabel_classification  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from logitnet.sklearn import LogitNetClassifier  # noqa: E402


def test_check_estimator_in_full(monkeypatch):
    # No expected failures: check_sample_weight_equivalence_on_dense_data passes too (float64 data
    # trains a float64 model in one full batch, where a weight of 2 is a repeated row). scikit-learn
    # skips its array-API check unless SCIPY_ARRAY_API is set; with it, the NumPy version runs.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(LogitNetClassifier(), on_fail=None)
    not_passed = [(r["check_name"], r["status"], r["exception"]) for r in results if r["status"] != "passed"]
    assert not_passed == [], not_passed
    names = {r["check_name"] for r in results}
    assert {"check_sample_weight_equivalence_on_dense_data", "check_array_api_input"} <= names
    assert len(results) > 60


def _data(seed=0, n=300, classes=3):
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=classes,
                               random_state=seed)


def test_auto_batch_size_is_min_of_200_and_n_samples():
    # 'auto' is min(200, n); an int above n is one full batch. alpha's penalty divides by the batch
    # size actually used, so these agree with a penalty too.
    for n, effective in [(150, 150), (500, 200)]:
        X, y = _data(n=n)
        params = {"hidden_layer_sizes": (8,), "epochs": 5, "alpha": 0.5, "random_state": 0}
        auto = LogitNetClassifier(**params).fit(X, y)
        explicit = LogitNetClassifier(batch_size=effective, **params).fit(X, y)
        np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))
        other = LogitNetClassifier(batch_size=32, **params).fit(X, y)
        assert not np.allclose(auto.predict_proba(X), other.predict_proba(X))
    X, y = _data(n=150)
    too_big = LogitNetClassifier(batch_size=1000, **params).fit(X, y)  # one batch of 150, penalty over 150
    np.testing.assert_array_equal(too_big.predict_proba(X), LogitNetClassifier(**params).fit(X, y).predict_proba(X))
    assert LogitNetClassifier().batch_size == "auto"
    with pytest.raises(ValueError, match="batch_size"):
        LogitNetClassifier(batch_size="big").fit(X, y)


def test_dtype_follows_the_input_unless_given():
    X, y = _data(n=120)
    params = {"hidden_layer_sizes": (8,), "epochs": 3, "random_state": 0}
    as_ints = np.round(X * 10).astype(np.int64)  # scikit-learn converts it to float64
    for X_in, expected in [(X, np.float64), (X.astype(np.float32), np.float32), (as_ints, np.float64)]:
        clf = LogitNetClassifier(**params).fit(X_in, y)
        assert clf.model_.dtype == expected and all(w.dtype == expected for w in clf.model_.get_weights())
        # Later data is converted to the fitted model's dtype, whatever its own.
        assert clf.predict_proba(X).dtype == expected
        assert clf.decision_function(X.astype(np.float32)).dtype == expected
    # An explicit dtype wins over the input's, and training on converted data is the same.
    forced32 = LogitNetClassifier(dtype="float32", **params).fit(X, y)
    assert forced32.model_.dtype == np.float32
    np.testing.assert_array_equal(forced32.predict_proba(X),
                                  LogitNetClassifier(**params).fit(X.astype(np.float32), y).predict_proba(X))
    forced64 = LogitNetClassifier(dtype="float64", **params).fit(X.astype(np.float32), y)
    assert forced64.model_.dtype == np.float64
    np.testing.assert_array_equal(forced64.predict_proba(X),
                                  LogitNetClassifier(**params).fit(X.astype(np.float32).astype(np.float64), y)
                                  .predict_proba(X))
    # float64 and float32 training differ (by rounding), so the dtype is really the model's.
    f64 = LogitNetClassifier(**params).fit(X, y)
    assert not np.array_equal(f64.predict_proba(X), forced32.predict_proba(X))
    np.testing.assert_allclose(f64.predict_proba(X), forced32.predict_proba(X), rtol=1e-3, atol=1e-5)
    # partial_fit: the first call fixes the dtype; later calls convert to it.
    inc = LogitNetClassifier(**params).partial_fit(X.astype(np.float32), y, classes=np.unique(y))
    inc.partial_fit(X, y)
    assert inc.model_.dtype == np.float32 and inc.n_iter_ == 2
    with pytest.raises(ValueError, match="dtype"):
        LogitNetClassifier(dtype="float16").fit(X, y)


@pytest.mark.parametrize("params", [{}, {"alpha": 1.0}, {"hidden_layer_sizes": (16, 8), "activation": "tanh"}],
                         ids=["plain", "alpha", "two-layers"])
def test_sample_weight_equals_repeating_rows(params):
    # A small float64 problem trains in one full batch (n <= 200): a weight of k is then the row
    # repeated k times (0: the row left out), the penalty included, up to rounding only.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    sw = rng.integers(0, 4, size=40)
    assert (sw == 0).any() and (sw >= 2).any()
    base = {"hidden_layer_sizes": (16,), "epochs": 100, "learning_rate": 1e-2, "random_state": 0, "tol": 0}
    base.update(params)
    weighted = LogitNetClassifier(**base).fit(X, y, sample_weight=sw)
    repeated = LogitNetClassifier(**base).fit(X.repeat(sw, axis=0), y.repeat(sw))
    assert weighted.model_.dtype == np.float64 and weighted.n_iter_ == repeated.n_iter_ == 100
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)
    # Doubling every weight is repeating every row twice as often (2 · 68 = 136 rows, still one
    # batch): the same fit, the penalty's smaller share included.
    doubled = LogitNetClassifier(**base).fit(X, y, sample_weight=2 * sw)
    np.testing.assert_allclose(doubled.predict_proba(X), LogitNetClassifier(**base).fit(
        X.repeat(2 * sw, axis=0), y.repeat(2 * sw)).predict_proba(X), rtol=1e-10, atol=1e-14)
    # partial_fit too: each call is one pass in one batch here.
    inc_w, inc_r = LogitNetClassifier(**base), LogitNetClassifier(**base)
    for _ in range(3):
        inc_w.partial_fit(X, y, classes=[0, 1, 2], sample_weight=sw)
        inc_r.partial_fit(X.repeat(sw, axis=0), y.repeat(sw), classes=[0, 1, 2])
    np.testing.assert_allclose(inc_w.predict_proba(X), inc_r.predict_proba(X), rtol=1e-10, atol=1e-14)
    # The weights matter: ignoring them fits something else.
    unweighted = LogitNetClassifier(**base).fit(X, y)
    assert np.abs(unweighted.predict_proba(X) - weighted.predict_proba(X)).max() > 1e-3


def test_same_seed_same_predictions():
    X, y = _data()
    params = {"hidden_layer_sizes": (16,), "epochs": 20, "batch_size": 32}
    a = LogitNetClassifier(random_state=0, **params).fit(X, y)
    b = LogitNetClassifier(random_state=0, **params).fit(X, y)
    c = LogitNetClassifier(random_state=1, **params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert a.n_iter_ == len(a.loss_curve_) <= 20 and a.score(X, y) > 0.8


def test_partial_fit_over_batches_equals_fit_for_one_epoch():
    X, y = _data()
    params = dict(hidden_layer_sizes=(16, 8), epochs=1, batch_size=32, shuffle=False, random_state=3)
    full = LogitNetClassifier(**params).fit(X, y)
    parts = LogitNetClassifier(**params)
    for start in range(0, len(X), 32):
        parts.partial_fit(X[start:start + 32], y[start:start + 32], classes=np.unique(y))
    for u, v in zip(full.model_.get_weights(), parts.model_.get_weights()):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        LogitNetClassifier().partial_fit(X, y)


def test_pipeline_cross_validation_clone_and_pickle():
    X, y = _data(n=240)
    pipe = make_pipeline(StandardScaler(), LogitNetClassifier(hidden_layer_sizes=(16,), epochs=30, batch_size=32,
                                                              learning_rate=1e-2, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    fitted = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(X, y)
    assert clone(fitted).get_params() == fitted.get_params() and not hasattr(clone(fitted), "model_")
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    restored.partial_fit(X, y)  # still trains after unpickling
    fitted.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


def test_grid_search_picks_the_only_setting_that_fits_two_circles():
    # One ReLU unit cuts the plane with one line, and alpha=10 shrinks every weight to nearly 0:
    # only 32 units without the penalty can separate a ring from the disc inside it.
    X, y = make_circles(n_samples=240, noise=0.08, factor=0.4, random_state=0)
    grid = GridSearchCV(LogitNetClassifier(epochs=40, learning_rate=1e-2, random_state=0),
                        {"hidden_layer_sizes": [(1,), (32,)], "alpha": [0.0, 10.0]}, cv=3).fit(X, y)
    assert grid.best_params_ == {"hidden_layer_sizes": (32,), "alpha": 0.0}
    scores = {(p["hidden_layer_sizes"], p["alpha"]): s
              for p, s in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])}
    assert scores[(32,), 0.0] >= 0.95
    assert max(scores[(1,), 0.0], scores[(1,), 10.0], scores[(32,), 10.0]) <= 0.75  # chance is 0.5
    assert grid.best_estimator_.hidden_layer_sizes == (32,) and grid.best_estimator_.score(X, y) >= 0.95


def test_string_labels_binary_and_exact_probabilities():
    X, y_int = _data(classes=2)
    X = X.astype(np.float32)  # a float32 model, whose probabilities round to 0 beyond |z| ≈ 104
    y = np.array(["no", "yes"])[y_int]
    clf = LogitNetClassifier(hidden_layer_sizes=(16,), epochs=30, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"] and set(clf.predict(X)) <= {"no", "yes"}
    z = clf.decision_function(X)
    assert z.shape == (len(X),)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), np.where(z >= 0, "yes", "no"))
    # Log-probabilities come from the logits: finite and exact where the probability rounds to 0.
    big = X[:1] * 1e4
    z_big = clf.decision_function(big)[0]
    assert abs(z_big) > 200  # beyond float32's exp range
    assert clf.predict_proba(big).min() == 0.0
    log_p = clf.predict_log_proba(big)[0]
    assert log_p.min() == pytest.approx(-abs(float(z_big)), rel=1e-6) and log_p.max() == 0.0
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-5, atol=1e-6)


def test_multilabel_matches_or_beats_mlpclassifier_on_log_loss():
    X, Y = make_multilabel_classification(n_samples=600, n_features=20, n_classes=5, random_state=0)
    X = StandardScaler().fit_transform(X)
    train, test = slice(0, 450), slice(450, None)
    ours = LogitNetClassifier(hidden_layer_sizes=(64,), epochs=30, batch_size=32, random_state=0,
                              tol=0).fit(X[train], Y[train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLPClassifier warns that 30 epochs did not converge
        theirs = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, alpha=0.0, batch_size=32,
                               learning_rate_init=1e-3, random_state=0, tol=0).fit(X[train], Y[train])
    ours_loss = np.mean([log_loss(Y[test][:, k], ours.predict_proba(X[test])[:, k], labels=[0, 1]) for k in range(5)])
    theirs_loss = np.mean([log_loss(Y[test][:, k], theirs.predict_proba(X[test])[:, k], labels=[0, 1]) for k in range(5)])
    assert ours_loss <= theirs_loss * 1.05, (ours_loss, theirs_loss)
    assert ours.predict(X).shape == Y.shape and ours.predict_proba(X).shape == Y.shape


def test_per_label_thresholds():
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=3, random_state=1)
    clf = LogitNetClassifier(hidden_layer_sizes=(16,), epochs=10, random_state=0).fit(X, Y)
    proba = clf.predict_proba(X)
    clf.set_params(thresholds=np.array([0.2, 0.5, 0.9]))
    np.testing.assert_array_equal(clf.predict(X), (proba >= [0.2, 0.5, 0.9]).astype(int))


def _imbalanced(n_major, n_minor, seed):
    """Two overlapping Gaussian classes in 2-D: class 1 (the minority) centred at (1.5, 1.5)."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (n_major, 2)), rng.normal(1.5, 1, (n_minor, 2))])
    return X, np.repeat([0, 1], [n_major, n_minor])


def test_balanced_class_weight_raises_minority_recall():
    X, y = _imbalanced(360, 40, seed=0)  # 90 / 10
    X_test, y_test = _imbalanced(900, 100, seed=1)
    params = dict(hidden_layer_sizes=(8,), epochs=30, batch_size=32, learning_rate=1e-2, random_state=0)
    plain = LogitNetClassifier(**params).fit(X, y)
    balanced = LogitNetClassifier(class_weight="balanced", **params).fit(X, y)

    def recalls(clf):
        pred = clf.predict(X_test)
        return (pred[y_test == 0] == 0).mean(), (pred[y_test == 1] == 1).mean()

    (major_plain, minor_plain), (major_bal, minor_bal) = recalls(plain), recalls(balanced)
    # Measured: minority recall 0.61 unweighted, 0.93 balanced; balanced accuracy 0.79 -> 0.89.
    assert minor_plain <= 0.75 and minor_bal >= 0.85 and minor_bal - minor_plain >= 0.2
    assert (major_bal + minor_bal) / 2 >= (major_plain + minor_plain) / 2 + 0.05
    assert major_bal < major_plain  # the price: the majority class is recalled less often
    assert not np.array_equal(plain.model_.get_weights()[0], balanced.model_.get_weights()[0])


def test_balanced_class_weight_is_the_loss_minimised():
    # "balanced" weighs class c by n / (2 n_c): 400 / 720 for class 0, 400 / 80 = 5 for class 1.
    # One epoch of one full batch, with a step too small to matter (Adam moves each weight by about
    # the learning rate): loss_curve_[0] is the loss of the first batch, which the fitted model
    # reproduces. These weights sum to n, so dividing by n or by the sum of the weights agree here;
    # the model test with a dict of class weights tells the two apart.
    X, y = _imbalanced(360, 40, seed=0)
    clf = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=1, batch_size=400, learning_rate=1e-12,
                             class_weight="balanced", dtype="float64", random_state=0).fit(X, y)
    per_sample = -clf.predict_log_proba(X)[np.arange(400), y]
    w = np.where(y == 1, 400 / 80, 400 / 720)
    assert clf.loss_curve_[0] == pytest.approx(np.sum(w * per_sample) / 400, rel=1e-9)
    assert abs(clf.loss_curve_[0] - per_sample.mean()) > 0.1 * per_sample.mean()  # the weights matter
    # An explicit dict means the same; a sample_weight multiplies it, and (as repeated rows would)
    # the loss divides by the sample weights' sum (here 600), not by n.
    as_dict = clone(clf).set_params(class_weight={0: 400 / 720, 1: 5.0}).fit(X, y)
    assert as_dict.loss_curve_[0] == pytest.approx(clf.loss_curve_[0], rel=1e-12)
    sw = np.linspace(0.5, 2.5, 400)
    both = clone(clf).fit(X, y, sample_weight=sw)
    assert both.loss_curve_[0] == pytest.approx(np.sum(sw * w * per_sample) / np.sum(sw), rel=1e-9)
    assert abs(both.loss_curve_[0] - np.sum(sw * w * per_sample) / 400) > 0.1 * both.loss_curve_[0]


def test_validation_errors():
    X, y = _data()
    fitted = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LogitNetClassifier().fit(np.where(np.eye(len(X), 8) == 1, np.nan, X), y)
    with pytest.raises(ValueError, match="only one class"):
        LogitNetClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="X has 3 features, but LogitNetClassifier is expecting 8"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="epochs"):
        LogitNetClassifier(epochs=0).fit(X, y)


def test_importing_logitnet_does_not_import_sklearn():
    code = "import sys, logitnet; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns) and clf.n_features_in_ == X.shape[1]
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)  # fitted with names, given none: scikit-learn's warning
