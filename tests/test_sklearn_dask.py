"""LogitNetClassifier on Dask arrays and DataFrames: fit and partial_fit stream the blocks (never X
whole) and reproduce the in-memory fit without shuffling; predictions are lazy Dask arrays equal to
the NumPy ones; bad input is reported as for NumPy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

from dask.callbacks import Callback
from sklearn.datasets import make_multilabel_classification

from logitnet.sklearn import LogitNetClassifier

N_FEATURES = 5
CHUNK = 70  # 300 rows: blocks of 70, 70, 70, 70, 20; batches of 32 straddle them


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8)


class LargestX(Callback):
    """The most rows of X (arrays of N_FEATURES columns) that any Dask task produced."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        for part in result if isinstance(result, tuple) else (result,):
            if isinstance(part, np.ndarray) and part.ndim == 2 and part.shape[1] == N_FEATURES:
                self.rows = max(self.rows, part.shape[0])


def _assert_same_weights(a: LogitNetClassifier, b: LogitNetClassifier) -> None:
    for u, v in zip(a.model_.get_weights(), b.model_.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=0)


def test_the_watch_sees_x_computed_whole():
    X, _ = _data()
    with LargestX() as watch:
        np.asarray(da.from_array(X, chunks=CHUNK))
    assert watch.rows == len(X)


@pytest.mark.parametrize("params, weights", [
    ({"alpha": 0.1}, "dask"),
    ({"class_weight": "balanced", "early_stopping": True, "batch_size": "auto"}, "numpy"),
    ({"class_weight": {0: 0.5, 1: 2.0, 2: 1.0}, "alpha": 1e-2}, "dask"),
], ids=["sample-weight-alpha", "balanced-early-stopping", "dict-class-weight"])
def test_fit_on_dask_equals_fit_in_memory_without_shuffling(params, weights):
    X, y = _data()
    sw = np.random.default_rng(1).uniform(0.2, 3.0, size=len(X))
    base = {"hidden_layer_sizes": (8,), "epochs": 6, "batch_size": 32, "learning_rate": 1e-2, "shuffle": False,
            "random_state": 0, "tol": 0, **params}
    in_memory = LogitNetClassifier(**base).fit(X, y, sample_weight=sw)
    with LargestX() as watch:
        streamed = LogitNetClassifier(**base).fit(
            da.from_array(X, chunks=CHUNK), da.from_array(y, chunks=CHUNK),
            sample_weight=da.from_array(sw, chunks=CHUNK) if weights == "dask" else sw)
    assert 0 < watch.rows <= CHUNK  # block by block, never X whole
    assert streamed.model_.dtype == np.float64 and streamed.n_features_in_ == N_FEATURES
    np.testing.assert_array_equal(streamed.classes_, [0, 1, 2])
    _assert_same_weights(in_memory, streamed)
    assert streamed.n_iter_ == in_memory.n_iter_ == 6
    np.testing.assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-12)
    if base.get("early_stopping"):  # the last 10% validate, streamed as in memory
        val_loss = streamed.model_.history.history["val_loss"]
        assert len(val_loss) == 6 and val_loss[-1] < val_loss[0]
        np.testing.assert_allclose(val_loss, in_memory.model_.history.history["val_loss"], rtol=1e-12)
    # The weights matter, so the equality above tests their handling.
    unweighted = LogitNetClassifier(**{**base, "class_weight": None}).fit(X, y)
    assert np.abs(unweighted.model_.get_weights()[0] - streamed.model_.get_weights()[0]).max() > 1e-3


def test_shuffled_dask_fit_learns_and_is_reproducible():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, N_FEATURES))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)  # linearly separable
    Xd, yd = da.from_array(X, chunks=90), da.from_array(y, chunks=90)
    params = {"hidden_layer_sizes": (8,), "epochs": 20, "batch_size": 32, "learning_rate": 1e-2, "tol": 0}
    a = LogitNetClassifier(random_state=0, **params).fit(Xd, yd)
    b = LogitNetClassifier(random_state=0, **params).fit(Xd, yd)
    c = LogitNetClassifier(random_state=1, **params).fit(Xd, yd)
    for u, v in zip(a.model_.get_weights(), b.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.model_.get_weights()[0], c.model_.get_weights()[0])
    assert a.score(Xd, yd) >= 0.97 and c.score(X, y) >= 0.97
    # Shuffled, the streamed rows come in another order than in memory: a different fit.
    in_memory = LogitNetClassifier(random_state=0, **params).fit(X, y)
    assert not np.allclose(in_memory.model_.get_weights()[0], a.model_.get_weights()[0])


def test_predictions_are_lazy_dask_arrays_equal_to_numpy():
    X, y_int = _data()
    Xd = da.from_array(X, chunks=CHUNK)
    params = {"hidden_layer_sizes": (8,), "epochs": 20, "learning_rate": 1e-2, "random_state": 0}
    for y in (np.array(["no", "yes"])[(y_int > 0).astype(int)], y_int):  # binary with strings, multiclass
        clf = LogitNetClassifier(**params).fit(X, y)
        with LargestX() as watch:
            lazy = {name: getattr(clf, name)(Xd) for name in
                    ("predict", "predict_proba", "predict_log_proba", "decision_function")}
        assert watch.rows == 0  # nothing computed yet
        for name, out in lazy.items():
            assert isinstance(out, da.Array) and out.chunks[0] == Xd.chunks[0], name
            expected = getattr(clf, name)(X)
            computed = out.compute()
            assert computed.shape == expected.shape and computed.dtype == expected.dtype, name
            if name == "predict":
                np.testing.assert_array_equal(computed, expected)
            else:
                np.testing.assert_allclose(computed, expected, rtol=1e-12, atol=0, err_msg=name)
        yd = da.from_array(y, chunks=CHUNK)
        with LargestX() as watch:
            score = clf.score(Xd, yd)
        assert watch.rows <= CHUNK and isinstance(score, float)
        assert score == clf.score(X, y) and 0.7 < score < 1  # a trained model, not a trivial score
    assert set(np.unique(lazy["predict"].compute())) == {0, 1, 2}


def test_dataframes_give_feature_names_and_string_labels():
    X, y_int = _data()
    columns = [f"f{i}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(X, columns=columns).assign(label=np.array(["a", "b", "c"])[y_int])
    dframe = dd.from_pandas(frame, npartitions=4)
    params = {"hidden_layer_sizes": (8,), "epochs": 4, "batch_size": 32, "shuffle": False, "random_state": 0}
    in_memory = LogitNetClassifier(**params).fit(frame[columns], frame["label"])
    streamed = LogitNetClassifier(**params).fit(dframe[columns], dframe["label"])
    assert list(streamed.feature_names_in_) == columns and streamed.n_features_in_ == N_FEATURES
    assert list(streamed.classes_) == ["a", "b", "c"]
    _assert_same_weights(in_memory, streamed)
    labels = streamed.predict(dframe[columns])
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), in_memory.predict(frame[columns]))
    assert streamed.score(dframe[columns], dframe["label"]) == in_memory.score(frame[columns], frame["label"])
    with pytest.warns(UserWarning, match="feature names"):
        streamed.predict(da.from_array(X, chunks=CHUNK))  # fitted with names, given none
    with pytest.raises(ValueError, match="X's column 'label' has dtype .*not numeric"):
        LogitNetClassifier(**params).fit(dframe, dframe["label"])


def test_multilabel_on_dask():
    X, Y = make_multilabel_classification(n_samples=200, n_features=N_FEATURES, n_classes=3, random_state=0)
    X = X.astype(np.float64)
    Xd, Yd = da.from_array(X, chunks=60), da.from_array(Y, chunks=60)
    params = {"hidden_layer_sizes": (8,), "epochs": 5, "batch_size": 32, "shuffle": False, "random_state": 0}
    in_memory = LogitNetClassifier(**params).fit(X, Y)
    streamed = LogitNetClassifier(**params).fit(Xd, Yd, sample_weight=da.from_array(np.arange(200) % 3 + 1.0,
                                                                                     chunks=60))
    weighted = LogitNetClassifier(**params).fit(X, Y, sample_weight=np.arange(200) % 3 + 1.0)
    np.testing.assert_array_equal(streamed.classes_, [0, 1, 2])
    _assert_same_weights(weighted, streamed)
    assert not np.allclose(in_memory.model_.get_weights()[0], streamed.model_.get_weights()[0])
    labels = streamed.predict(Xd)
    assert isinstance(labels, da.Array) and labels.dtype == np.int64 and labels.shape == Y.shape
    np.testing.assert_array_equal(labels.compute(), weighted.predict(X))
    np.testing.assert_allclose(streamed.predict_proba(Xd).compute(), weighted.predict_proba(X), rtol=1e-12)
    assert streamed.score(Xd, Yd) == weighted.score(X, Y)  # subset accuracy
    with pytest.raises(ValueError, match="class_weight is for single-label"):
        LogitNetClassifier(class_weight="balanced", **params).fit(Xd, Yd)


def test_partial_fit_streams_dask_blocks():
    X, y = _data()
    params = {"hidden_layer_sizes": (8,), "batch_size": 32, "shuffle": False, "random_state": 3,
              "class_weight": "balanced"}
    in_memory, streamed = LogitNetClassifier(**params), LogitNetClassifier(**params)
    for start in range(0, 300, 100):
        rows = slice(start, start + 100)
        in_memory.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        with LargestX() as watch:
            streamed.partial_fit(da.from_array(X[rows], chunks=30), da.from_array(y[rows], chunks=30),
                                 classes=[0, 1, 2])
        assert watch.rows <= 30
    _assert_same_weights(in_memory, streamed)
    assert streamed.n_iter_ == 3
    np.testing.assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-12)
    # A label outside classes: a clear error, and the weights stay as they were.
    before = [w.copy() for w in streamed.model_.get_weights()]
    with pytest.raises(ValueError, match=r"y contains labels .*7.* not in classes"):
        streamed.partial_fit(da.from_array(X, chunks=CHUNK), da.from_array(np.where(y == 2, 7, y), chunks=CHUNK))
    for u, v in zip(before, streamed.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert streamed.n_iter_ == 3
    with pytest.raises(ValueError, match="y contains labels .*5.* not in classes"):
        LogitNetClassifier().partial_fit(da.from_array(X, chunks=CHUNK), da.from_array(y * 5 // 2, chunks=CHUNK),
                                         classes=[0, 1, 2])
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        LogitNetClassifier().partial_fit(da.from_array(X, chunks=CHUNK), da.from_array(y, chunks=CHUNK))


def test_dtype_follows_the_dask_input_unless_given():
    X, y = _data(n=120)
    yd = da.from_array(y, chunks=50)
    params = {"hidden_layer_sizes": (8,), "epochs": 3, "shuffle": False, "random_state": 0}
    cases = [(X, None, np.float64), (X.astype(np.float32), None, np.float32),
             (np.round(X * 10).astype(np.int64), None, np.float64), (X, "float32", np.float32)]
    for X_in, dtype, expected in cases:
        streamed = LogitNetClassifier(dtype=dtype, **params).fit(da.from_array(X_in, chunks=50), yd)
        in_memory = LogitNetClassifier(dtype=dtype, **params).fit(X_in, y)
        assert streamed.model_.dtype == expected and all(w.dtype == expected for w in streamed.model_.get_weights())
        for u, v in zip(in_memory.model_.get_weights(), streamed.model_.get_weights(), strict=True):
            np.testing.assert_array_equal(u, v)
        # Later data is converted to the fitted model's dtype, whatever its own.
        proba = streamed.predict_proba(da.from_array(X, chunks=50))
        assert proba.dtype == expected and proba.compute().dtype == expected


def test_bad_dask_input_is_reported_as_for_numpy():
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=CHUNK), da.from_array(y, chunks=CHUNK)
    fitted = LogitNetClassifier(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(Xd, yd)
    unknown = Xd[Xd[:, 0] > 0]  # boolean indexing: nan rows per block
    with pytest.raises(ValueError, match=r"X is a Dask array with unknown chunk sizes.*X\.compute_chunk_sizes\(\)"):
        LogitNetClassifier().fit(unknown, yd)
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        fitted.predict(unknown)
    with pytest.raises(ValueError, match=r"y is a Dask array with unknown chunk sizes"):
        LogitNetClassifier().fit(Xd, yd[yd >= 0])
    with pytest.raises(ValueError) as numpy_error:
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError) as dask_error:
        fitted.predict(Xd[:, :3])
    assert str(dask_error.value) == str(numpy_error.value) == (
        "X has 3 features, but LogitNetClassifier is expecting 5 features as input.")
    with pytest.raises(ValueError, match="X has 300 samples but y has 200"):
        LogitNetClassifier().fit(Xd, yd[:200])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        LogitNetClassifier().fit(Xd, yd, sample_weight=da.from_array(np.linspace(-1, 1, 300), chunks=CHUNK))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        LogitNetClassifier().fit(Xd, da.from_array(X[:, 0], chunks=CHUNK))
    with pytest.raises(ValueError, match="only one class"):
        LogitNetClassifier().fit(Xd, da.zeros(300, chunks=CHUNK))
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, n_features\)"):
        LogitNetClassifier().fit(Xd[:, 0], yd)


def test_importing_logitnet_sklearn_does_not_import_dask():
    code = "import sys, logitnet.sklearn; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
