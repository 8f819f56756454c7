"""`explain`: one row's logits, exp(z − max z), probabilities and the loss of its true label, taken
exactly from the logits and, beside it, from probabilities rounded first (the seed notes' problem:
0 where the true loss is 4e-31, inf where it is 140). Hand-set weights make the logits known exactly;
the losses are checked against mpmath."""

from __future__ import annotations

import struct
import sys
import types

import mpmath
import numpy as np
import pytest
import reference as ref

from logitnet import Sequential, cli, losses
from logitnet.explain import Explanation, explain
from logitnet.layers import Activation, Dense, Softmax


def hand_model(z, activation="softmax", loss="sparse_categorical_crossentropy", dtype="float32", **meta):
    """One Dense unit per logit on a single input feature: x = [[1]] gives logits z exactly."""
    model = Sequential([Dense(len(z), activation)], dtype=dtype)
    model.compile(optimizer="sgd", loss=loss)
    model.build((1,))
    model.set_weights([np.array([z], dtype=np.float64), np.zeros(len(z))])
    model.metadata.update(meta)
    return model


ONE = np.array([[1.0]])
Z = [70.0, 0.0, -70.0]


def ce_ref(z, label):
    return ref.softmax_xent(np.asarray(z, dtype=np.float64), label)[0]


def test_confident_and_correct_exact_loss_is_tiny_probabilities_first_is_zero():
    model = hand_model(Z, class_names=["cat", "dog", "bird"])
    e = explain(model, ONE, [0])
    assert isinstance(e, Explanation)
    assert (e.kind, e.head, e.row, e.names) == ("softmax", "softmax", 0, ["cat", "dog", "bird"])
    assert e.logits.dtype == np.float32 and e.logits.tolist() == Z
    np.testing.assert_array_equal(e.shifted_exp, np.exp(np.array(Z) - 70.0))
    assert e.shifted_exp[1] == pytest.approx(3.975449735908647e-31, rel=1e-15)
    assert e.probs.dtype == np.float32
    assert e.probs.tolist() == [1.0, np.float32(float(mpmath.exp(-70) / (1 + mpmath.exp(-70)))), 0.0]
    truth = ce_ref(Z, 0)  # log1p(e^-70 + e^-140) ≈ 3.98e-31
    assert mpmath.almosteq(truth, mpmath.mpf("3.975449735908646807e-31"), rel_eps=1e-15)
    assert e.loss.dtype == np.float32 and ref.ulp_error(e.loss, truth, np.float32) <= ref.HALF_ULP
    assert e.loss_from_probs == 0.0 and not np.signbit(e.loss_from_probs)  # −log(1), the rounded a_y
    assert e.label == 0 and e.predicted == 0


def test_confident_and_wrong_exact_loss_is_finite_probabilities_first_is_inf():
    e = explain(hand_model(Z), ONE, [2])
    truth = ce_ref(Z, 2)  # 140 + log1p(e^-70 + e^-140)
    assert ref.ulp_error(e.loss, truth, np.float32) <= ref.HALF_ULP and e.loss == 140.0
    assert e.probs[2] == 0.0 and e.loss_from_probs == np.inf
    e = explain(hand_model(Z), ONE, [1])  # a middle class: both ways agree
    assert e.loss == e.loss_from_probs == 70.0


@pytest.mark.parametrize("margin", [40.0, 400.0])
def test_float64_models_round_in_float64(margin):
    z = [margin, 0.0, -margin]
    model = hand_model(z, dtype="float64")
    right, wrong = explain(model, ONE, [0]), explain(model, ONE, [2])
    assert right.logits.dtype == np.float64
    assert ref.ulp_error(right.loss, ce_ref(z, 0), np.float64) <= ref.F64_ULPS
    assert ref.ulp_error(wrong.loss, ce_ref(z, 2), np.float64) <= ref.F64_ULPS
    assert right.loss_from_probs == 0.0  # a_0 = 1 − e^-40 rounds to 1 in float64 as well
    # e^-80 is a float64 number, e^-800 is not: only the larger margin's a_2 rounds to 0
    assert (wrong.loss_from_probs == np.inf) == (margin == 400.0)
    if margin == 40.0:
        assert ref.ulp_error(wrong.loss_from_probs, ce_ref(z, 2), np.float64) <= 1e6  # finite, close


def test_table_shows_every_number_in_full():
    model = hand_model(Z, class_names=["cat", "dog", "bird"])
    text = explain(model, ONE, [0]).table()
    lines = text.splitlines()
    assert lines[0] == "Output: softmax (3 units, float32, row 0)"
    assert lines[1].split() == ["unit", "class", "z", "exp(z", "-", "max", "z)", "a", "=", "softmax(z)"]
    assert lines[3].split() == ["0", "cat", "70.0", "1", "1.0", "predicted,", "true"]
    assert lines[4].split() == ["1", "dog", "0.0", "3.97545e-31", "3.97545e-31"]
    assert lines[5].split() == ["2", "bird", "-70.0", "1.58042e-61", "0.0"]
    assert "True class: 0 (cat)" in text
    assert "loss from the logits (exact):        3.97545e-31" in text
    assert "loss from rounded probabilities:     0.0" in text
    assert "0.0000" not in text
    wrong = explain(model, ONE, [2]).table()
    assert "True class: 2 (bird)" in wrong and "exact):        140.0" in wrong
    assert "probabilities:     inf" in wrong and "makes the log infinite" in wrong
    assert str(explain(model, ONE, [2])) == wrong
    unlabelled = explain(model, ONE).table()
    assert "True class" not in unlabelled and "loss" not in unlabelled
    assert unlabelled.splitlines()[3].split()[-1] == "predicted"


def test_linear_output_reads_the_loss_to_choose_softmax_or_sigmoid():
    soft = hand_model(Z, activation="linear", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    e = explain(soft, ONE, [0])
    assert (e.kind, e.head) == ("linear", "softmax")
    assert e.loss == explain(hand_model(Z), ONE, [0]).loss and e.loss_from_probs == 0.0
    assert e.table().startswith("Output: linear logits z, read with softmax as the loss does")
    onehot = hand_model(Z, activation="linear", loss=losses.CategoricalCrossentropy(from_logits=True))
    assert explain(onehot, ONE, [[0, 0, 1]]).loss == 140.0
    binary = hand_model([40.0, -3.0], activation="linear", loss=losses.BinaryCrossentropy(from_logits=True))
    assert explain(binary, ONE).head == "sigmoid"


def test_activation_layer_output_and_function_activations():
    model = Sequential([Dense(3), Activation("softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.build((1,))
    model.set_weights([np.array([Z]), np.zeros(3)])
    e = explain(model, ONE, [0])
    assert e.kind == "softmax" and e.logits.tolist() == Z and e.loss == explain(hand_model(Z), ONE, [0]).loss
    layer = Sequential([Dense(3), Softmax()])  # a layer with no `activation` attribute, only its name
    layer.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    layer.build((1,))
    layer.set_weights([np.array([Z]), np.zeros(3)])
    assert explain(layer, ONE, [2]).loss == 140.0

    def softmax(x):  # Keras' layers hold functions: their __name__ says which
        return x

    stub = types.SimpleNamespace(layers=[types.SimpleNamespace(activation=softmax)], metadata={},
                                 predict_logits=lambda x: np.array([[2.0, 1.0]], dtype=np.float32))
    e = explain(stub, np.zeros(4), 1)
    assert e.kind == "softmax" and e.names == ["0", "1"]
    assert ref.ulp_error(e.loss, ce_ref([2.0, 1.0], 1), np.float32) <= ref.HALF_ULP


def test_labels_as_arrays_names_one_hot_and_single_samples():
    model = hand_model(Z, class_names=["cat", "dog", "bird"])
    x = np.array([[1.0], [-1.0], [0.5]])  # logits z, −z, z/2
    e = explain(model, x, np.array([0, 0, 2]), row=1)
    assert e.row == 1 and e.logits.tolist() == [-70.0, 0.0, 70.0] and e.label == 0 and e.loss == 140.0
    assert explain(model, x, ["cat", "dog", "dog"], row=2).label == 1
    assert explain(model, x, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], row=2).label == 2
    assert explain(model, x, "bird", row=0).label == 2  # a scalar: this row's label
    single = explain(model, np.array([1.0]), 0)
    assert single.row == 0 and single.logits.tolist() == Z
    assert explain(model, np.array([1.0]), [0, 1, 0]).label == 1  # a one-hot row of one sample


def test_errors_name_the_bad_value():
    model = hand_model(Z, class_names=["cat", "dog", "bird"])
    x = np.ones((2, 1))
    with pytest.raises(ValueError, match=r"row 2 is out of range: x has 2 rows \(0 to 1\)"):
        explain(model, x, row=2)
    with pytest.raises(ValueError, match="row -1 is out of range"):
        explain(model, x, row=-1)
    with pytest.raises(ValueError, match="row 1 is out of range: x has 1 row"):
        explain(model, np.array([1.0]), row=1)
    with pytest.raises(TypeError, match="row must be an integer, got True"):
        explain(model, x, row=True)
    with pytest.raises(ValueError, match="x has 2 rows but y has labels for 3 rows"):
        explain(model, x, [0, 1, 2])
    with pytest.raises(ValueError, match="x has 2 rows but y has labels for 1 row$"):
        explain(model, x, [[0, 1, 0]])
    with pytest.raises(ValueError, match=r"true class 3 is outside \[0, 3\)"):
        explain(model, x, [3, 0])
    with pytest.raises(ValueError, match="must be an integer"):
        explain(model, x, [0.5, 0])
    with pytest.raises(ValueError, match="'fish' is not a class of the model"):
        explain(model, x, ["fish", "cat"])
    with pytest.raises(ValueError, match="one-hot label must have 3 entries"):
        explain(model, np.array([1.0]), [0.5, 0.5, 0])
    relu = hand_model([1.0, 2.0], activation="relu", loss="mse")
    with pytest.raises(ValueError, match="output activation is 'relu'"):
        explain(relu, ONE)
    regression = hand_model([1.0], activation="linear", loss="mse")
    with pytest.raises(ValueError, match="compile it with a cross-entropy"):
        explain(regression, ONE)


# --- sigmoid ------------------------------------------------------------------------------------
ZS = [40.0, 0.5, -120.0]
TARGETS = [1, 0, 1]


def test_sigmoid_multilabel_losses_and_predicted_labels():
    model = hand_model(ZS, activation="sigmoid", loss="binary_crossentropy", target_names=["car", "bus", "person"])
    e = explain(model, ONE, [TARGETS])
    assert (e.kind, e.head, e.names) == ("sigmoid", "sigmoid", ["car", "bus", "person"])
    assert e.shifted_exp is None
    assert e.probs.tolist() == [1.0, np.float32(float(ref.sigmoid(0.5))), 0.0]
    assert e.predicted.tolist() == [1, 1, 0] and e.thresholds.tolist() == [0.5] * 3
    truths = [ref.bce(z, y)[0] for z, y in zip(ZS, TARGETS)]  # ≈ 4.25e-18, 0.974, 120
    assert ref.max_ulp_error(e.label_losses, truths, np.float32) <= ref.HALF_ULP
    assert e.label_losses[0] == pytest.approx(4.248354255291589e-18, rel=1e-7)
    from_probs = e.label_losses_from_probs
    assert from_probs[0] == 0.0 and from_probs[2] == np.inf  # σ(40) rounds to 1, σ(−120) to 0
    assert ref.ulp_error(from_probs[1], truths[1], np.float32) <= 2  # only a's rounding
    mean = mpmath.fsum(truths) / 3
    assert ref.ulp_error(e.loss, mean, np.float32) <= 1 and e.loss_from_probs == np.inf
    text = e.table()
    assert "Predicted labels: car, bus" in text
    row = text.splitlines()[3].split()
    assert row == ["0", "car", "40.0", "1.0", "0.5", "yes", "1", "4.248354e-18", "0.0"]
    assert text.splitlines()[5].split() == ["2", "person", "-120.0", "0.0", "0.5", "no", "1", "120.0", "inf"]
    assert f"loss from the logits (exact):        {e.loss!s}" in text


def test_sigmoid_uses_stored_thresholds_exactly():
    # σ(0.5) ≈ 0.6225: above 0.6, below 0.7
    for t, expected in ((0.6, [1, 1, 0]), (0.7, [1, 0, 0])):
        model = hand_model(ZS, activation="sigmoid", loss="binary_crossentropy", thresholds=[0.5, t, 0.5])
        e = explain(model, ONE)
        assert e.predicted.tolist() == expected and e.thresholds.tolist() == [0.5, t, 0.5]
        assert e.label is None and e.loss is None
    model = hand_model([0.0], activation="sigmoid", loss="binary_crossentropy", thresholds=0.5)
    assert explain(model, ONE).predicted.tolist() == [1]  # σ(0) = 0.5 >= 0.5
    with pytest.raises(ValueError, match="thresholds"):
        explain(hand_model(ZS, activation="sigmoid", loss="binary_crossentropy", thresholds=[0.5, 2.0, 0.5]), ONE)


def test_sigmoid_target_shapes():
    model = hand_model(ZS, activation="sigmoid", loss="binary_crossentropy")
    x = np.array([[1.0], [-1.0]])
    assert explain(model, x, [[1, 0, 1], [0, 1, 0]], row=1).label.tolist() == [0, 1, 0]
    assert explain(model, x, [1, 0, 1], row=1).label.tolist() == [1, 0, 1]  # that row's targets
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\)"):
        explain(model, x, [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        explain(model, ONE, [[1, 2, 0]])
    binary = hand_model([-30.0], activation="sigmoid", loss="binary_crossentropy")
    e = explain(binary, np.array([[1.0], [2.0]]), [1, 0], row=0)
    assert ref.ulp_error(e.loss, ref.bce(-30.0, 1)[0], np.float32) <= ref.HALF_ULP
    assert e.predicted.tolist() == [0] and e.names == ["0"]


# --- the command line ---------------------------------------------------------------------------
from test_cli import write_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A CLI-trained model on two clusters (its stored standardisation matters: the means are far from 0)."""
    folder = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal((10, 50), 0.5, (20, 2)), rng.normal((16, 40), 0.5, (20, 2))])
    labels = ["left"] * 20 + ["right"] * 20
    rows = [[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(x, labels)]
    write_csv(folder / "two.csv", ["u", "v", "side"], rows)
    write_csv(folder / "features.csv", ["v", "u"], [[r[1], r[0]] for r in rows])
    model = folder / "two.logitnet"
    assert cli.main(["train", str(folder / "two.csv"), "--epochs", "60", "--seed", "0", "--layers", "4",
                     "--quiet", "--out", str(model)]) == 0
    return folder, model, np.array([[float(r[0]), float(r[1])] for r in rows])


def test_cli_explain_prints_the_table_for_a_row(trained, capsys):
    folder, model_path, x = trained
    capsys.readouterr()
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--row", "25"]) == 0
    out = capsys.readouterr().out
    model = cli._load(str(model_path))
    expected = explain(model, cli._scale(model, x), np.array([0] * 20 + [1] * 20), row=25)
    assert expected.label == 1 and expected.names == ["left", "right"]
    assert out == f"Row 25 of {folder / 'two.csv'} (40 rows)\n{expected.table()}\n"
    assert "True class: 1 (right)" in out and str(expected.loss) in out
    assert expected.predicted == 1
    # the features by name, in another order, and no target column: no loss
    assert cli.main(["explain", str(model_path), str(folder / "features.csv"), "--row", "25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Row 25 of {folder / 'features.csv'} (40 rows); no target column\n")
    assert str(expected.logits[0]) in out and "True class" not in out


def test_cli_explain_errors(trained, capsys):
    folder, model_path, _ = trained
    capsys.readouterr()
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--row", "40"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"logitnet explain: error: --row 40 is out of range: {folder / 'two.csv'} has 40 data "
                   "rows (--row 0 to 39)")
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--row", "-1"]) == 1
    assert "--row -1 is out of range" in capsys.readouterr().err
    assert cli.main(["explain", str(model_path), str(folder / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", str(model_path), str(folder / "two.csv"), "--row", "two"])
    assert info.value.code == 2


def test_cli_explain_multilabel(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2))
    rows = [[f"{a:.4f}", f"{b:.4f}", int(a > 0), int(b > 0)] for a, b in x]
    data = write_csv(tmp_path / "ml.csv", ["a", "b", "pos_a", "pos_b"], rows)
    out_model = tmp_path / "ml.logitnet"
    assert cli.main(["train", str(data), "--targets", "pos_a,pos_b", "--epochs", "30", "--seed", "0",
                     "--layers", "6", "--quiet", "--out", str(out_model)]) == 0
    capsys.readouterr()
    assert cli.main(["explain", str(out_model), str(data), "--row", "3"]) == 0
    out = capsys.readouterr().out
    model = cli._load(str(out_model))
    written = np.array([[float(r[0]), float(r[1])] for r in rows])  # as the CSV holds them
    expected = explain(model, cli._scale(model, written), np.array([r[2:] for r in rows]), row=3)
    assert expected.names == ["pos_a", "pos_b"] and expected.head == "sigmoid"
    assert expected.table() in out and "Predicted labels:" in out and "mean over the labels" in out


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_explain_plot_writes_a_png(trained, capsys):
    pytest.importorskip("matplotlib")
    folder, model_path, _ = trained
    png = folder / "plots" / "row3.png"
    capsys.readouterr()
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--row", "3", "--plot", str(png)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"Plot: {png}")
    width, height = png_size(png)
    assert width > height >= 300
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--plot", str(folder / "x.jpg")]) == 1
    assert "--plot writes a PNG" in capsys.readouterr().err and not (folder / "x.jpg").exists()


def test_cli_explain_plot_without_matplotlib(trained, capsys, monkeypatch):
    folder, model_path, _ = trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    capsys.readouterr()
    assert cli.main(["explain", str(model_path), str(folder / "two.csv"), "--plot", str(folder / "n.png")]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == 'logitnet explain: error: plots need matplotlib: pip install "logitnet[plots]"'
    assert captured.out == "" and not (folder / "n.png").exists()
