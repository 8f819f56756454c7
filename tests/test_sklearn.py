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
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from logitnet.sklearn import LogitNetClassifier  # noqa: E402

# The one expected failure, as for scikit-learn's own MLPClassifier: training is minibatch
# stochastic, so a sample weight of 2 changes the batches and steps, and is equivalent to
# repeating the sample only in expectation, not in the fitted weights.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "minibatch training: a weight of 2 equals repeating a sample only in expectation",
}


def test_check_estimator_in_full():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(LogitNetClassifier(), expected_failed_checks=EXPECTED_FAILED_CHECKS,
                                  on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == [], failed
    assert len(results) > 50


def _data(seed=0, n=300, classes=3):
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=classes,
                               random_state=seed)


def test_same_seed_same_predictions():
    X, y = _data()
    a = LogitNetClassifier(hidden_layer_sizes=(16,), epochs=20, random_state=0).fit(X, y)
    b = LogitNetClassifier(hidden_layer_sizes=(16,), epochs=20, random_state=0).fit(X, y)
    c = LogitNetClassifier(hidden_layer_sizes=(16,), epochs=20, random_state=1).fit(X, y)
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


def test_pipeline_cross_validation_grid_search_clone_and_pickle():
    X, y = _data(n=240)
    pipe = make_pipeline(StandardScaler(), LogitNetClassifier(hidden_layer_sizes=(16,), epochs=30,
                                                              learning_rate=1e-2, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(LogitNetClassifier(epochs=10, random_state=0),
                        {"hidden_layer_sizes": [(4,), (16,), (16, 8)]}, cv=2).fit(X, y)
    assert grid.best_params_["hidden_layer_sizes"] in [(4,), (16,), (16, 8)]
    fitted = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0).fit(X, y)
    assert clone(fitted).get_params() == fitted.get_params() and not hasattr(clone(fitted), "model_")
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    restored.partial_fit(X, y)  # still trains after unpickling
    fitted.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


def test_string_labels_binary_and_exact_probabilities():
    X, y_int = _data(classes=2)
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
    ours = LogitNetClassifier(hidden_layer_sizes=(64,), epochs=30, random_state=0, tol=0).fit(X[train], Y[train])
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


def test_weights_and_validation_errors():
    X, y = _data()
    balanced = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=5, class_weight="balanced", random_state=0)
    balanced.fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LogitNetClassifier().fit(np.where(np.eye(len(X), 8) == 1, np.nan, X), y)
    with pytest.raises(ValueError, match="only one class"):
        LogitNetClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="X has 3 features, but LogitNetClassifier is expecting 8"):
        balanced.predict(X[:, :3])
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
