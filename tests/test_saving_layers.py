"""Model files of format version 2: every layer kind (Flatten, Normalization, Dense, Dropout,
Activation, ReLU, LeakyReLU, Softmax) saved and loaded exactly (predictions bit for bit, config,
Normalization statistics, frozen layers, optimizer state, the same bytes on every save); each new
layer class's bad configs and arrays refused with the ModelFileError message that names them; and
a fuzz of those files' configs and statistics, which must load usable or be refused by a check."""

from __future__ import annotations

import io
import json
import math
import tracemalloc

import numpy as np
import pytest
import zipfiles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logitnet import Sequential, optimizers
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
from logitnet.saving import MAX_UNITS, ModelFileError, _check_config, save_model

FUZZ = settings(deadline=None, max_examples=150, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
X = np.random.default_rng(0).normal(size=(32, 2, 3)) * 3 + 1  # far from zero mean and unit variance
Y = np.arange(32) % 3
X4 = np.random.default_rng(1).normal(size=(32, 4)) * [1, 2, 3, 4] + [1, 2, 3, 4]


# --- models -------------------------------------------------------------------------------------
def every_layer(dtype: str = "float32") -> Sequential:
    """Every layer kind with weights or settings of its own; Normalization adapted on the data."""
    norm = Normalization()
    norm.adapt(X.reshape(len(X), -1))
    m = Sequential([Input((2, 3)), Flatten(), norm, Dense(5, "relu"), Dropout(0.2, seed=1), Dense(4),
                    LeakyReLU(0.1), Dense(3), Activation("softmax")], seed=0, dtype=dtype, name="every_layer")
    m.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    m.metadata = {"class_names": ["a", "b", "c"]}
    return m


def relu_softmax(dtype: str = "float32") -> Sequential:
    """ReLU with all three settings, a final Softmax layer, given Normalization statistics and a
    frozen Dense layer."""
    m = Sequential([Input((4,)), Normalization(mean=[1, 2, 3, 4], variance=[1, 4, 9, 16]),
                    Dense(6, trainable=False), ReLU(max_value=6, negative_slope=0.1, threshold=0.5), Dense(3),
                    Softmax()], seed=3, dtype=dtype, name="relu_softmax")
    m.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    m.fit(X4, Y, epochs=2, batch_size=8, verbose=0)
    return m


MODELS = {"every_layer": (every_layer, X), "relu_softmax": (relu_softmax, X4)}


def _bytes(model, tmp_path, **kw) -> bytes:
    path = tmp_path / "saved.logitnet"
    save_model(model, path, **kw)
    return path.read_bytes()


_load, _refusal = zipfiles.load, zipfiles.refusal


def _matches(message: str, expected: str) -> bool:
    parts = expected.split("...")
    if len(parts) == 1:
        return message == expected
    return message.startswith(parts[0]) and message.endswith(parts[-1]) and all(p in message for p in parts)


def _config(data: bytes) -> dict:
    return json.loads(dict(zipfiles.members(data))["config.json"])


def _with_config(data: bytes, change) -> bytes:
    config = _config(data)
    change(config)
    return zipfiles.replace(data, "config.json", json.dumps(config).encode())


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("layers")
    return {name: _bytes(make(), tmp) for name, (make, _) in MODELS.items()}


# --- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_every_layer_kind_round_trips_exactly(tmp_path, name, dtype):
    make, x = MODELS[name]
    m = make(dtype)
    loaded = _load(tmp_path, _bytes(m, tmp_path))
    assert [type(a) for a in loaded.layers] == [type(b) for b in m.layers]
    assert loaded.get_config() == m.get_config() and loaded.metadata == m.metadata
    assert loaded.get_config()["input_shape"] == list(x.shape[1:])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    np.testing.assert_array_equal(loaded.predict_logits(x), m.predict_logits(x))
    assert loaded.predict(x, verbose=0).dtype == np.dtype(dtype)
    for a, b in zip(loaded.get_weights(), m.get_weights(), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert loaded.count_params() == m.count_params()
    assert loaded.loss.get_config() == m.loss.get_config()
    assert loaded.optimizer.get_config() == m.optimizer.get_config()
    assert loaded.metric_names == m.metric_names


def test_the_layers_keep_their_settings(tmp_path, files):
    loaded = _load(tmp_path, files["every_layer"])
    flatten, norm, _, dropout, _, leaky, _, act = loaded.layers
    assert flatten.output_shape == (None, 6) and flatten.data_format is None
    assert norm.axis == (-1,) and not norm.invert and norm.input_mean is None
    assert dropout.rate == 0.2 and dropout.seed == 1 and dropout.noise_shape is None
    assert leaky.negative_slope == 0.1 and act.activation_name == "softmax"
    loaded = _load(tmp_path, files["relu_softmax"])
    norm, _, relu, _, softmax = loaded.layers
    np.testing.assert_array_equal(norm.input_mean, [1, 2, 3, 4])
    np.testing.assert_array_equal(norm.input_variance, [1, 4, 9, 16])
    assert norm.weights == [] and relu.max_value == 6 and relu.negative_slope == 0.1 and relu.threshold == 0.5
    assert softmax.axis == -1
    out = loaded.predict(X4, verbose=0)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)  # the final Softmax layer is the output


def test_normalization_statistics_are_kept(tmp_path, files):
    m = every_layer()
    adapted = m.layers[1]
    assert int(adapted.count) == 32 and not np.allclose(adapted.mean, 0) and not np.allclose(adapted.variance, 1)
    loaded = _load(tmp_path, files["every_layer"]).layers[1]
    assert [w.dtype for w in loaded.weights] == [np.float32, np.float32, np.int64]
    np.testing.assert_array_equal(loaded.mean, adapted.mean)
    np.testing.assert_array_equal(loaded.variance, adapted.variance)
    assert loaded.count.shape == () and int(loaded.count) == 32
    z = np.random.default_rng(5).normal(size=(7, 6))
    np.testing.assert_array_equal(np.asarray(loaded(z)), np.asarray(adapted(z)))  # the divisor is refreshed
    # The statistics are weights, not trained: a fit after loading leaves them as they were.
    model = _load(tmp_path, files["every_layer"])
    model.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[1].mean, adapted.mean)
    assert int(model.layers[1].count) == 32


def test_frozen_layers_stay_frozen_after_loading(tmp_path, files):
    m = relu_softmax()
    loaded = _load(tmp_path, files["relu_softmax"])
    frozen, trained = loaded.layers[1], loaded.layers[3]
    assert not frozen.trainable and trained.trainable
    assert _config(files["relu_softmax"])["model"]["layers"][1]["config"]["trainable"] is False
    assert len(loaded.trainable_weights) == 2 and len(loaded.non_trainable_weights) == 2
    np.testing.assert_array_equal(frozen.kernel, m.layers[1].kernel)
    before, before_trained = frozen.get_weights(), trained.get_weights()
    loaded.fit(X4, Y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(frozen.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(trained.get_weights(), before_trained))


def test_optimizer_state_is_kept_and_training_continues_identically(tmp_path, files):
    for name, (make, x) in MODELS.items():
        m = make()
        loaded = _load(tmp_path, files[name])
        state, kept = m.optimizer.get_state(), loaded.optimizer.get_state()
        assert sorted(kept) == sorted(state) and int(kept["iterations"]) == 8
        n_flat = sum(w.size for layer in m.layers for w in layer.flat_weights())  # frozen layers too
        for key, value in state.items():
            assert key == "iterations" or value.shape == (n_flat,)
            np.testing.assert_array_equal(kept[key], value)
    # Without Dropout (whose masks are drawn afresh) training goes on exactly as without the save.
    m, loaded = relu_softmax(), _load(tmp_path, files["relu_softmax"])
    m.fit(X4, Y, epochs=1, shuffle=False, verbose=0)
    loaded.fit(X4, Y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_same_model_saves_to_the_same_bytes(tmp_path, files, name):
    make, _ = MODELS[name]
    m = make()
    first = _bytes(m, tmp_path)
    assert _bytes(m, tmp_path) == first  # saved twice
    assert first == files[name]  # the same model built again
    assert _bytes(_load(tmp_path, first), tmp_path) == first  # saved again after loading
    without = _bytes(m, tmp_path, include_optimizer=False)
    assert _bytes(m, tmp_path, include_optimizer=False) == without != first


def test_an_uncompiled_model_of_every_layer_kind_round_trips(tmp_path):
    m = Sequential([Input((2, 3)), Normalization(axis=(1, 2)), Flatten(), Dense(4), ReLU(), Dropout(0.5),
                    Dense(2), Softmax()], seed=4)
    m.layers[0].adapt(X)
    loaded = _load(tmp_path, _bytes(m, tmp_path))
    assert loaded.optimizer is None and loaded.get_config() == m.get_config()
    assert [w.shape for w in loaded.layers[0].weights] == [(2, 3), (2, 3), ()]
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), m.predict(X, verbose=0))


# --- refusals -----------------------------------------------------------------------------------
def _layer_set(i: int, key: str, value):
    def change(config):
        config["model"]["layers"][i]["config"][key] = value
    return change


def _layer_drop(i: int, key: str):
    def change(config):
        del config["model"]["layers"][i]["config"][key]
    return change


def _model_set(key: str, value):
    def change(config):
        config["model"][key] = value
    return change


def _class(i: int, name: str):
    def change(config):
        config["model"]["layers"][i]["class_name"] = name
    return change


def _without_layer(i: int):
    def change(config):
        del config["model"]["layers"][i]
    return change


def _only(*layers):
    def change(config):
        config["model"]["layers"] = list(layers)
    return change


_SOFTMAX = {"class_name": "Softmax", "config": {"name": "s", "trainable": True, "axis": -1}}
_E, _R = "every_layer", "relu_softmax"
_NORM = "model.layers[1] (Normalization) does not fit inputs of shape (None, 6) (ValueError: "
_CLASSES = "['Activation', 'Dense', 'Dropout', 'Flatten', 'LeakyReLU', 'Normalization', 'ReLU', 'Softmax']"

# name -> (the base file, its config changed so, the message); `...` marks text left out.
CONFIG_REFUSED = {
    "class Conv2D": (_E, _class(3, "Conv2D"), f"model.layers[3].class_name must be one of {_CLASSES}, got 'Conv2D'"),
    "class InputLayer": (_E, _class(0, "InputLayer"),
                         f"model.layers[0].class_name must be one of {_CLASSES}, got 'InputLayer'"),
    "class a number": (_E, _class(0, 3), f"model.layers[0].class_name must be one of {_CLASSES}, got 3"),
    "class of another layer": (_E, _class(2, "Dropout"),
                               ("model.layers[2].config must have the keys ['rate', 'noise_shape', 'seed', 'name', "
                                "'trainable']; it lacks ['noise_shape', 'rate', 'seed']; unknown keys [...]")),
    "Dropout rate 1.0": (_E, _layer_set(3, "rate", 1.0), ("model.layers[3].config.rate must be a number in [0, 1), "
                                                          "got 1.0")),
    "Dropout rate -0.1": (_E, _layer_set(3, "rate", -0.1), ("model.layers[3].config.rate must be a number in [0, 1), "
                                                            "got -0.1")),
    "Dropout rate text": (_E, _layer_set(3, "rate", "0.2"), ("model.layers[3].config.rate must be a number in [0, 1), "
                                                             "got '0.2'")),
    "Dropout seed -1": (_E, _layer_set(3, "seed", -1), ("model.layers[3].config.seed must be null or an integer >= 0, "
                                                        "got -1")),
    "Dropout noise_shape": (_E, _layer_set(3, "noise_shape", 5), ("model.layers[3].config.noise_shape must be null or "
                                                                  "a list of sizes, got 5")),
    "Normalization mean of another shape": (
        _R, lambda c: c["model"]["layers"][0]["config"].update(mean=[1.0, 2.0], variance=[1.0, 1.0]),
        ("model.layers[0] (Normalization) does not fit inputs of shape (None, 4) (ValueError: Normalization "
         "mean/variance of shape (2,) do not fit inputs of shape (None, *(4,)) with axis=(-1,))")),
    "Normalization mean of rank 2": (
        _R, lambda c: c["model"]["layers"][0]["config"].update(mean=[[1.0] * 4] * 2, variance=[[1.0] * 4] * 2),
        ("model.layers[0] (Normalization) does not fit inputs of shape (None, 4) (ValueError: Normalization "
         "mean/variance have rank 2, more than the 1 kept axes (-1,))")),
    "Normalization ragged mean": (
        _R, lambda c: c["model"]["layers"][0]["config"].update(mean=[[1.0], [1.0, 2.0]], variance=[[1.0], [1.0, 2.0]]),
        "model.layers[0] (Normalization) does not fit inputs of shape (None, 4) (ValueError: ...inhomogeneous...)"),
    "Normalization mean without variance": (
        _R, _layer_set(0, "variance", None),
        ("model.layers[0] (Normalization) does not fit inputs of shape (None, 4) (ValueError: Normalization needs "
         "both mean and variance, or neither (then call adapt))")),
    "Normalization negative variance": (
        _R, _layer_set(0, "variance", [1.0, -4.0, 9.0, 16.0]),
        ("model.layers[0] (Normalization) does not fit inputs of shape (None, 4) (ValueError: Normalization mean "
         "must be finite and variance finite and >= 0)")),
    "Normalization mean text": (_R, _layer_set(0, "mean", "zero"),
                                ("model.layers[0].config.mean must be null or (nested lists of) finite numbers, "
                                 "got 'zero'")),
    "Normalization mean infinite": (_R, _layer_set(0, "mean", [1.0, 2.0, 1e400, 4.0]),
                                    ("model.layers[0].config.mean must be null or (nested lists of) finite numbers, "
                                     "got [1.0, 2.0, inf, 4.0]")),
    "Normalization axis 2": (_E, _layer_set(1, "axis", [2]),
                             _NORM + "Normalization axis 2 is out of range for inputs of rank 2)"),
    "Normalization axis -3": (_E, _layer_set(1, "axis", [-3]),
                              _NORM + "Normalization axis -3 is out of range for inputs of rank 2)"),
    "Normalization axis 0": (_E, _layer_set(1, "axis", [0]),
                             _NORM + "Normalization cannot keep statistics per sample (axis 0, the batch axis))"),
    "Normalization axis 99": (_E, _layer_set(1, "axis", [99]),
                              "model.layers[1].config.axis must be a list of integer axes, got [99]"),
    "Normalization axis an int": (_E, _layer_set(1, "axis", -1),
                                  "model.layers[1].config.axis must be a list of integer axes, got -1"),
    "Normalization axis true": (_E, _layer_set(1, "axis", [True]),
                                "model.layers[1].config.axis must be a list of integer axes, got [True]"),
    "Normalization invert 0": (_E, _layer_set(1, "invert", 0), ("model.layers[1].config.invert must be true or false, "
                                                                "got 0")),
    "Softmax axis 1.5": (_R, _layer_set(4, "axis", 1.5), "model.layers[4].config.axis must be an integer axis, got 1.5"),
    "Softmax axis text": (_R, _layer_set(4, "axis", "-1"), ("model.layers[4].config.axis must be an integer axis, "
                                                            "got '-1'")),
    "Softmax axis true": (_R, _layer_set(4, "axis", True), ("model.layers[4].config.axis must be an integer axis, "
                                                            "got True")),
    "Softmax axis null": (_R, _layer_set(4, "axis", None), ("model.layers[4].config.axis must be an integer axis, "
                                                            "got None")),
    "Softmax axis 0": (_R, _layer_set(4, "axis", 0),
                       ("model.layers[4] (Softmax) does not fit inputs of shape (None, 3) (ValueError: Softmax axis 0 "
                        "is not a feature axis of inputs (None, *(3,)))")),
    "Softmax axis 2": (_R, _layer_set(4, "axis", 2),
                       ("model.layers[4] (Softmax) does not fit inputs of shape (None, 3) (ValueError: Softmax axis 2 "
                        "is not a feature axis of inputs (None, *(3,)))")),
    "ReLU max_value -1": (_R, _layer_set(2, "max_value", -1),
                          "model.layers[2].config.max_value must be null or a finite number >= 0, got -1"),
    "ReLU negative_slope inf": (_R, _layer_set(2, "negative_slope", 1e400),
                                "model.layers[2].config.negative_slope must be a finite number >= 0, got inf"),
    "ReLU threshold text": (_R, _layer_set(2, "threshold", "0.5"),
                            "model.layers[2].config.threshold must be a finite number >= 0, got '0.5'"),
    "ReLU negative threshold": (_R, _layer_set(2, "threshold", -0.5),
                                "model.layers[2].config.threshold must be a finite number >= 0, got -0.5"),
    "LeakyReLU negative slope": (_E, _layer_set(5, "negative_slope", -0.1),
                                 "model.layers[5].config.negative_slope must be a finite number >= 0, got -0.1"),
    "LeakyReLU alpha": (_E, lambda c: c["model"]["layers"][5]["config"].update(alpha=0.1),
                        ("model.layers[5].config must have the keys ['negative_slope', 'name', 'trainable']; unknown "
                         "keys [\"'alpha'\"]")),
    "Activation unknown": (_E, _layer_set(7, "activation", "selu"),
                           "model.layers[7].config.activation must be one of [...'softmax'...], got 'selu'"),
    "Activation a dict": (_E, _layer_set(7, "activation", {"class_name": "softmax"}),
                          "model.layers[7].config.activation must be one of [...], got {'class_name': 'softmax'}"),
    "Flatten channels_first": (_E, _layer_set(0, "data_format", "channels_first"),
                               ("model.layers[0].config.data_format must be null or \"channels_last\", "
                                "got 'channels_first'")),
    "Dense without Flatten": (_E, _without_layer(0),
                              ("model.layers[1] (Dense) does not fit inputs of shape (None, 2, 3) (ValueError: Dense "
                               "layer 'dense' takes inputs of shape (n_samples, n_features); got samples of shape "
                               "(2, 3): put a Flatten() layer before it)")),
    "compiled output of rank 2": (_E, _only(_SOFTMAX),
                                  "the network outputs samples of shape (2, 3); a compiled model's must be (units,)"),
    "input_shape over MAX_UNITS": (_E, _model_set("input_shape", [2**12, 2**12, 2]),
                                   ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 "
                                    "numbers in all, got [4096, 4096, 2]")),
    "input_shape of rank 9": (_E, _model_set("input_shape", [1] * 9),
                              ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 "
                               "numbers in all, got [1, 1, 1, 1, 1, 1, ...]")),
    "input_shape with a 0": (_E, _model_set("input_shape", [2, 0]),
                             ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 "
                              "numbers in all, got [2, 0]")),
    "input_shape with null": (_E, _model_set("input_shape", [None, 6]),
                              ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 "
                               "numbers in all, got [None, 6]")),
    "trainable 0": (_E, _layer_set(2, "trainable", 0), "model.layers[2].config.trainable must be true or false, got 0"),
    "same name in two classes": (_E, _layer_set(3, "name", "flatten"),
                                 ("model.layers[3].config.name must be a non-empty string unique in the model, "
                                  "got 'flatten'")),
}
# A missing `trainable` key, in each layer of both files (every layer class).
CONFIG_REFUSED.update({
    f"no trainable in {base} layers[{i}] ({cls})": (
        base, _layer_drop(i, "trainable"), f"model.layers[{i}].config must have the keys [...]; it lacks ['trainable']")
    for base, classes in ((_E, ["Flatten", "Normalization", "Dense", "Dropout", "Dense", "LeakyReLU", "Dense",
                                "Activation"]),
                          (_R, ["Normalization", "Dense", "ReLU", "Dense", "Softmax"]))
    for i, cls in enumerate(classes)
})


@pytest.mark.parametrize("case", list(CONFIG_REFUSED))
def test_a_bad_layer_config_is_refused_with_the_message_that_names_it(tmp_path, files, case):
    base, change, expected = CONFIG_REFUSED[case]
    message = _refusal(tmp_path, _with_config(files[base], change))
    assert _matches(message, expected), message


def test_the_refusals_cover_every_layer_class(files):
    classes = {e["class_name"] for data in files.values() for e in _config(data)["model"]["layers"]}
    assert classes == set(_CLASSES.strip("[]").replace("'", "").split(", "))
    for cls in classes:
        assert any(cls in case for case in CONFIG_REFUSED if not case.startswith("no trainable")), cls
        assert any(case.startswith("no trainable") and f"({cls})" in case for case in CONFIG_REFUSED), cls


# The Normalization of every_layer keeps its statistics as weights/0 (mean), 1 (variance), 2 (count).
ARRAY_REFUSED = {
    "count a float": (_npy(np.array(32.0)), "weights/2.npy has dtype float64; expected an integer"),
    "count a float32 array": (_npy(np.array(32.0, np.float32)), "weights/2.npy has dtype float32; expected an integer"),
    "count of shape (1,)": (_npy(np.array([32])), "weights/2.npy has shape (1,); the model needs ()"),
    "count negative": (_npy(np.array(-1)),
                       ("weights/2.npy holds negative values; it is the sample count of model.layers[1] "
                        "(Normalization)")),
    "count over int64": (_npy(np.array(2**63, np.uint64)), "weights/2.npy holds values too large for int64"),
    "count a bool": (_npy(np.array(True)), "weights/2.npy has dtype bool; expected an integer"),
    "mean as integers": (_npy(np.zeros(6, np.int64)), ("weights/0.npy has dtype int64; expected float16, float32 or "
                                                       "float64")),
    "mean of shape (5,)": (_npy(np.zeros(5, np.float32)), "weights/0.npy has shape (5,); the model needs (6,)"),
    "mean nan": (_npy(np.full(6, np.nan, np.float32)), "weights/0.npy holds nan; every value must be finite"),
    "variance negative": (_npy(-np.ones(6, np.float32)),
                          ("weights/1.npy holds negative values; it is the variance of model.layers[1] "
                           "(Normalization)")),
    "variance inf": (_npy(np.full(6, np.inf)), "weights/1.npy holds inf; every value must be finite"),
}
_MEMBER = {"count": "weights/2.npy", "mean": "weights/0.npy", "variance": "weights/1.npy"}


@pytest.mark.parametrize("case", list(ARRAY_REFUSED))
def test_bad_normalization_statistics_are_refused(tmp_path, files, case):
    content, expected = ARRAY_REFUSED[case]
    data = zipfiles.replace(files["every_layer"], _MEMBER[case.split()[0]], content)
    message = _refusal(tmp_path, data)
    assert _matches(message, expected), message


def test_statistics_at_the_edges_load(tmp_path, files):
    base = files["every_layer"]
    loaded = _load(tmp_path, zipfiles.replace(base, "weights/1.npy", _npy(np.zeros(6, np.float32))))
    assert np.isfinite(loaded.predict(X, verbose=0)).all()  # a zero variance divides by epsilon
    for count in (np.array(0), np.array(2**63 - 1), np.array(7, np.uint8), np.array(2**63 - 1, np.uint64)):
        loaded = _load(tmp_path, zipfiles.replace(base, "weights/2.npy", _npy(count)))
        assert loaded.layers[1].count.dtype == np.int64 and int(loaded.layers[1].count) == int(count)
    loaded = _load(tmp_path, zipfiles.replace(base, "weights/0.npy", _npy(np.ones(6, np.float16))))
    assert loaded.layers[1].mean.dtype == np.float32 and (loaded.layers[1].mean == 1).all()


def test_save_refuses_statistics_that_would_not_load(tmp_path, files):
    # set_weights takes any finite values; a negative variance or count is refused on saving, as on loading.
    path = tmp_path / "saved.logitnet"
    path.write_bytes(files["every_layer"])
    for i in (1, 2):
        m = every_layer()
        weights = m.layers[1].get_weights()
        weights[i] = -np.abs(weights[i]) - 1
        with pytest.raises(ValueError, match="the variance and the count must be >= 0"):
            m.layers[1].set_weights(weights)  # refused, and nothing was changed
        np.testing.assert_array_equal(m.layers[1].get_weights()[i], every_layer().layers[1].get_weights()[i])
        m.layers[1].weights[i][...] = weights[i]  # written in place, past set_weights' checks
        what = "variance" if i == 1 else "sample count"
        with pytest.raises(ValueError, match=rf"^weights/{i} holds negative values; it is the {what} of "
                                             r"model\.layers\[1\] \(Normalization\), which the loader refuses$"):
            save_model(m, path)
    assert path.read_bytes() == files["every_layer"]  # the old file intact


def test_a_file_without_the_statistics_or_with_extra_ones_is_refused(tmp_path, files):
    base = files["every_layer"]
    assert _matches(_refusal(tmp_path, zipfiles.replace(base, "weights/2.npy", None)),
                    "the zip's members do not match its config.json; it lacks ['weights/2.npy']")
    # Given statistics in the config: then the layer has no weights, and the file's arrays are one too many.
    data = _with_config(base, lambda c: c["model"]["layers"][1]["config"].update(mean=[0.0] * 6, variance=[1.0] * 6))
    assert _matches(_refusal(tmp_path, data), "the zip's members do not match its config.json; unexpected [...]")


def test_the_input_shape_bounds_every_layer_output(tmp_path, files):
    # Each layer's output is bounded by MAX_UNITS; no layer class widens beyond its input or a Dense
    # layer's units, so the first bound that can be crossed is the input's own.
    fits = [2**12, 2**12]  # MAX_UNITS numbers in all
    assert math.prod(fits) == MAX_UNITS
    config = _config(files["every_layer"])
    del config["compile"], config["optimizer_state"]
    config["model"]["input_shape"] = fits
    config["model"]["layers"] = config["model"]["layers"][:1] + [
        {"class_name": "Dense", "config": {**config["model"]["layers"][2]["config"], "units": 1}}]
    assert _check_config(config).shapes == [((MAX_UNITS, 1), "f"), ((1,), "f")]
    config["model"]["input_shape"] = [2**12, 2**12 + 1]
    with pytest.raises(ModelFileError, match=r"^model\.input_shape must be a list of 1 to 8 sizes >= 1 with at most "
                                             r"16,777,216 numbers in all, got \[4096, 4097\]$"):
        _check_config(config)


def test_checking_a_normalization_config_allocates_nothing_large(files):
    config = _config(files["every_layer"])
    del config["compile"], config["optimizer_state"]
    config["model"]["input_shape"] = [2**20]
    config["model"]["layers"] = config["model"]["layers"][1:2]  # the Normalization alone, on 2^20 inputs
    tracemalloc.start()
    try:
        assert [s for s, _ in _check_config(config).shapes] == [(2**20,), (2**20,), ()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak:,} bytes allocated to check a config of {len(json.dumps(config))} bytes"


# --- version 1 keys in version 2 files, and the reverse -------------------------------------------
def test_version_labels_must_match_the_layout(tmp_path, files):
    data = _with_config(files["every_layer"], lambda c: c.update(version=1))
    assert _matches(_refusal(tmp_path, data),
                    "model must have the keys ['name', 'dtype', 'seed', 'input_dim', 'layers']; it lacks "
                    "['input_dim']; unknown keys [\"'input_shape'\"]")


# --- fuzz ---------------------------------------------------------------------------------------
def _outcome(tmp_path, data: bytes) -> str:
    """Load `data`: a usable model or a ModelFileError from a check; anything else fails the test."""
    try:
        model = _load(tmp_path, data)
    except ModelFileError as err:
        assert not err.unexpected, repr(err.__cause__)
        return "refused"
    shape = model.get_config()["input_shape"]
    x = np.linspace(-1, 1, 3 * math.prod(shape)).reshape(3, *shape)
    with np.errstate(all="ignore"):
        out = model.predict(x, verbose=0)
    assert out.shape[0] == 3 and out.dtype == model.dtype
    weights = [w for w in model.weights if w.dtype.kind == "f"]
    if max((np.abs(w).max() for w in weights if w.size), default=0) < 1e3:
        assert np.isfinite(out).all()
    if model.optimizer is not None:
        n_flat = sum(w.size for layer in model.layers for w in layer.flat_weights())
        assert all(v.shape == (n_flat,) for k, v in model.optimizer.get_state().items() if k != "iterations")
    return "loaded"


_scalars = (st.none() | st.booleans() | st.integers(-3, 10) | st.floats() | st.text(max_size=4)
            | st.sampled_from([-1, 0, 1, 2, 0.5, 1.0, 6, 2**64, MAX_UNITS + 1, 1e400, "relu", "softmax",
                               "channels_last", "Dense", "Dropout", "Normalization", "Softmax", [-1], [1, 2],
                               [0.0] * 6, [1.0] * 6, [[1.0] * 6]]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=4)
_small = st.floats(-2, 8, allow_nan=False)
_stats = st.none() | st.lists(st.floats(0, 9), min_size=1, max_size=6) | st.floats(0, 9)
_PLAUSIBLE = {  # values near the valid ones, so that many changed files load and are used
    "units": st.integers(1, 8), "rate": st.floats(0, 1), "seed": st.none() | st.integers(-1, 3),
    "noise_shape": st.none() | st.lists(st.none() | st.integers(1, 6), max_size=3),
    "axis": st.integers(-3, 3) | st.lists(st.integers(-3, 3), max_size=2), "negative_slope": _small,
    "max_value": st.none() | _small, "threshold": _small, "mean": _stats, "variance": _stats,
    "trainable": st.booleans(), "invert": st.booleans(), "use_bias": st.booleans(),
    "activation": st.sampled_from(["relu", "softmax", "sigmoid", "tanh", "linear", "gelu", "log_softmax"]),
    "name": st.sampled_from(["dense", "flatten", "n", "x"]),
}


@FUZZ
@given(data=st.data())
def test_fuzz_layer_configs(tmp_path, files, data):
    base = files[data.draw(st.sampled_from(sorted(files)))]
    config = _config(base)
    layers = config["model"]["layers"]
    i = data.draw(st.integers(0, len(layers) - 1))
    entry = layers[i]
    action = data.draw(st.sampled_from(["replace"] * 4 + ["delete", "add", "class", "input_shape"]))
    key = data.draw(st.sampled_from(sorted(entry["config"])))
    if action == "replace":
        plausible = key in _PLAUSIBLE and data.draw(st.booleans())
        entry["config"][key] = data.draw(_PLAUSIBLE[key] if plausible else _json)
    elif action == "delete":
        del entry["config"][key]
    elif action == "add":
        entry["config"][data.draw(st.sampled_from(["axis", "rate", "units", "alpha", "mean", "x"]))] = data.draw(_json)
    elif action == "class":
        entry["class_name"] = data.draw(st.sampled_from(["Dense", "Activation", "ReLU", "LeakyReLU", "Softmax",
                                                         "Dropout", "Normalization", "Flatten", "InputLayer"]))
    else:
        config["model"]["input_shape"] = data.draw(st.lists(st.integers(0, 7), max_size=3) | _json)
    _outcome(tmp_path, zipfiles.replace(base, "config.json", json.dumps(config).encode()))


@FUZZ
@given(data=st.data())
def test_fuzz_normalization_statistics(tmp_path, files, data):
    """Any well-formed statistics arrays: refused exactly when a value is unusable."""
    which = data.draw(st.sampled_from(["mean", "variance", "count"]))
    if which == "count":
        dtype = data.draw(st.sampled_from([np.int8, np.int32, np.int64, np.uint32, np.uint64]))
        info = np.iinfo(dtype)
        value = data.draw(st.integers(int(info.min), int(info.max)))
        arr = np.array(value, dtype)
        usable = 0 <= value < 2**63  # read as int64
    else:
        dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
        width = {np.float16: 16, np.float32: 32, np.float64: 64}[dtype]
        values = data.draw(st.lists(st.floats(width=width) | st.sampled_from([np.nan, np.inf, 1e300, -0.0, 1e-300]),
                                    min_size=6, max_size=6))
        with np.errstate(over="ignore"):
            arr = np.array(values, dtype)
            usable = bool(np.isfinite(arr).all() and np.isfinite(arr.astype(np.float32)).all())
        if which == "variance":
            usable = usable and not (arr < 0).any()
    result = _outcome(tmp_path, zipfiles.replace(files["every_layer"], _MEMBER[which], _npy(arr)))
    assert result == ("loaded" if usable else "refused"), (which, arr)
