"""Bad input gets a clear error before any weight changes: the model's fit / evaluate / predict,
the scikit-learn estimator and the command line, over the same list of mistakes."""

from __future__ import annotations

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


FEATURE_MISTAKES = [
    ("nan feature", lambda: _with(X, 3, 1, np.nan), "contains nan at row 3, column 1"),
    ("inf feature", lambda: _with(X, 5, 0, -np.inf), "contains -inf at row 5, column 0"),
    ("wrong width", lambda: X[:, :3], "x has 3 features but the model expects 4"),
    ("empty", lambda: X[:0], "x is empty"),
    ("strings", lambda: X.astype(str), "x must be numeric"),
    ("objects", lambda: X.astype(object), "x must be numeric"),
    ("1-D", lambda: X[:, 0], "must have shape (n_samples, n_features)"),
]

LABEL_MISTAKES = [
    ("length", "sparse", lambda: Y[:-2], "x has 60 samples but y has 58"),
    ("out of range", "sparse", lambda: np.where(Y == 2, 7, Y), "class label 7 is out of range"),
    ("negative", "sparse", lambda: np.where(Y == 2, -1, Y), "class label -1 is out of range"),
    ("non-integer", "sparse", lambda: Y + 0.25, "non-integer value"),
    ("strings", "sparse", lambda: Y.astype(str), "y must be numeric"),
    ("one-hot to sparse", "sparse", lambda: np.eye(3)[Y], "these look one-hot"),
    ("not one-hot", "categorical", lambda: np.eye(3)[Y] + np.eye(3)[(Y + 1) % 3], "row 0 sums to 2"),
    ("negative mass", "categorical", lambda: np.eye(3)[Y] * 2 - 1, "finite and >= 0"),
    ("ints to categorical", "categorical", lambda: Y, "use SparseCategoricalCrossentropy"),
    ("bce above 1", "binary", lambda: np.where(Y == 0, 2.0, 1.0), "binary targets must lie in [0, 1], got 2"),
    ("bce negative", "binary", lambda: -(Y == 1).astype(float), "binary targets must lie in [0, 1]"),
]


def _model(kind: str) -> Sequential:
    out, loss = {"sparse": (Dense(3, "softmax"), "sparse_categorical_crossentropy"),
                 "categorical": (Dense(3, "softmax"), "categorical_crossentropy"),
                 "binary": (Dense(1, "sigmoid"), "binary_crossentropy")}[kind]
    m = Sequential([Dense(5, "relu"), out], seed=0)
    m.compile(optimizer="adam", loss=loss)
    m.build((4,))
    return m


def _unchanged(model: Sequential, before: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("name,make,message", FEATURE_MISTAKES, ids=[c[0] for c in FEATURE_MISTAKES])
def test_model_refuses_bad_features(name, make, message):
    m = _model("sparse")
    before = m.get_weights()
    for call in (lambda x: m.fit(x, Y[:len(x)] if len(np.shape(x)) else Y, verbose=0),
                 lambda x: m.evaluate(x, Y[:len(x)], verbose=0),
                 lambda x: m.predict(x, verbose=0)):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call(make())
    assert _unchanged(m, before)


@pytest.mark.parametrize("name,kind,make,message", LABEL_MISTAKES, ids=[c[0] for c in LABEL_MISTAKES])
def test_model_refuses_bad_labels(name, kind, make, message):
    m = _model(kind)
    before = m.get_weights()
    for call in (lambda y: m.fit(X, y, verbose=0), lambda y: m.evaluate(X, y, verbose=0),
                 lambda y: m.train_on_batch(X, y)):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            call(make())
    assert _unchanged(m, before)


@pytest.mark.parametrize("kwargs,message", [
    ({"epochs": -1}, "epochs must be an integer >= 0"),
    ({"epochs": 2.5}, "epochs must be an integer >= 0"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"validation_split": -0.1}, "validation_split must be in"),
    ({"sample_weight": np.full(60, np.nan)}, "sample_weight must be finite and >= 0"),
    ({"sample_weight": np.ones(3)}, "one weight per sample"),
    ({"class_weight": {0: -1.0}}, "class_weight\\[0\\] must be finite and >= 0"),
])
def test_model_refuses_absurd_settings(kwargs, message):
    m = _model("sparse")
    before = m.get_weights()
    with pytest.raises(ValueError, match=message):
        m.fit(X, Y, verbose=0, **kwargs)
    assert _unchanged(m, before)


@pytest.mark.parametrize("make,message", [
    (lambda: optimizers.Adam(learning_rate=float("nan")), "learning_rate must be finite and > 0"),
    (lambda: optimizers.SGD(learning_rate=-1), "learning_rate must be finite and > 0"),
    (lambda: optimizers.SGD(momentum=1.5), "momentum must lie in"),
    (lambda: Dense(0), "Dense units must be a positive integer"),
    (lambda: Dense(3, activation="swish"), "unknown activation 'swish'"),
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
