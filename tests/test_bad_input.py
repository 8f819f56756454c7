"""Bad input gets a clear error before any weight changes: the model's fit / evaluate / predict,
the scikit-learn estimator and the command line, over the same list of mistakes."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from logitnet import Sequential, losses, optimizers
from logitnet.layers import Dense

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4)).astype(np.float32)
Y = rng.integers(0, 3, 60)


def _with(x, row, col, value):
    x = x.astype(np.float64).copy()
    x[row, col] = value
    return x


def _row(y, row, value):
    """y (as floats when value is one) with y[row] set to value: one bad label in a later batch."""
    y = y.astype(np.result_type(y.dtype, np.asarray(value).dtype), copy=True)
    y[row] = value
    return y


# fit runs with batch_size 32 and shuffle=False, so rows 32..59 are its second batch. A mistake
# there would let the first batch update the weights if fit checked batch by batch (or not at all),
# so "the weights are unchanged" can fail only for those, and for mistakes that the training
# arithmetic would accept silently. "checked" lists the calls after which the weights are compared:
# only calls that, without the up-front checks, would have changed them. Without them:
# - a NaN or inf in the first batch makes that batch's loss non-finite, and the divergence guard
#   keeps the weights anyway: so the bad rows are 45 and 50, not 3 and 5;
# - strings and objects are converted to floats by the training path and train;
# - a wrong width, an empty x and a 1-D x fail in the first product, before any update;
# - evaluate and predict never update, so no comparison follows them.
FEATURE_MISTAKES = [
    ("nan feature", lambda: _with(X, 45, 1, np.nan), "contains nan at row 45, column 1", True),
    ("inf feature", lambda: _with(X, 50, 0, -np.inf), "contains -inf at row 50, column 0", True),
    ("wrong width", lambda: X[:, :3], "x has 3 features but the model expects 4", False),
    ("empty", lambda: X[:0], "x is empty", False),
    ("strings", lambda: X.astype(str), "x must be numeric", True),
    ("objects", lambda: X.astype(object), "x must be numeric", True),
    ("1-D", lambda: X[:, 0], "must have shape (n_samples, n_features)", False),
]

FIT, BATCH = "fit", "train_on_batch"
# Without the up-front checks: a label of -1 or 7 (in row 50) makes the loss read some other
# logit, non-integer labels are truncated and strings parsed, and two ones in a row are a valid
# soft target, so fit and train_on_batch both train. The other mistakes sit in row 50 (or, for the
# length, y ends before the second batch does): train_on_batch's one batch would fail in the
# arithmetic (shapes that do not broadcast, the per-batch check of binary and soft targets) before
# updating, fit only after its first batch. One-hot rows given to a sparse loss and integers given
# to a categorical one fail in the first batch's arithmetic: no comparison.
LABEL_MISTAKES = [
    ("length", "sparse", lambda: Y[:-2], "x has 60 samples but y has 58", {FIT}),
    ("out of range", "sparse", lambda: _row(Y, 50, 7), "class label 7 is out of range", {FIT, BATCH}),
    ("negative", "sparse", lambda: _row(Y, 50, -1), "class label -1 is out of range", {FIT, BATCH}),
    ("non-integer", "sparse", lambda: _row(Y, 50, 1.25), "non-integer value 1.25", {FIT, BATCH}),
    ("strings", "sparse", lambda: Y.astype(str), "y must be numeric", {FIT, BATCH}),
    ("one-hot to sparse", "sparse", lambda: np.eye(3)[Y], "these look one-hot", set()),
    ("not one-hot", "categorical", lambda: _row(np.eye(3)[Y], 50, [1.0, 1.0, 0.0]), "row 50 sums to 2",
     {FIT, BATCH}),
    ("negative mass", "categorical", lambda: _row(np.eye(3)[Y], 50, [-1.0, 1.0, 1.0]), "finite and >= 0",
     {FIT}),
    ("ints to categorical", "categorical", lambda: Y, "use SparseCategoricalCrossentropy", set()),
    ("bce above 1", "binary", lambda: _row((Y == 1).astype(float), 50, 2.0),
     "binary targets must lie in [0, 1], got 2", {FIT}),
    ("bce negative", "binary", lambda: _row((Y == 1).astype(float), 50, -1.0),
     "binary targets must lie in [0, 1]", {FIT}),
]


def _model(kind: str) -> Sequential:
    out, loss = {"sparse": (Dense(3, "softmax"), "sparse_categorical_crossentropy"),
                 "categorical": (Dense(3, "softmax"), "categorical_crossentropy"),
                 "binary": (Dense(1, "sigmoid"), "binary_crossentropy")}[kind]
    m = Sequential([Dense(5, "relu"), out], seed=0)
    m.compile(optimizer="adam", loss=loss)
    m.build((4,))
    return m


def _assert_unchanged(model: Sequential, before: list[np.ndarray]) -> None:
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,make,message,checked", FEATURE_MISTAKES, ids=[c[0] for c in FEATURE_MISTAKES])
def test_model_refuses_bad_features(name, make, message, checked):
    m = _model("sparse")
    before = m.get_weights()
    x = make()
    with pytest.raises(ValueError, match=re.escape(message)):
        m.fit(x, Y[:len(x)] if len(np.shape(x)) else Y, batch_size=32, shuffle=False, verbose=0)
    if checked:
        _assert_unchanged(m, before)
    for call in (lambda: m.evaluate(x, Y[:len(x)], verbose=0), lambda: m.predict(x, verbose=0)):
        with pytest.raises(ValueError, match=re.escape(message)):
            call()


@pytest.mark.parametrize("name,kind,make,message,checked", LABEL_MISTAKES, ids=[c[0] for c in LABEL_MISTAKES])
def test_model_refuses_bad_labels(name, kind, make, message, checked):
    y = make()
    for call_name, call in ((FIT, lambda m: m.fit(X, y, batch_size=32, shuffle=False, verbose=0)),
                            (BATCH, lambda m: m.train_on_batch(X, y)),
                            ("evaluate", lambda m: m.evaluate(X, y, verbose=0))):
        m = _model(kind)
        before = m.get_weights()
        with pytest.raises(ValueError, match=re.escape(message)):
            call(m)
        if call_name in checked:
            _assert_unchanged(m, before)


# Without its check, each setting marked True would train and change the weights: a negative
# validation_split keeps every sample for training (and fails only when it validates on none after
# the first epoch), a NaN weight in row 50 spoils only the second batch, a negative class weight
# trains away from class 0. The others fail before any update (range() of a float, a batch size of
# 0 dividing by zero, 3 weights indexed by a batch of 32) or train for no epoch (-1): no comparison.
@pytest.mark.parametrize("kwargs,message,checked", [
    ({"epochs": -1}, "epochs must be an integer >= 0", False),
    ({"epochs": 2.5}, "epochs must be an integer >= 0", False),
    ({"batch_size": 0}, "batch_size must be an integer >= 1", False),
    ({"validation_split": -0.1}, "validation_split must be in", True),
    ({"sample_weight": _row(np.ones(60), 50, np.nan)}, "sample_weight must be finite and >= 0", True),
    ({"sample_weight": np.ones(3)}, "one weight per sample", False),
    ({"class_weight": {0: -1.0}}, "class_weight\\[0\\] must be finite and >= 0", True),
])
def test_model_refuses_absurd_settings(kwargs, message, checked):
    m = _model("sparse")
    before = m.get_weights()
    with pytest.raises(ValueError, match=message):
        m.fit(X, Y, verbose=0, **{"batch_size": 32, "shuffle": False, **kwargs})
    if checked:
        _assert_unchanged(m, before)


@pytest.mark.parametrize("make,message", [
    (lambda: optimizers.Adam(learning_rate=float("nan")), "learning_rate must be finite and > 0"),
    (lambda: optimizers.SGD(learning_rate=-1), "learning_rate must be finite and > 0"),
    (lambda: optimizers.SGD(momentum=1.5), "momentum must lie in"),
    (lambda: Dense(0), "Dense units must be a positive integer"),
    (lambda: Dense(3, activation="mish"), "unknown activation 'mish'"),
    (lambda: losses.CategoricalCrossentropy(label_smoothing=2), "label_smoothing must lie in"),
])
def test_absurd_hyperparameters_are_refused_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_estimator_refuses_bad_input():
    pytest.importorskip("sklearn")
    from logitnet.sklearn import LogitNetClassifier

    clf = LogitNetClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0)
    cases = [
        ((_with(X, 0, 0, np.nan), Y), "Input X contains NaN"),
        ((_with(X, 0, 0, np.inf), Y), "Input X contains infinity"),
        ((X[:0], Y[:0]), "0 sample"),
        ((X, Y[:-1]), "inconsistent numbers of samples"),
        ((np.full((60, 4), "tall", dtype=object), Y), "could not convert string to float: 'tall'"),
        ((X, np.zeros(60)), "only one class"),
        ((X, rng.normal(size=60)), "Unknown label type"),
    ]
    for (x, y), message in cases:
        with pytest.raises(ValueError, match=message):
            clf.fit(x, y)
    for params, message in [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"),
                            ({"learning_rate": float("nan")}, "learning_rate")]:
        with pytest.raises(ValueError, match=message):
            LogitNetClassifier(**params).fit(X, Y)
    clf.fit(X, Y)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(X[:, :3])


def test_cli_refuses_bad_numbers(tmp_path):
    rows = ["a,b,label", "1,2,x", "3,inf,y"] + [f"{i},{i},{'xy'[i % 2]}" for i in range(20)]
    (tmp_path / "inf.csv").write_text("\n".join(rows) + "\n")
    result = subprocess.run([sys.executable, "-m", "logitnet", "train", "inf.csv"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "inf.csv, line 3, column 'b': 'inf' is not a finite number" in result.stderr


def test_cli_refuses_data_of_the_wrong_width(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "logitnet", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)

    assert cli("train", "--seed", "0", "--epochs", "1", "--quiet", "--out", "m.logitnet").returncode == 0
    np.savez(tmp_path / "narrow.npz", x=X[:, :3], y=Y)
    for command in (("evaluate", "m.logitnet", "narrow.npz"), ("predict", "m.logitnet", "narrow.npz")):
        result = cli(*command)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "narrow.npz has 3 features; the model was trained on 64" in result.stderr
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 64)), y=np.zeros(0))
    result = cli("evaluate", "m.logitnet", "empty.npz")
    assert result.returncode == 1 and "empty" in result.stderr
