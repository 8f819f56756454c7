"""Epoch lines write small values as Keras does ('loss: 3.1416e-06', never 'loss: 0.0000'): the one
formatter, ProgbarLogger's lines, and the `logitnet train` epoch lines of a run whose loss gets tiny."""

from __future__ import annotations

import csv
import io
import math
import re

import mpmath
import numpy as np
import pytest
from frameworks import need

from logitnet import Sequential, cli, cli_train, optimizers
from logitnet.callbacks import ProgbarLogger, format_value
from logitnet.layers import Dense

BOUNDARY = 1e-3
CASES = [
    (3.14159e-6, "3.1416e-06"),
    (3.14159, "3.1416"),
    (float(np.nextafter(BOUNDARY, 1.0)), "0.0010"),  # just above 1e-3: fixed point
    (BOUNDARY, "1.0000e-03"),  # 1e-3 itself is not > 1e-3
    (float(np.nextafter(BOUNDARY, 0.0)), "1.0000e-03"),
    (0.0011, "0.0011"),
    (0.00099, "9.9000e-04"),
    (0.0, "0.0000e+00"),
    (-0.0, "-0.0000e+00"),
    (-0.5, "-0.5000"),
    (-BOUNDARY, "-1.0000e-03"),
    (-0.0011, "-0.0011"),
    (-1e-5, "-1.0000e-05"),
    (12345.678, "12345.6780"),
    (1e-300, "1.0000e-300"),
    (5e-324, "4.9407e-324"),
    (math.nan, "nan"),
    (math.inf, "inf"),
    (-math.inf, "-inf"),
]


@pytest.mark.parametrize("value,text", CASES, ids=[t for _, t in CASES])
def test_format_value_follows_keras(value, text):
    assert format_value(value) == text


def test_format_value_takes_numpy_scalars_and_leaves_other_things_alone():
    assert format_value(np.float32(3.14159e-6)) == "3.1416e-06"
    assert format_value(np.float64(0.25)) == "0.2500"
    assert format_value(np.int64(3)) == "3.0000"
    assert format_value(np.float32("nan")) == "nan"
    assert format_value("n/a") == "n/a"
    assert format_value(None) == "None"


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_format_value_matches_keras_progbar(capsys):
    keras = need("keras")
    for value, _ in CASES:
        bar = keras.utils.Progbar(1, verbose=1, stateful_metrics=["loss"])
        bar.update(1, [("loss", value)], finalize=True)
        written = capsys.readouterr().out
        assert written.rstrip("\n").endswith(f" - loss: {format_value(value)}"), (value, written[-40:])


# --- ProgbarLogger ------------------------------------------------------------------------------
def confident_model() -> tuple[Sequential, np.ndarray, np.ndarray]:
    """Two classes, logits ±10 on two points, each correct: loss log1p(e^-20) ≈ 2.06e-9."""
    model = Sequential([Dense(2, "softmax")], seed=0)
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-12), loss="sparse_categorical_crossentropy")
    model.build((1,))
    model.set_weights([np.array([[10.0, -10.0]]), np.zeros(2)])
    return model, np.array([[1.0], [-1.0]]), np.array([0, 1])


TRUE_LOSS = float(mpmath.log1p(mpmath.exp(-20)))


def test_progbar_logger_epoch_line_shows_a_tiny_loss():
    model, x, y = confident_model()
    stream = io.StringIO()
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[ProgbarLogger(verbose=2, stream=stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert f"{TRUE_LOSS:.4e}" == "2.0612e-09"
    for epoch, line in enumerate(lines):
        assert re.fullmatch(rf"Epoch {epoch + 1}/2 - \d+\.\d\ds - loss: 2\.0612e-09", line), line
        assert format_value(history.history["loss"][epoch]) == "2.0612e-09"
    assert "0.0000" not in stream.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progbar_logger_bar_shows_a_tiny_loss():
    model, x, y = confident_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=1e-12), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    stream = Terminal()
    model.fit(x, y, epochs=1, batch_size=1, shuffle=False, verbose=0, callbacks=[ProgbarLogger(verbose=1, stream=stream)])
    text = stream.getvalue()
    assert text.startswith("Epoch 1/1\n")
    assert "\r1/2 [===============>..............] - loss: 2.0612e-09" in text  # the batch bar
    assert re.search(r"\r2/2 - \d+\.\d\ds - loss: 2\.0612e-09 - accuracy: 1\.0000\n$", text), text


def test_model_fit_verbose_lines_use_the_same_format(capsys):
    model, x, y = confident_model()
    model.fit(x, y, epochs=1, batch_size=2, verbose=2)
    assert "loss: 2.0612e-09" in capsys.readouterr().out


# --- the command line -------------------------------------------------------------------------
@pytest.fixture
def separable_csv(tmp_path):
    """Two well-separated clusters of 20 points: a net's loss falls far below 1e-3."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 0.5, (20, 2)), rng.normal(3, 0.5, (20, 2))])
    labels = ["a"] * 20 + ["b"] * 20
    path = tmp_path / "two.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["u", "v", "cls"])
        writer.writerows([[f"{p:.4f}", f"{q:.4f}", c] for (p, q), c in zip(x, labels)])
    return path


def test_cli_epoch_lines_show_a_tiny_loss(separable_csv, tmp_path, capsys):
    status = cli.main(["train", str(separable_csv), "--epochs", "300", "--seed", "0", "--layers", "4",
                       "--lr", "0.05", "--test-split", "0.25", "--out", str(tmp_path / "m.logitnet")])
    out = capsys.readouterr().out
    assert status == 0
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == 300
    last = epochs[-1]
    match = re.fullmatch(r"Epoch 300/300 - \d+\.\d\ds - loss: (\S+) - accuracy: 1\.0000 - "
                         r"val_loss: (\S+) - val_accuracy: 1\.0000 - [\d,]+ rows/s", last)
    assert match, last
    for text in match.groups():
        assert re.fullmatch(r"\d\.\d{4}e-\d\d", text), last  # Keras' small-value form
        assert 0 < float(text) < 1e-3
    assert "loss: 0.0000" not in out
    history = cli._load(str(tmp_path / "m.logitnet")).metadata["history"]
    assert last.split(" - ")[2] == f"loss: {format_value(history['loss'][-1])}"
    assert "Test accuracy: 1.0000 (10 of 10)" in out


def test_cli_rich_progress_lines_use_the_same_format(monkeypatch):
    pytest.importorskip("rich")
    import rich.console

    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    progress = cli_train._progress(2, 1000)
    assert not isinstance(progress, ProgbarLogger)
    progress.set_params({"epochs": 2, "steps": 4})
    printed = []
    progress.on_train_begin()
    try:
        monkeypatch.setattr(progress.bar.console, "print",  # rich also prints its own controls
                            lambda text, *a, **k: printed.append(text) if isinstance(text, str) else None)
        progress.on_epoch_begin(0)
        for step in range(4):
            progress.on_train_batch_end(step)
            if step == 1:
                half = progress.bar.tasks[0].completed
        progress.on_epoch_end(0, {"loss": 3.14159e-6, "accuracy": 1.0})
        task = progress.bar.tasks[0]
    finally:
        progress.on_train_end()
    assert len(printed) == 1
    assert re.fullmatch(r"Epoch 1/2 - loss: 3\.1416e-06 - accuracy: 1\.0000 - [\d,]+ rows/s", printed[0])
    assert task.fields["loss"] == "loss 3.1416e-06"
    assert task.fields["epoch"] == "1/2"
    assert task.completed == 1000 and half in (0, 500)  # redrawn at most every 0.2 s, and at the end
    assert re.fullmatch(r"[\d,]+", task.fields["rate"])


def test_cli_metric_reports_use_the_same_format(capsys):
    from logitnet.data import Dataset

    ds = Dataset(np.zeros((4, 1)), np.array([1, 1, 1, 1]), ["f"], ["cls"], ["a", "b"])
    always_a = np.tile([2.0, -0.2], (4, 1))  # the report decides from the logits
    results = cli._report(always_a, ds.y, ds, "Test")
    assert results == {"accuracy": 0.0}
    assert "Test accuracy: 0.0000e+00 (0 of 4)" in capsys.readouterr().out
