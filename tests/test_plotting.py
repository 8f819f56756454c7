"""Plots: each function writes a real PNG of a sensible size, draws the numbers it was given (read back from
its matplotlib Figure), leaves no figure open, and checks its inputs."""

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


@pytest.fixture
def drawn(monkeypatch):
    """The Figures the plotting functions save, kept (not cleared after saving) to read back what was drawn."""
    figures = []
    real_save = plotting._save

    def save_and_keep(fig, path):
        figures.append(fig)
        fig.clear = lambda *args, **kwargs: None  # the Figure is standalone: nothing else holds it
        try:
            return real_save(fig, path)
        finally:
            del fig.clear

    monkeypatch.setattr(plotting, "_save", save_and_keep)
    return figures


def panels(fig) -> list:
    """The figure's visible axes other than colour bars, in order."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def curves(ax) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """{legend label: (x data, y data, line style)} of an axes' lines."""
    return {line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()), line.get_linestyle())
            for line in ax.get_lines()}


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


def test_learning_curves_draw_the_history(tmp_path, drawn):
    plotting.learning_curves(HISTORY, tmp_path / "curves.png")
    (fig,) = drawn
    assert fig.get_suptitle() == "Learning curves"
    loss, accuracy = panels(fig)  # loss first, then the metric
    for ax, name in ((loss, "loss"), (accuracy, "accuracy")):
        assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (name, "epoch", name)
        lines = curves(ax)
        assert set(lines) == {"train", "validation"}
        for label, key, style in (("train", name, "-"), ("validation", f"val_{name}", "--")):
            x, y, drawn_style = lines[label]
            np.testing.assert_array_equal(x, [1, 2, 3, 4, 5])
            np.testing.assert_array_equal(y, HISTORY[key])
            assert drawn_style == style
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]


def test_learning_curves_same_inputs_same_bytes(tmp_path):
    first = plotting.learning_curves(HISTORY, tmp_path / "one.png").read_bytes()
    second = plotting.learning_curves(HISTORY, str(tmp_path / "two.png")).read_bytes()
    assert first == second


def test_learning_curves_from_a_real_fit_and_odd_keys(tmp_path, drawn):
    x, y = blobs()
    model = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.25, shuffle=True, verbose=0)
    png_size(plotting.learning_curves(history, tmp_path / "fit.png"))  # a History object
    png_size(plotting.learning_curves(history.history, tmp_path / "fit_dict.png"))
    for fig in drawn:  # the History's numbers, as the object and as its dict
        loss, accuracy = panels(fig)
        for ax, name in ((loss, "loss"), (accuracy, "accuracy")):
            lines = curves(ax)
            np.testing.assert_array_equal(lines["train"][1], history.history[name])
            np.testing.assert_array_equal(lines["validation"][1], history.history[f"val_{name}"])
            np.testing.assert_array_equal(lines["train"][0], [1, 2, 3])
    # only a validation curve, and many panels on a grid
    odd = {"val_auc": [0.6, 0.7], "loss": [1.0, 0.5], "a": [1, 2], "b": [2, 3], "c": [3, 4]}
    png_size(plotting.learning_curves(odd, tmp_path / "odd.png"))
    fig = drawn[-1]
    assert len(fig.axes) == 6  # a 2 x 3 grid ...
    shown = panels(fig)  # ... of which the sixth is hidden
    assert [ax.get_title() for ax in shown] == ["loss", "auc", "a", "b", "c"]
    auc = curves(shown[1])
    assert list(auc) == ["validation"]
    np.testing.assert_array_equal(auc["validation"][1], [0.6, 0.7])
    np.testing.assert_array_equal(curves(shown[4])["train"][1], [3, 4])


def test_learning_curves_checks_inputs(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plotting.learning_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"history\['loss'\]"):
        plotting.learning_curves({"loss": [[1, 2]]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png"):
        plotting.learning_curves(HISTORY, tmp_path / "x.svg")
    assert list(tmp_path.iterdir()) == []


def cells(ax) -> dict[tuple[int, int], tuple[str, str]]:
    """{(row, column): (text, colour)} of the numbers written in a heat map's cells."""
    out = {}
    for t in ax.texts:
        column, row = t.get_position()
        out[int(row), int(column)] = (t.get_text(), t.get_color())
    return out


def test_confusion_matrix_plot_ten_classes(tmp_path, drawn):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, size=500))
    cm = metrics.confusion_matrix(y_true, y_pred, n_classes=10)
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)  # rows true, columns predicted
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    width, height = png_size(plotting.confusion_matrix_plot(cm, names, tmp_path / "cm.png"))
    assert width >= 600 and height >= 600  # room for 100 readable counts
    (ax,) = panels(drawn[-1])
    np.testing.assert_array_equal(ax.images[0].get_array(), counts)
    written = cells(ax)
    assert len(written) == 100 and len(ax.texts) == 100
    threshold = (counts.min() + counts.max()) / 2
    for (i, j), (text, colour) in written.items():
        assert text == str(counts[i, j])
        assert colour == ("white" if counts[i, j] > threshold else "black")  # readable on the dark cells
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted class", "true class", "Confusion matrix")
    assert len(drawn[-1].axes) == 2  # and its colour bar
    normalised = cm / cm.sum(axis=1, keepdims=True)  # rates are written with two decimals
    png_size(plotting.confusion_matrix_plot(normalised, names, tmp_path / "rates.png", title="Recall"))
    (ax,) = panels(drawn[-1])
    assert ax.get_title() == "Recall"
    np.testing.assert_allclose(ax.images[0].get_array(), counts / counts.sum(axis=1, keepdims=True), rtol=1e-15)
    assert {k: t for k, (t, _) in cells(ax).items()} == {
        (i, j): f"{counts[i, j] / counts[i].sum():.2f}" for i in range(10) for j in range(10)}


def test_confusion_matrix_plot_small_exact_cells(tmp_path, drawn):
    cm = np.array([[5, 0, 1], [2, 7, 0], [0, 3, 9]])
    plotting.confusion_matrix_plot(cm, ["a", "b", "c"], tmp_path / "cm.png")
    (ax,) = panels(drawn[-1])
    assert cells(ax) == {(0, 0): ("5", "white"), (0, 1): ("0", "black"), (0, 2): ("1", "black"),
                         (1, 0): ("2", "black"), (1, 1): ("7", "white"), (1, 2): ("0", "black"),
                         (2, 0): ("0", "black"), (2, 1): ("3", "black"), (2, 2): ("9", "white")}
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)  # row i is true class i: not transposed


def test_confusion_matrix_plot_checks_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        plotting.confusion_matrix_plot(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="3 names for a 2x2"):
        plotting.confusion_matrix_plot(np.eye(2), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(TypeError, match="numeric"):
        plotting.confusion_matrix_plot(np.array([["a"]]), ["a"], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def bars(ax) -> list[tuple[float, float]]:
    """(length, centre row) of each horizontal bar."""
    return [(p.get_width(), p.get_y() + p.get_height() / 2) for p in ax.patches]


def test_per_label_f1_from_a_multilabel_task(tmp_path, drawn):
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, size=(200, 6))
    y_pred = np.where(rng.random((200, 6)) < 0.8, y_true, 1 - y_true)
    f1 = metrics.f1_score(y_true, y_pred, average=None)
    tp = ((y_true == 1) & (y_pred == 1)).sum(axis=0)
    wrong = (y_true != y_pred).sum(axis=0)
    by_hand = 2 * tp / (2 * tp + wrong)  # F1 = 2TP / (2TP + FP + FN)
    names = ["sci-fi", "action", "romance", "comedy", "horror", "drama"]  # not sorted: the given order
    png_size(plotting.per_label_f1(f1, names, tmp_path / "f1.png"))
    (ax,) = panels(drawn[-1])
    np.testing.assert_allclose([w for w, _ in bars(ax)], by_hand, rtol=1e-12)
    assert [row for _, row in bars(ax)] == [0, 1, 2, 3, 4, 5]
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.yaxis_inverted()  # the first label on top
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in by_hand]
    (macro,) = ax.get_lines()
    np.testing.assert_allclose(macro.get_xdata(), [by_hand.mean()] * 2, rtol=1e-12)
    assert ax.get_title() == f"Per-label F1 (dashed: macro F1 = {by_hand.mean():.2f})" and ax.get_xlabel() == "F1"
    png_size(plotting.per_label_f1(np.array([0.0, 1.0]), ["never", "always"], tmp_path / "edges.png"))
    (ax,) = panels(drawn[-1])
    assert bars(ax) == [(0.0, 0.0), (1.0, 1.0)] and ax.get_xlim()[1] > 1.0  # the full bar and its label fit
    assert ax.get_title() == "Per-label F1 (dashed: macro F1 = 0.50)"


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


def regions(ax):
    """The decision-region image: (predicted class per grid cell, its colour map, its extent)."""
    (image,) = ax.images
    assert image.origin == "lower"  # row 0 of the grid (the smallest x1) is drawn at the bottom
    return np.asarray(image.get_array()), image.get_cmap(), image.get_extent(), image.get_clim()


def grid_of(extent, resolution):
    """The (resolution**2, 2) grid the plot predicts on, rebuilt from the image's extent."""
    x0, x1, y0, y1 = extent
    g0, g1 = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return np.column_stack([g0.ravel(), g1.ravel()])


def check_points_and_legend(ax, x, y, class_names, cmap):
    """One scatter per class, holding that class's points, in the colour of its region."""
    assert len(ax.collections) == len(class_names)
    for k, points in enumerate(ax.collections):
        np.testing.assert_array_equal(points.get_offsets(), x[y == k])
        np.testing.assert_allclose(points.get_facecolor()[0], cmap(k))
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == list(class_names)
    assert legend.get_title().get_text() == "true class"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("feature 0", "feature 1", "Decision regions")


def test_decision_regions_softmax_model(tmp_path, drawn):
    x, y = blobs()
    model = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    names = ["left", "right", "top"]
    out = plotting.decision_regions(model, x, y, names, tmp_path / "regions.png", resolution=60)
    png_size(out)
    (ax,) = panels(drawn[-1])
    predicted, cmap, extent, clim = regions(ax)
    assert predicted.shape == (60, 60) and cmap.N == 3 and clim == (-0.5, 2.5)  # one colour per class
    expected = model.predict(grid_of(extent, 60), verbose=0).argmax(axis=1).reshape(60, 60)
    np.testing.assert_array_equal(predicted, expected)
    assert len({tuple(cmap(k)) for k in range(3)}) == 3
    check_points_and_legend(ax, x, y, names, cmap)
    again = plotting.decision_regions(model, x, y, names, tmp_path / "again.png", resolution=60)
    assert out.read_bytes() == again.read_bytes()


def test_decision_regions_binary_sigmoid_and_logit_models(tmp_path, drawn):
    x, y = blobs()
    x, y = x[y < 2], y[y < 2]
    model = Sequential([Dense(8, "relu"), Dense(1, "sigmoid")], seed=0)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    png_size(plotting.decision_regions(model, x, y, ["no", "yes"], tmp_path / "binary.png", resolution=120))
    (ax,) = panels(drawn[-1])
    predicted, cmap, extent, _ = regions(ax)
    p_yes = model.predict(grid_of(extent, 120), verbose=0)[:, 0]
    np.testing.assert_array_equal(predicted, (p_yes >= 0.5).reshape(120, 120))  # one sigmoid: cut at 0.5
    assert set(np.unique(predicted)) == {0, 1} and cmap.N == 2
    check_points_and_legend(ax, x, y, ["no", "yes"], cmap)
    logits = Sequential([Dense(8, "relu"), Dense(3)], seed=0)
    logits.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    xb, yb = blobs()
    logits.fit(xb, yb, epochs=5, verbose=0)
    png_size(plotting.decision_regions(logits, xb, yb, ["a", "b", "c"], tmp_path / "logits.png", resolution=120))
    (ax,) = panels(drawn[-1])
    predicted, cmap, extent, _ = regions(ax)
    expected = logits.predict(grid_of(extent, 120), verbose=0).argmax(axis=1).reshape(120, 120)
    np.testing.assert_array_equal(predicted, expected)
    assert cmap.N == 3
    check_points_and_legend(ax, xb, yb, ["a", "b", "c"], cmap)


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


def test_decision_regions_grid_covers_the_data_with_a_margin(tmp_path, drawn):
    x = np.array([[0.0, 5.0], [2.0, 5.0], [1.5, 5.0]])  # flat second axis
    y = np.array([0, 1, 1])
    stub = LogitStub()
    png_size(plotting.decision_regions(stub, x, y, ["a", "b"], tmp_path / "stub.png", resolution=50))
    (grid,) = stub.grids  # predicted in one call
    assert grid.shape == (2500, 2)
    # x0 spans 0..2 with a 10% margin; the flat x1 = 5 gets a margin of 1 each side
    np.testing.assert_allclose([grid[:, 0].min(), grid[:, 0].max()], [-0.2, 2.2], rtol=1e-12)
    np.testing.assert_allclose([grid[:, 1].min(), grid[:, 1].max()], [4.0, 6.0], rtol=1e-12)
    (ax,) = panels(drawn[-1])
    predicted, cmap, extent, clim = regions(ax)
    np.testing.assert_allclose(extent, [-0.2, 2.2, 4.0, 6.0], rtol=1e-12)
    assert ax.get_xlim() == pytest.approx((-0.2, 2.2)) and ax.get_ylim() == pytest.approx((4.0, 6.0))
    # the stub's logit x0 - 1 says class 1 from x0 = 1 on: that half of the image, row by row
    np.testing.assert_array_equal(predicted, (grid[:, 0] >= 1.0).reshape(50, 50).astype(int))
    assert predicted[:, :24].max() == 0 and predicted[:, 26:].min() == 1
    assert cmap.N == 2 and clim == (-0.5, 1.5)
    check_points_and_legend(ax, x, y, ["a", "b"], cmap)


class NearestStub:
    """A model with C outputs whose largest is the class nearest to x0 (0, 1, ..., C-1)."""

    def __init__(self, n_classes):
        self.layers = [types.SimpleNamespace(activation="softmax")]
        self.n_classes = n_classes

    def predict(self, x, batch_size=32, verbose=0):
        return -(x[:, :1] - np.arange(self.n_classes)) ** 2


@pytest.mark.parametrize("n_classes", [12, 25])  # tab20, then turbo
def test_decision_regions_give_each_of_many_classes_its_own_colour(tmp_path, drawn, n_classes):
    x = np.column_stack([np.arange(n_classes, dtype=float), np.zeros(n_classes)])
    y = np.arange(n_classes)
    names = [f"c{k}" for k in range(n_classes)]
    plotting.decision_regions(NearestStub(n_classes), x, y, names, tmp_path / "many.png", resolution=40)
    (ax,) = panels(drawn[-1])
    predicted, cmap, extent, clim = regions(ax)
    assert cmap.N == n_classes and clim == (-0.5, n_classes - 0.5)
    assert len({tuple(np.round(cmap(k), 6)) for k in range(n_classes)}) == n_classes
    assert set(np.unique(predicted)) == set(range(n_classes))  # every class has its region
    np.testing.assert_array_equal(predicted[0], np.clip(np.round(grid_of(extent, 40)[:40, 0]), 0, n_classes - 1))
    check_points_and_legend(ax, x, y, names, cmap)


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


def column_bars(ax) -> list[tuple[float, float]]:
    """(centre, height) of each vertical bar."""
    return [(p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches]


def test_logits_and_probabilities_softmax_row(tmp_path, drawn):
    from logitnet.explain import explain

    model = Sequential([Dense(3, "softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.build((1,))
    model.set_weights([np.array([[2.0, 0.0, -1.0]]), np.zeros(3)])
    model.metadata["class_names"] = ["cat", "dog", "bird"]
    e = explain(model, np.array([[1.0]]), [1])
    out = e.plot(tmp_path / "row.png")
    width, height = png_size(out)
    assert width > height
    (fig,) = drawn
    assert fig.get_suptitle() == "Inside the softmax layer"
    z_ax, a_ax = panels(fig)
    assert (z_ax.get_title(), a_ax.get_title()) == ("logits z", "a = softmax(z)")
    assert column_bars(z_ax) == [(0.0, 2.0), (1.0, 0.0), (2.0, -1.0)]
    centres, heights = zip(*column_bars(a_ax))
    assert centres == (0.0, 1.0, 2.0)
    np.testing.assert_allclose(heights, e.probs, rtol=1e-7)
    for ax in (z_ax, a_ax):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
        orange = [k for k, p in enumerate(ax.patches) if np.allclose(p.get_facecolor(), plt.matplotlib.colors.to_rgba("tab:orange"))]
        assert orange == [1]  # the true class
    assert [t.get_text() for t in z_ax.texts] == ["2", "0", "-1"]
    assert [t.get_text() for t in a_ax.texts] == [f"{v:.3g}" for v in e.probs]
    assert [t.get_text() for t in a_ax.get_legend().get_texts()] == ["true class"]
    assert a_ax.get_ylim() == (0.0, 1.12)
    assert out.read_bytes() == e.plot(tmp_path / "again.png").read_bytes()


def test_logits_and_probabilities_sigmoid_thresholds_and_infinite_logits(tmp_path, drawn):
    z = np.array([40.0, np.inf, -np.inf, np.nan])
    a = np.array([1.0, 1.0, 0.0, np.nan])
    png_size(plotting.logits_and_probabilities(z, a, ["a", "b", "c", "d"], tmp_path / "s.png", head="sigmoid",
                                               true=[0, 2], thresholds=np.array([0.5, 0.7, 0.5, 0.5])))
    (fig,) = drawn
    assert fig.get_suptitle() == "Inside the sigmoid outputs"
    z_ax, a_ax = panels(fig)
    assert a_ax.get_title() == "a = sigmoid(z)"
    assert [h for _, h in column_bars(z_ax)] == [40.0, 0.0, 0.0, 0.0]  # non-finite bars are written, not drawn
    assert [t.get_text() for t in z_ax.texts] == ["40", "inf", "-inf", "nan"]
    (cuts,) = a_ax.collections
    segments = cuts.get_segments()
    np.testing.assert_allclose([s[0][1] for s in segments], [0.5, 0.7, 0.5, 0.5])
    np.testing.assert_allclose([(s[0][0], s[1][0]) for s in segments],
                               [(k - 0.45, k + 0.45) for k in range(4)])
    assert [t.get_text() for t in a_ax.get_legend().get_texts()] == ["true label", "threshold"]


def test_logits_and_probabilities_checks_inputs(tmp_path):
    path = tmp_path / "x.png"
    z, a, names = np.zeros(2), np.full(2, 0.5), ["a", "b"]
    with pytest.raises(ValueError, match=r"logits must have shape \(C,\)"):
        plotting.logits_and_probabilities(np.zeros((1, 2)), a, names, path)
    with pytest.raises(ValueError, match="probs must have the logits' shape"):
        plotting.logits_and_probabilities(z, np.full(3, 0.5), names, path)
    with pytest.raises(ValueError, match="1 names for 2 output units"):
        plotting.logits_and_probabilities(z, a, ["a"], path)
    with pytest.raises(ValueError, match=r"\[0, 1\], got 1\.5"):
        plotting.logits_and_probabilities(z, np.array([0.5, 1.5]), names, path)
    with pytest.raises(ValueError, match="head must be"):
        plotting.logits_and_probabilities(z, a, names, path, head="tanh")
    with pytest.raises(ValueError, match=r"true units must be in \[0, 2\)"):
        plotting.logits_and_probabilities(z, a, names, path, true=[2])
    with pytest.raises(ValueError, match="must end in .png"):
        plotting.logits_and_probabilities(z, a, names, tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == []
