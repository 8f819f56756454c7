"""Plots: each function writes a real PNG of a sensible size, leaves no figure open, and checks its inputs."""

import importlib
import struct
import sys
import types

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import logitnet
from logitnet import Sequential, losses, metrics, plotting
from logitnet.layers import Dense

plt = plotting.require_matplotlib()


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file, after checking its signature, IHDR chunk and file size."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 5_000 <= len(data) <= 2_000_000, len(data)
    assert 200 <= width <= 4000 and 200 <= height <= 4000, (width, height)
    return width, height


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def blobs(n_per_class: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])
    x = np.concatenate([c + rng.normal(scale=0.6, size=(n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    return x, y


HISTORY = {"loss": [1.0, 0.7, 0.5, 0.4, 0.35], "val_loss": [1.1, 0.8, 0.6, 0.55, 0.56],
           "accuracy": [0.5, 0.7, 0.8, 0.85, 0.9], "val_accuracy": [0.45, 0.65, 0.75, 0.8, 0.8]}


def test_learning_curves_writes_png_in_a_new_folder(tmp_path):
    out = plotting.learning_curves(HISTORY, tmp_path / "a" / "b" / "curves.png")
    assert out == tmp_path / "a" / "b" / "curves.png"
    width, height = png_size(out)
    assert width > height  # two panels side by side


def test_learning_curves_same_inputs_same_bytes(tmp_path):
    first = plotting.learning_curves(HISTORY, tmp_path / "one.png").read_bytes()
    second = plotting.learning_curves(HISTORY, str(tmp_path / "two.png")).read_bytes()
    assert first == second


def test_learning_curves_from_a_real_fit_and_odd_keys(tmp_path):
    x, y = blobs()
    model = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.25, shuffle=True, verbose=0)
    png_size(plotting.learning_curves(history, tmp_path / "fit.png"))  # a History object
    png_size(plotting.learning_curves(history.history, tmp_path / "fit_dict.png"))
    # only a validation curve, and many panels on a grid
    odd = {"val_auc": [0.6, 0.7], "loss": [1.0, 0.5], "a": [1, 2], "b": [2, 3], "c": [3, 4]}
    png_size(plotting.learning_curves(odd, tmp_path / "odd.png"))


def test_learning_curves_checks_inputs(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plotting.learning_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"history\['loss'\]"):
        plotting.learning_curves({"loss": [[1, 2]]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plotting.learning_curves(HISTORY, tmp_path / "x.svg")
    assert list(tmp_path.iterdir()) == []


def test_confusion_matrix_plot_ten_classes(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, size=500))
    cm = metrics.confusion_matrix(y_true, y_pred, n_classes=10)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    width, height = png_size(plotting.confusion_matrix_plot(cm, names, tmp_path / "cm.png"))
    assert width >= 600 and height >= 600  # room for 100 readable counts
    normalised = cm / cm.sum(axis=1, keepdims=True)  # rates are written with two decimals
    png_size(plotting.confusion_matrix_plot(normalised, names, tmp_path / "rates.png", title="Recall"))


def test_confusion_matrix_plot_checks_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        plotting.confusion_matrix_plot(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="3 names for a 2x2"):
        plotting.confusion_matrix_plot(np.eye(2), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(TypeError, match="numeric"):
        plotting.confusion_matrix_plot(np.array([["a"]]), ["a"], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_per_label_f1_from_a_multilabel_task(tmp_path):
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, size=(200, 6))
    y_pred = np.where(rng.random((200, 6)) < 0.8, y_true, 1 - y_true)
    f1 = metrics.f1_score(y_true, y_pred, average=None)
    names = ["action", "comedy", "drama", "horror", "romance", "sci-fi"]
    png_size(plotting.per_label_f1(f1, names, tmp_path / "f1.png"))
    png_size(plotting.per_label_f1(np.array([0.0, 1.0]), ["never", "always"], tmp_path / "edges.png"))


def test_per_label_f1_checks_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"\[0, 1\].*1\.5.*'b'"):
        plotting.per_label_f1(np.array([0.5, 1.5]), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\[0, 1\].*nan"):
        plotting.per_label_f1(np.array([np.nan]), ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="1 names for 2"):
        plotting.per_label_f1(np.array([0.5, 0.5]), ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(L,\)"):
        plotting.per_label_f1(np.ones((2, 2)), ["a", "b"], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_decision_regions_softmax_model(tmp_path):
    x, y = blobs()
    model = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    out = plotting.decision_regions(model, x, y, ["left", "right", "top"], tmp_path / "regions.png")
    png_size(out)
    again = plotting.decision_regions(model, x, y, ["left", "right", "top"], tmp_path / "again.png")
    assert out.read_bytes() == again.read_bytes()


def test_decision_regions_binary_sigmoid_and_logit_models(tmp_path):
    x, y = blobs()
    x, y = x[y < 2], y[y < 2]
    model = Sequential([Dense(8, "relu"), Dense(1, "sigmoid")], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    png_size(plotting.decision_regions(model, x, y, ["no", "yes"], tmp_path / "binary.png", resolution=120))
    logits = Sequential([Dense(8, "relu"), Dense(3)], seed=0)
    logits.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    xb, yb = blobs()
    logits.fit(xb, yb, epochs=5, verbose=0)
    png_size(plotting.decision_regions(logits, xb, yb, ["a", "b", "c"], tmp_path / "logits.png", resolution=120))


def test_predicted_class_reads_probabilities_and_logits():
    one_unit = np.array([[0.4], [0.5], [-0.1], [0.2]])
    assert plotting._predicted_class(one_unit, "sigmoid").tolist() == [0, 1, 0, 0]
    assert plotting._predicted_class(one_unit, "linear").tolist() == [1, 1, 0, 1]
    logits = np.array([[-3.0, 1.0, 0.5], [2.0, -1.0, 0.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert plotting._predicted_class(logits, "linear").tolist() == [1, 0]
    assert plotting._predicted_class(probs, "softmax").tolist() == [1, 0]


class LogitStub:
    """A model whose one linear unit says "class 1" right of x0 = 1; it keeps the grid it was shown."""

    def __init__(self):
        self.layers = [types.SimpleNamespace(activation="linear")]
        self.grids = []

    def predict(self, x, batch_size=32, verbose=0):
        self.grids.append(x)
        return x[:, :1] - 1.0


def test_decision_regions_grid_covers_the_data_with_a_margin(tmp_path):
    x = np.array([[0.0, 5.0], [2.0, 5.0], [1.5, 5.0]])  # flat second axis
    stub = LogitStub()
    png_size(plotting.decision_regions(stub, x, np.array([0, 1, 1]), ["a", "b"], tmp_path / "stub.png",
                                       resolution=50))
    (grid,) = stub.grids  # predicted in one call
    assert grid.shape == (2500, 2)
    assert grid[:, 0].min() < 0.0 and grid[:, 0].max() > 2.0
    assert grid[:, 1].min() < 5.0 < grid[:, 1].max()


def test_decision_regions_checks_inputs(tmp_path):
    stub = LogitStub()
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match=r"2-D inputs x of shape \(n, 2\), got shape \(4, 3\)"):
        plotting.decision_regions(stub, np.zeros((4, 3)), np.zeros(4, dtype=int), ["a", "b"], path)
    with pytest.raises(ValueError, match=r"shape \(n, 2\), got shape \(4,\)"):
        plotting.decision_regions(stub, np.zeros(4), np.zeros(4, dtype=int), ["a", "b"], path)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        plotting.decision_regions(stub, np.zeros((2, 2)), np.array([0, 2]), ["a", "b"], path)
    with pytest.raises(ValueError, match="integer class indices"):
        plotting.decision_regions(stub, np.zeros((2, 2)), np.array([0.0, 1.0]), ["a", "b"], path)
    with pytest.raises(ValueError, match="resolution"):
        plotting.decision_regions(stub, np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], path, resolution=1)
    with pytest.raises(ValueError, match="predicts class 1, but only 1 class names"):
        plotting.decision_regions(stub, np.array([[0.0, 0.0], [3.0, 0.0]]), np.array([0, 0]), ["a"], path)
    assert stub.grids[-1].shape == (300 * 300, 2)  # the last call got as far as predicting
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_gives_the_install_hint(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    hint = 'plots need matplotlib: pip install "logitnet[plots]"'
    with pytest.raises(ImportError) as info:
        plotting.require_matplotlib()
    assert str(info.value) == hint
    with pytest.raises(ImportError, match="logitnet\\[plots\\]"):
        plotting.learning_curves(HISTORY, tmp_path / "sub" / "curves.png")
    with pytest.raises(ImportError, match="logitnet\\[plots\\]"):
        plotting.decision_regions(LogitStub(), np.zeros((2, 2)), np.array([0, 1]), ["a", "b"], tmp_path / "r.png")
    assert list(tmp_path.iterdir()) == []
    # the module itself imports without matplotlib
    monkeypatch.delitem(sys.modules, "logitnet.plotting")
    monkeypatch.setattr(logitnet, "plotting", plotting)  # restored after the fresh import replaces it
    fresh = importlib.import_module("logitnet.plotting")
    assert fresh is not plotting and callable(fresh.learning_curves)
