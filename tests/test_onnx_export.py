"""ONNX export: onnxruntime's outputs against logitnet's own predict_logits / predict / labels, for
every task, layer kind and activation, in float32 and float64, at batch sizes 0, 1 and n; the command
line (raw features in, class names out) and the scikit-learn estimator; opsets, errors, atomic and
repeatable files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from test_cli import write_csv

from logitnet import Sequential, activations, cli, losses, onnx_export, ops
from logitnet.layers import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    LeakyReLU,
    Normalization,
    ReLU,
    Softmax,
)
from logitnet.metrics import multilabel_predict
from logitnet.onnx_export import to_onnx

# float32: the graph computes as logitnet does, but its matrix products may add in another order.
ATOL = {np.float32: 1e-6, np.float64: 1e-12}
# onnxruntime sums float32 products in float32; logitnet[fast]'s few-rows kernel sums them in float64
# (rounding once): a few ulps apart on values of several units.
RTOL = {np.float32: 1e-6, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


def session(model: object) -> ort.InferenceSession:
    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def outputs(sess: ort.InferenceSession, x: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))


def check(model: object, x: np.ndarray, expected: dict[str, np.ndarray], dtype: type) -> None:
    """The file's outputs for x[:0], x[:1] and x equal `expected` (labels exactly, numbers to ATOL
    and RTOL)."""
    sess = session(model)
    assert [o.name for o in sess.get_outputs()] == list(expected)
    for rows in (slice(0, 0), slice(0, 1), slice(None)):
        got = outputs(sess, x[rows].astype(dtype))
        for name, want in expected.items():
            want = want[rows]
            assert got[name].shape == want.shape, name
            if name == "label":
                assert got[name].dtype == (object if want.dtype.kind == "U" else want.dtype)
                np.testing.assert_array_equal(got[name], want)
            else:
                assert got[name].dtype == dtype, name
                np.testing.assert_allclose(got[name], want, rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=name)


def fitted(layers: list, x: np.ndarray, y: np.ndarray, loss: str, dtype: type) -> Sequential:
    model = Sequential(layers, seed=0, dtype=np.dtype(dtype).name)
    model.compile("adam", loss)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)) + np.array([0.0, 3.0, -2.0, 10.0])
    return x, (x[:, 0] + x[:, 1] > 3).astype(int) + (x[:, 2] > -2)


# --- the three tasks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_multiclass_model_matches_predict(data, dtype, tmp_path):
    x, y = data
    norm = Normalization()
    norm.adapt(x)
    model = fitted([Input((4,)), norm, Dense(8, "relu"), Dropout(0.5), Dense(3, "softmax")], x, y,
                   "sparse_categorical_crossentropy", dtype)
    model.export(tmp_path / "m.onnx", format="onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17 and proto.ir_version == 8
    logits = model.predict_logits(x)
    check(tmp_path / "m.onnx", x, {"logits": logits, "probabilities": model.predict(x, verbose=0),
                                   "label": logits.argmax(axis=1)}, dtype)
    graph = proto.graph
    assert graph.input[0].name == "input" and graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {o.name: o.type.WhichOneof("value") for o in graph.output} == \
        {"logits": "tensor_type", "probabilities": "tensor_type", "label": "tensor_type"}  # no ZipMap
    assert "ZipMap" not in {n.op_type for n in graph.node}


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_model_gives_both_probabilities_without_a_subtraction(data, dtype, tmp_path):
    x, y = data
    model = fitted([Input((4,)), Dense(6, "tanh"), Dense(1, "sigmoid")], x, y > 0, "binary_crossentropy", dtype)
    model.export(tmp_path / "b.onnx", thresholds=0.3)
    z = model.predict_logits(x)
    probs = np.hstack([ops.sigmoid(-z), ops.sigmoid(z)])
    np.testing.assert_array_equal(probs[:, 1:], model.predict(x, verbose=0))
    labels = multilabel_predict(z, 0.3).astype(np.int64)[:, 0]
    check(tmp_path / "b.onnx", x, {"logits": z, "probabilities": probs, "label": labels}, dtype)
    # P(class 0) for a confident positive keeps its digits: 1 − p would round it to 0.
    model.layers[-1].bias[...] = 40
    p0 = outputs(session(to_onnx(model)), x[:3].astype(dtype))["probabilities"][:, 0]
    np.testing.assert_allclose(p0, ops.sigmoid(-model.predict_logits(x[:3]))[:, 0], rtol=1e-6 if dtype == np.float32
                               else 1e-14)
    assert (p0 > 0).all() and (p0 < 1e-15).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel_model_uses_one_threshold_per_label(data, dtype, tmp_path):
    x, y = data
    targets = np.stack([y > 0, y > 1, x[:, 3] > 10], axis=1).astype(dtype)
    model = fitted([Input((4,)), Dense(6, "elu"), Dense(3, "sigmoid")], x, targets, "binary_crossentropy", dtype)
    thresholds = [0.2, 0.5, 0.9]
    model.export(tmp_path / "ml.onnx", thresholds=thresholds)
    z = model.predict_logits(x)
    labels = multilabel_predict(z, thresholds).astype(np.int64)
    assert 0 < labels.mean() < 1
    check(tmp_path / "ml.onnx", x, {"logits": z, "probabilities": model.predict(x, verbose=0), "label": labels}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_labels_follow_multilabel_predict_at_the_boundary(dtype):
    # Logits z = x exactly (identity kernel, zero bias): the values right at and around each cut.
    thresholds = np.array([0.5, 0.3, 0.9, 1e-6, 0.999999])
    k = len(thresholds)
    model = Sequential([Input((k,)), Dense(k, "sigmoid")], dtype=np.dtype(dtype).name)
    model.set_weights([np.eye(k), np.zeros(k)])
    cuts = np.log(thresholds) - np.log1p(-thresholds)
    near = []
    for c in cuts.astype(dtype):
        steps = [c]
        for _ in range(3):
            steps = [np.nextafter(steps[0], dtype(-np.inf)), *steps, np.nextafter(steps[-1], dtype(np.inf))]
        near.append(steps)
    x = np.array(near, dtype=dtype).T  # row r holds each label's r-th value around its cut
    sess = session(to_onnx(model, thresholds=thresholds))
    got = outputs(sess, x)
    np.testing.assert_array_equal(got["logits"], x)
    expected = multilabel_predict(x, thresholds, from_logits=True)
    assert 0 < expected.sum(axis=0).min() and expected.sum(axis=0).max() < len(x)  # both sides present
    np.testing.assert_array_equal(got["label"], expected)
    one = Sequential([Input((1,)), Dense(1, "sigmoid")], dtype=np.dtype(dtype).name)
    one.set_weights([np.ones((1, 1)), np.zeros(1)])
    for t, column in zip(thresholds, x.T):
        got = outputs(session(to_onnx(one, thresholds=t)), column[:, None])
        np.testing.assert_array_equal(got["label"], multilabel_predict(column, t))


# --- every layer kind, every activation -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_layer_kind(dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2, 3)) * 2 + 1
    norm = Normalization()
    norm.adapt(x)
    model = Sequential([
        Input((2, 3)), norm, Softmax(axis=1), Flatten(), Dense(8), ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2),
        LeakyReLU(0.3), Dense(6, use_bias=False), Activation("elu"), Dropout(0.3), Dense(5, "gelu"),
        Activation("log_softmax"), Normalization(axis=None, mean=-1.0, variance=4.0, invert=True),
        Normalization(mean=np.linspace(-1, 1, 5), variance=np.linspace(0.5, 2, 5)), Dense(4), Softmax(),
    ], seed=3, dtype=np.dtype(dtype).name)
    logits = model.predict_logits(x)
    check(to_onnx(model), x, {"logits": logits, "probabilities": model.predict(x, verbose=0),
                              "label": logits.argmax(axis=1)}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", activations.HIDDEN)
def test_every_activation_in_a_hidden_dense_layer(data, name, dtype):
    x, _ = data
    model = Sequential([Input((4,)), Dense(7, name), Dense(3, activation="softmax")], seed=2,
                       dtype=np.dtype(dtype).name)
    logits = model.predict_logits(x)
    check(to_onnx(model), x, {"logits": logits, "probabilities": model.predict(x, verbose=0),
                              "label": logits.argmax(axis=1)}, dtype)


def _gelu_tanh() -> Activation:
    layer = Activation("gelu")  # no layer asks for Keras' tanh form by name; the activation takes it
    layer.activation_params = {"approximate": True}
    return layer


ACTIVATION_LAYERS = {
    **{name: (lambda name=name: Activation(name)) for name in activations.REGISTRY},
    "gelu_tanh": _gelu_tanh, "relu_options": lambda: ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5),
    "relu6": lambda: ReLU(max_value=6.0), "leaky_relu_layer": lambda: LeakyReLU(0.3), "softmax_layer": Softmax,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATION_LAYERS))
def test_activation_values_over_the_whole_range(name, dtype):
    # A final linear Activation leaves the tested layer's outputs as the exported logits.
    grid = np.concatenate([np.linspace(-40, 40, 801), [-1e3, -745, -700, -100, 100, 700, 1e3]])
    x = np.stack([grid, -0.1 * grid]).astype(dtype)
    model = Sequential([Input((x.shape[1],)), ACTIVATION_LAYERS[name](), Activation("linear")],
                       dtype=np.dtype(dtype).name)
    proto = to_onnx(model)
    assert [o.name for o in proto.graph.output] == ["logits"]  # a regression-shaped model: logits alone
    got = outputs(session(proto), x)["logits"]
    want = model.predict_logits(x)
    eps = np.finfo(dtype).eps
    # float32 is computed as logitnet does (in float64 where it does, then rounded): 2 ulp. In
    # float64 onnxruntime's Exp is up to ~50 ulp off for arguments far below 0, which the tails
    # (e^-500 and the like) inherit. log_softmax near 0 (a row's largest entry) and 1 − erf(t) in the
    # float64 gelu series are exact only absolutely.
    rtol = 4 * eps if dtype == np.float32 else 2e-13
    atol = {"log_softmax": 64 * eps, "gelu": 1e-15}.get(name, np.finfo(dtype).tiny)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# --- the command line -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx_cli")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal((10, 50), 1.0, (30, 2)), rng.normal((13, 45), 1.0, (30, 2)),
                        rng.normal((16, 40), 1.0, (30, 2))])
    names = np.array(["left", "middle", "right"]).repeat(30)
    cells = [[f"{a:.4f}", f"{b:.4f}"] for a, b in x]
    write_csv(folder / "three.csv", ["u", "v", "side"], [[*c, n] for c, n in zip(cells, names)])
    write_csv(folder / "two_labels.csv", ["u", "v", "far_u", "high_v"],
              [[*c, int(a > 13), int(b > 45)] for c, (a, b) in zip(cells, x)])
    return folder, np.array(cells, dtype=np.float64)  # the features as written


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cli_export_takes_raw_features_and_gives_class_names(cli_data, dtype, capsys):
    folder, raw = cli_data
    model_path, out = folder / f"three_{dtype}.logitnet", folder / f"three_{dtype}.onnx"
    assert cli.main(["train", str(folder / "three.csv"), "--target", "side", "--epochs", "5", "--seed", "0",
                     "--layers", "6", "--dtype", dtype, "--quiet", "--out", str(model_path)]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(model_path), str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == (f"Exported {model_path} to {out} (ONNX opset 17)\nInput 'input': {dtype} (batch, 2), "
                       "the raw columns u, v; outputs 'logits', 'probabilities' and 'label' (the class name)\n")
    model = cli._load(str(model_path))
    x = raw.astype(dtype)  # the graph standardises in float64, as the command line does
    scaled = cli._scale(model, x.astype(np.float64))
    logits = model.predict_logits(scaled)
    names = np.array(model.metadata["class_names"])
    assert list(names) == ["left", "middle", "right"]
    check(out, x, {"logits": logits, "probabilities": model.predict(scaled, verbose=0),
                   "label": names[logits.argmax(axis=1)]}, np.dtype(dtype).type)
    assert cli.main(["predict", str(model_path), str(folder / "three.csv")]) == 0
    predicted = capsys.readouterr().out.splitlines()[1:]
    np.testing.assert_array_equal(outputs(session(out), x)["label"], predicted)
    props = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert props == {"task": "multiclass", "feature_names": '["u", "v"]', "target_names": '["side"]'}


def test_cli_export_multilabel(cli_data, capsys):
    folder, raw = cli_data
    model_path, out = folder / "two_labels.logitnet", folder / "two_labels.onnx"
    assert cli.main(["train", str(folder / "two_labels.csv"), "--targets", "far_u,high_v", "--epochs", "5",
                     "--seed", "0", "--layers", "6", "--quiet", "--out", str(model_path)]) == 0
    assert cli.main(["export", str(model_path), str(out), "--opset", "13"]) == 0
    assert "'label' (0/1 per label (far_u, high_v))" in capsys.readouterr().out
    model = cli._load(str(model_path))
    scaled = cli._scale(model, raw.astype(np.float32).astype(np.float64))
    logits = model.predict_logits(scaled)
    check(out, raw, {"logits": logits, "probabilities": model.predict(scaled, verbose=0),
                     "label": multilabel_predict(logits, 0.5).astype(np.int64)}, np.float32)
    assert cli.main(["predict", str(model_path), str(folder / "two_labels.csv")]) == 0
    printed = np.array([line.split(",") for line in capsys.readouterr().out.splitlines()[1:]], dtype=np.int64)
    np.testing.assert_array_equal(outputs(session(out), raw.astype(np.float32))["label"], printed)
    assert onnx.load(out).opset_import[0].version == 13


def test_cli_export_errors(cli_data, capsys, monkeypatch):
    folder, _ = cli_data
    model_path = folder / "errors.logitnet"
    assert cli.main(["train", str(folder / "three.csv"), "--target", "side", "--epochs", "1", "--seed", "0",
                     "--layers", "3", "--quiet", "--out", str(model_path)]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(model_path), str(folder / "bad.onnx"), "--opset", "12"]) == 1
    assert capsys.readouterr().err.startswith("logitnet export: error: opset must be an integer from 13 to ")
    assert not (folder / "bad.onnx").exists()
    assert cli.main(["export", str(folder / "nope.logitnet"), str(folder / "bad.onnx")]) == 1
    assert capsys.readouterr().err.startswith("logitnet export: error: ")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert cli.main(["export", str(model_path), str(folder / "bad.onnx")]) == 1
    assert capsys.readouterr().err == ('logitnet export: error: ONNX export needs the onnx package: '
                                       'pip install "logitnet[onnx]"\n')


def test_cli_predict_decides_multilabel_rows_from_the_logits(cli_data, capsys):
    folder, raw = cli_data
    model_path = folder / "edge.logitnet"
    assert cli.main(["train", str(folder / "two_labels.csv"), "--targets", "far_u,high_v", "--epochs", "1",
                     "--seed", "0", "--layers", "3", "--quiet", "--out", str(model_path)]) == 0
    model = cli._load(str(model_path))
    last = model.layers[-1]
    last.kernel[...] = 0
    last.bias[...] = [-1e-8, 1.0]  # logits exactly (−1e-8, 1): label 0 is negative, just
    model.save(str(model_path))
    capsys.readouterr()
    assert cli.main(["predict", str(model_path), str(folder / "two_labels.csv")]) == 0
    printed = np.array([line.split(",") for line in capsys.readouterr().out.splitlines()[1:]], dtype=np.int64)
    expected = multilabel_predict(model.predict_logits(cli._scale(model, raw)), 0.5)
    np.testing.assert_array_equal(printed, expected)


def test_cli_predict_picks_the_class_of_the_largest_logit(cli_data, capsys):
    folder, _ = cli_data
    model_path = folder / "tie.logitnet"
    assert cli.main(["train", str(folder / "three.csv"), "--target", "side", "--epochs", "1", "--seed", "0",
                     "--layers", "3", "--quiet", "--out", str(model_path)]) == 0
    model = cli._load(str(model_path))
    model.layers[-1].kernel[...] = 0
    model.layers[-1].bias[...] = [0.0, 1e-8, -1.0]  # "middle" has the largest logit
    model.save(str(model_path))
    capsys.readouterr()
    assert cli.main(["predict", str(model_path), str(folder / "three.csv")]) == 0
    assert set(capsys.readouterr().out.splitlines()[1:]) == {"middle"}


# --- the scikit-learn estimator ---------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "dtype"), [("binary", "float32"), ("multiclass", "float64"),
                                             ("multilabel", "float32"), ("multiclass_ints", "float32")])
def test_sklearn_export_matches_predict_and_predict_proba(data, kind, dtype, tmp_path):
    pytest.importorskip("sklearn")
    from logitnet.sklearn import LogitNetClassifier

    x, y = data
    targets = {"binary": np.array(["no", "yes"])[(y > 0).astype(int)],
               "multiclass": np.array(["ant", "bee", "cat"])[y],
               "multilabel": np.stack([y > 0, y > 1, x[:, 3] > 10], axis=1).astype(int),
               "multiclass_ints": np.array([3, 5, 9])[y]}[kind]
    est = LogitNetClassifier(hidden_layer_sizes=(5,), epochs=3, dtype=dtype, random_state=0,
                             thresholds=0.4).fit(x, targets)
    est.export(str(tmp_path / "est.onnx"), opset=17)
    z = est.decision_function(x)
    logits = z[:, None] if kind == "binary" else z
    labels = est.predict(x)
    check(tmp_path / "est.onnx", x, {"logits": logits, "probabilities": est.predict_proba(x), "label": labels},
          np.dtype(dtype).type)
    assert labels.dtype.kind == {"binary": "U", "multiclass": "U", "multilabel": "i", "multiclass_ints": "i"}[kind]


# --- options, errors, files -------------------------------------------------------------------------------
@pytest.fixture
def small() -> Sequential:
    return Sequential([Input((3,)), Dense(4, "relu"), Dense(3, "softmax")], seed=0)


@pytest.mark.parametrize(("opset", "ir_version"), [(13, 7), (17, 8), (21, 10)])
def test_opset_choice_pins_the_oldest_ir_version_that_holds_it(small, opset, ir_version):
    proto = to_onnx(small, opset=opset)
    assert proto.opset_import[0].version == opset and proto.ir_version == ir_version
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(outputs(session(proto), x.astype(np.float32))["probabilities"], small.predict(x),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("opset", [12, 1000, 17.0, "17", True, None])
def test_bad_opset_is_refused(small, opset, tmp_path):
    with pytest.raises(ValueError, match=r"opset must be an integer from 13 to \d+ .*got"):
        small.export(tmp_path / "m.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_bad_format_and_unbuilt_or_empty_models_are_refused(small, tmp_path):
    with pytest.raises(ValueError, match="format='tflite' is not supported; logitnet exports format='onnx'"):
        small.export(tmp_path / "m.tflite", format="tflite")
    with pytest.raises(ValueError, match=r"the model is not built.*build\(\(None, n_features\)\)"):
        Sequential([Dense(3, "softmax")]).export(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="the model has no layers"):
        Sequential().export(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    declared = Sequential([Input((3,)), Dense(2, "softmax")])  # the input shape is known: built on export
    declared.built = False
    declared.export(tmp_path / "d.onnx")
    assert declared.built and (tmp_path / "d.onnx").is_file()


def test_outputs_that_do_not_fit_a_task_are_refused(small, tmp_path):
    sigmoid3 = Sequential([Input((3,)), Dense(3, "sigmoid")])
    with pytest.raises(ValueError, match="task='binary' does not fit the model's 'sigmoid' output over 3 unit"):
        to_onnx(sigmoid3, task="binary")
    with pytest.raises(ValueError, match="got 2 thresholds for 3 labels"):
        to_onnx(sigmoid3, thresholds=[0.5, 0.5])
    with pytest.raises(ValueError, match="thresholds are probabilities"):
        to_onnx(sigmoid3, thresholds=1.5)
    with pytest.raises(ValueError, match="class_labels are for single-label tasks"):
        to_onnx(sigmoid3, class_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"class_labels must hold one label per class \(3\), got shape \(2,\)"):
        to_onnx(small, class_labels=["a", "b"])
    with pytest.raises(ValueError, match="task must be one of"):
        to_onnx(small, task="ranking")
    with pytest.raises(ValueError, match="ends in a 'tanh' output: logitnet exports classifiers"):
        Sequential([Input((3,)), Dense(2, "tanh")]).export(tmp_path / "t.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_linear_output_is_a_regression_unless_compiled_as_a_classifier(data):
    x, _ = data
    linear = Sequential([Input((4,)), Dense(5, "relu"), Dense(3)], seed=0)
    proto = to_onnx(linear)
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert {p.key: p.value for p in proto.metadata_props} == {"task": "regression"}
    linear.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    z = linear.predict_logits(x)
    check(to_onnx(linear, class_labels=[10, 20, 30]), x,
          {"logits": z, "probabilities": ops.softmax(z), "label": np.array([10, 20, 30])[z.argmax(axis=1)]},
          np.float32)


def test_same_model_same_bytes_and_a_failed_export_keeps_the_old_file(small, tmp_path):
    small.export(tmp_path / "a.onnx")
    small.export(tmp_path / "b.onnx")
    first = (tmp_path / "a.onnx").read_bytes()
    assert first == (tmp_path / "b.onnx").read_bytes()
    small.layers[0].bias[0] += 1
    small.export(tmp_path / "b.onnx")
    assert (tmp_path / "b.onnx").read_bytes() != first
    with pytest.raises(ValueError, match="class_labels must hold one label per class"):
        onnx_export.export(small, tmp_path / "a.onnx", class_labels=[1])
    assert (tmp_path / "a.onnx").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]


def test_onnx_is_needed_only_to_export(small, tmp_path, monkeypatch):
    code = "import sys, logitnet, logitnet.onnx_export; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "logitnet\[onnx\]"'):
        small.export(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
