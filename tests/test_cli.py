"""The `logitnet` command, driven as a user would: train / evaluate / predict / info, every error
a one-line message with the right exit status, byte-identical reruns, and real PNG plots."""

from __future__ import annotations

import csv
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_runs import assert_a_killed_run_resumes_to_the_same_file, run

from logitnet import datasets


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    x, y = datasets.make_blobs(300, seed=1)
    colours = np.array(["red", "green", "blue", "gold"])[y]
    write_csv(folder / "blobs.csv", ["width", "height", "colour"],
              [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(x, colours)])
    return folder


def test_default_train_on_the_bundled_digits(work):
    result = run("train", "--seed", "0", "--epochs", "30", "--out", "digits.logitnet", cwd=work)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Data: bundled UCI digits: 1797 samples, 64 features, 10 classes" in out
    assert "Epoch 30/30" in out  # progress, one line per epoch when not on a terminal
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert accuracy > 0.93
    assert "Confusion matrix (rows: true class, columns: predicted):" in out
    assert "Model saved to digits.logitnet" in out and (work / "digits.logitnet").is_file()
    info = run("info", "digits.logitnet", cwd=work)
    assert info.returncode == 0 and "Trained on 1438 samples of bundled UCI digits for 30 epochs" in info.stdout
    assert "Classes (digit): 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in info.stdout


def test_same_seed_same_model_file_byte_for_byte(work):
    for name in ("a.logitnet", "b.logitnet"):
        assert run("train", "--seed", "7", "--epochs", "3", "--quiet", "--out", name, cwd=work).returncode == 0
    assert (work / "a.logitnet").read_bytes() == (work / "b.logitnet").read_bytes()
    run("train", "--seed", "8", "--epochs", "3", "--quiet", "--out", "c.logitnet", cwd=work)
    assert (work / "a.logitnet").read_bytes() != (work / "c.logitnet").read_bytes()


def test_csv_with_string_classes_then_evaluate_and_predict(work):
    result = run("train", "blobs.csv", "--target", "colour", "--seed", "1", "--epochs", "20", "--quiet",
                 "--out", "blobs.logitnet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split("Test accuracy: ")[1].split()[0]) > 0.9
    evaluation = run("evaluate", "blobs.logitnet", "blobs.csv", cwd=work)
    assert evaluation.returncode == 0 and "Evaluation accuracy:" in evaluation.stdout
    # Columns are matched by name, in any order; the original class names come back.
    write_csv(work / "new.csv", ["height", "width"], [[2.0, -5.0], [-2.0, 5.0]])
    pred = run("predict", "blobs.logitnet", "new.csv", "--proba", cwd=work)
    assert pred.returncode == 0, pred.stderr
    lines = pred.stdout.splitlines()
    assert lines[0] == "prediction,p(blue),p(gold),p(green),p(red)"
    assert [line.split(",")[0] for line in lines[1:]] == ["red", "gold"]
    assert all(abs(sum(map(float, line.split(",")[1:])) - 1) < 1e-5 for line in lines[1:])
    saved = run("predict", "blobs.logitnet", "blobs.csv", "--output", "out.csv", cwd=work)
    assert saved.returncode == 0 and len((work / "out.csv").read_text().splitlines()) == 301


def test_multilabel_default_and_npz_evaluation(work):
    result = run("train", "--multilabel", "--seed", "0", "--epochs", "20", "--quiet", "--out", "ml.logitnet",
                 cwd=work)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4 labels (even, prime, loop, large)" in out
    hamming = float(out.split("Test hamming loss: ")[1].split()[0])
    assert hamming < 0.08
    for key in ("subset accuracy:", "micro F1:", "macro F1:", "Per label:"):
        assert key in out
    x, y = datasets.load_digit_attributes()
    np.savez(work / "ml.npz", x=x[:100], y=y[:100])
    evaluation = run("evaluate", "ml.logitnet", "ml.npz", cwd=work)
    assert evaluation.returncode == 0 and "Evaluation hamming loss:" in evaluation.stdout
    pred = run("predict", "ml.logitnet", "ml.npz", cwd=work)
    assert pred.stdout.splitlines()[0] == "even,prime,loop,large"


def test_npy_pair(work):
    x, y = datasets.load_digits()
    np.save(work / "x.npy", x[:400])
    np.save(work / "y.npy", y[:400])
    result = run("train", "x.npy", "y.npy", "--seed", "0", "--epochs", "5", "--quiet", "--out", "npy.logitnet",
                 cwd=work)
    assert result.returncode == 0, result.stderr
    assert "Data: x.npy: 400 samples, 64 features, 10 classes" in result.stdout


def _error(result: subprocess.CompletedProcess, status: int, message: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert message in lines[-1], result.stderr
    if status == 1:
        assert len(lines) == 1


def test_data_errors_are_one_line(work):
    write_csv(work / "ragged.csv", ["a", "b", "label"], [[1, 2, "x"], [3, 4], [5, 6, "y"]])
    write_csv(work / "text.csv", ["a", "b", "label"], [[1, 2, "x"], ["seven", 4, "y"]])
    write_csv(work / "missing.csv", ["a", "b", "label"], [[1, 2, "x"], [3, "", "y"]])
    write_csv(work / "few.csv", ["a", "b", "label"], [[1, 2, "x"], [3, 4, "y"], [5, 6, "x"]])
    write_csv(work / "one_class.csv", ["a", "label"], [[i, "x"] for i in range(20)])
    (work / "empty.csv").write_text("")
    (work / "fake.logitnet").write_text("not a model")
    cases = [
        (("train", "nope.csv"), "no such file: nope.csv"),
        (("train", "ragged.csv"), "ragged.csv, line 3: 2 fields, but the header has 3"),
        (("train", "text.csv"), "text.csv, line 3, column 'a': 'seven' is not a number"),
        (("train", "missing.csv"), "missing.csv, line 3, column 'b': missing value"),
        (("train", "blobs.csv", "--target", "shade"), "no column named 'shade'; the columns are width, height, colour"),
        (("train", "few.csv"), "too few rows: 3 samples"),
        (("train", "one_class.csv"), "the target has a single class ('x')"),
        (("train", "empty.csv"), "empty.csv is empty"),
        (("train", "data.txt"), "no such file: data.txt"),
        (("evaluate", "fake.logitnet", "blobs.csv"), "not a readable logitnet model file"),
        (("info", "fake.logitnet"), "not a readable logitnet model file"),
        (("predict", "missing.logitnet", "blobs.csv"), "no model file at 'missing.logitnet'"),
    ]
    for args, message in cases:
        _error(run(*args, cwd=work), 1, message)
    (work / "data.txt").write_text("a,b\n1,2\n")
    _error(run("train", "data.txt", cwd=work), 1, "unsupported file type '.txt'; expected .csv, .npz or .npy")


def test_usage_errors_exit_2_and_debug_shows_the_traceback(work):
    _error(run("train", "--layers", "25,x", cwd=work), 2, "expected comma-separated layer sizes")
    _error(run("train", "--epochs", "0", cwd=work), 2, "expected a positive int")
    _error(run("train", "--bogus", cwd=work), 2, "unrecognized arguments: --bogus")
    _error(run("frobnicate", cwd=work), 2, "invalid choice: 'frobnicate'")
    debug = run("train", "nope.csv", "--debug", cwd=work)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DataError: no such file" in debug.stderr


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_are_real_pngs(work):
    pytest.importorskip("matplotlib")
    result = run("train", "blobs.csv", "--seed", "1", "--epochs", "5", "--quiet", "--plots", "figs",
                 "--out", "p.logitnet", cwd=work)
    assert result.returncode == 0, result.stderr
    for name in ("learning_curves.png", "confusion_matrix.png", "decision_regions.png"):
        width, height = _png_size(work / "figs" / name)
        assert 300 <= width <= 4000 and 200 <= height <= 4000
        assert 5_000 < (work / "figs" / name).stat().st_size < 2_000_000
    ml = run("train", "--multilabel", "--seed", "0", "--epochs", "3", "--quiet", "--plots", "mlfigs",
             "--out", "m.logitnet", cwd=work)
    assert ml.returncode == 0, ml.stderr
    _png_size(work / "mlfigs" / "per_label_f1.png")


def test_plots_draw_this_run(work, monkeypatch, capsys):
    # In-process, keeping each Figure after it is saved: the drawn numbers are the run's own.
    pytest.importorskip("matplotlib")
    from logitnet import cli, models, plotting

    figures = {}
    real_save = plotting._save

    def save_and_keep(fig, path):
        figures[Path(path).name] = fig
        fig.clear = lambda *args, **kwargs: None
        try:
            return real_save(fig, path)
        finally:
            del fig.clear

    monkeypatch.setattr(plotting, "_save", save_and_keep)
    monkeypatch.chdir(work)
    assert cli.main(["train", "blobs.csv", "--seed", "1", "--epochs", "5", "--quiet", "--plots", "figs_in",
                     "--out", "in.logitnet"]) == 0
    out = capsys.readouterr().out
    assert sorted(figures) == ["confusion_matrix.png", "decision_regions.png", "learning_curves.png"]
    model = models.load_model("in.logitnet")
    names = model.metadata["class_names"]
    assert names == ["blue", "gold", "green", "red"]

    def axes(name):
        return [ax for ax in figures[name].axes if ax.get_visible() and ax.get_label() != "<colorbar>"]

    # the confusion matrix drawn is the one printed, over the 60 test samples
    table = out.split("Confusion matrix (rows: true class, columns: predicted):\n")[1].splitlines()
    assert table[0].split() == names
    printed = np.array([[int(v) for v in row.split()[1:]] for row in table[1:5]])
    assert printed.sum() == 60
    (cm_ax,) = axes("confusion_matrix.png")
    np.testing.assert_array_equal(cm_ax.images[0].get_array(), printed)
    assert sorted(t.get_text() for t in cm_ax.texts) == sorted(str(v) for v in printed.ravel())
    assert [t.get_text() for t in cm_ax.get_xticklabels()] == names
    # the learning curves are the saved history: 5 epochs, training and validation
    history = model.metadata["history"]
    for ax in axes("learning_curves.png"):
        name = ax.get_title()
        lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
        np.testing.assert_array_equal(lines["train"], history[name])
        np.testing.assert_array_equal(lines["validation"], history[f"val_{name}"])
        assert len(lines["train"]) == 5
    # the decision regions are in the CSV's units: its points, and the model on the standardised grid
    (dr_ax,) = axes("decision_regions.png")
    x, y = datasets.make_blobs(300, seed=1)
    rows = np.array([[float(f"{a:.4f}"), float(f"{b:.4f}")] for a, b in x])  # as written to the CSV
    label = np.searchsorted(names, np.array(["red", "green", "blue", "gold"])[y])
    for k, points in enumerate(dr_ax.collections):
        np.testing.assert_allclose(points.get_offsets(), rows[label == k], rtol=0, atol=1e-12)
    (image,) = dr_ax.images
    x0, x1, y0, y1 = image.get_extent()
    assert x0 < rows[:, 0].min() and x1 > rows[:, 0].max() and y0 < rows[:, 1].min() and y1 > rows[:, 1].max()
    g0, g1 = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    std = model.metadata["standardize"]
    grid = (np.column_stack([g0.ravel(), g1.ravel()]) - std["mean"]) / std["scale"]
    np.testing.assert_array_equal(image.get_array(), model.predict(grid, verbose=0).argmax(axis=1).reshape(300, 300))
    assert image.get_cmap().N == 4 and [t.get_text() for t in dr_ax.get_legend().get_texts()] == names


def test_plots_without_matplotlib_say_how_to_install_it(work, tmp_path):
    blocker = tmp_path / "block"
    (blocker / "matplotlib").mkdir(parents=True)
    (blocker / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib is blocked here')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(blocker)}
    result = run("train", "--epochs", "1", "--quiet", "--plots", "figs2", "--out", "q.logitnet", cwd=work, env=env)
    _error(result, 1, 'plots need matplotlib: pip install "logitnet[plots]"')


def test_a_killed_run_resumes_to_the_same_model_file(work):
    assert_a_killed_run_resumes_to_the_same_file(
        ["train", "--seed", "3", "--epochs", "12", "--layers", "256,256", "--quiet"], work)
    ckpt = work / "cut.logitnet.checkpoint"
    assert not ckpt.exists()  # removed once the run completed
    _error(run("train", "--resume", "blobs.csv", cwd=work), 1, "not a readable logitnet model file")
