"""Hostile and damaged Keras model files: no code is ever run from a file, and every file that is
not a sound Keras Dense network (a module other than Keras', a custom object, a Lambda, a Functional
model, mixed precision, HDF5 soft/external/twice-made links, external or virtual datasets, shapes or
dtypes that disagree with the config, non-finite or negative statistics, sizes beyond the bounds,
zip bombs) is refused with a ModelFileError that names the problem, before any large allocation
(variable-length HDF5 text shows its size only once read: that happens in the loader's
memory-bounded child). Each bad file is a committed fixture (written by Keras) edited in one place.
A seeded fuzz of byte flips, truncations and splices of every fixture runs in a worker process that
parses HDF5 inline, so that a crash or a hang inside libhdf5 is seen as such; the loader's child
must turn those into refusals."""

from __future__ import annotations

import base64
import io
import itertools
import json
import marshal
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import traceback
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zipfiles

from logitnet import keras_files
from logitnet.models import load_model
from logitnet.saving import MAX_CONFIG_BYTES, MAX_PARAMS, MAX_UNITS, ModelFileError

h5py = pytest.importorskip("h5py")

DATA = Path(__file__).parent / "data" / "keras"
FIXTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".keras", ".h5"))
DENSE = "k3_dense_adam.keras"  # input 4 -> Dense(6, relu) "dense" -> Dense(3, softmax) "dense_1"; Adam
LAYERS = "k3_layers_rmsprop.keras"  # starts with an adapted Normalization
LEGACY = "k3_legacy_adam.h5"  # Keras 3's legacy saver: dense_13 (4 -> 5), dense_14 (5 -> 3); Adam
TFK2 = "tfk2_sgd.h5"  # tf.keras 2.15: Normalization, Dense, Dropout, Dense, Activation; SGD with momentum
KERNEL = "model_weights/dense_13/sequential_5/dense_13/kernel"  # in LEGACY
BIAS = "model_weights/dense_13/sequential_5/dense_13/bias"


# --- loading --------------------------------------------------------------------------------------
def _path(tmp_path: Path, data: bytes, suffix: str) -> Path:
    path = tmp_path / f"m{suffix}"
    path.write_bytes(data)
    return path


def _refusal(tmp_path: Path, data: bytes, suffix: str = ".keras", compile: bool = True) -> str:
    """Why the file of bytes `data` is refused: the message after "<path> is not a readable Keras model file: "."""
    path = _path(tmp_path, data, suffix)
    with pytest.raises(ModelFileError) as info:
        load_model(path, compile=compile)
    err = info.value
    assert not err.unexpected, "".join(traceback.format_exception(err.__cause__))  # a check refused it
    prefix = f"{str(path)!r} is not a readable Keras model file: "
    assert str(err).startswith(prefix), str(err)
    return str(err)[len(prefix):]


def _loaded(tmp_path: Path, data: bytes, suffix: str = ".keras", compile: bool = True):
    return load_model(_path(tmp_path, data, suffix), compile=compile)


def _measured(fn):
    """(result, peak bytes Python and NumPy allocated in this process, seconds) of fn()."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, peak, time.perf_counter() - start


@pytest.fixture
def inline(monkeypatch):
    """The loader parses HDF5 in this process, not in its forked child (`keras_files._isolated`),
    so that tracemalloc sees what the checks allocate and a time limit here sees the walk."""
    monkeypatch.setattr(keras_files, "_isolated", lambda work, size: work())


# --- editing the committed files ------------------------------------------------------------------
def _bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _members(name: str = DENSE) -> list[tuple[str, bytes]]:
    return zipfiles.members(_bytes(name))


def _config(name: str = DENSE) -> dict:
    return json.loads(dict(_members(name))["config.json"])


def _with_config(change, name: str = DENSE) -> bytes:
    """The .keras file with its config.json changed in place by `change(config)`."""
    config = _config(name)
    change(config)
    return zipfiles.replace(_bytes(name), "config.json", json.dumps(config).encode())


def _with_weights(tmp_path: Path, change, name: str = DENSE) -> bytes:
    """The .keras file with its model.weights.h5 opened by h5py and changed by `change(f)`."""
    path = tmp_path / "edit.weights.h5"
    path.write_bytes(dict(_members(name))["model.weights.h5"])
    with h5py.File(path, "r+") as f:
        change(f)
    return zipfiles.replace(_bytes(name), "model.weights.h5", path.read_bytes())


def _legacy(tmp_path: Path, change, name: str = LEGACY, latest: bool = False) -> bytes:
    """The legacy .h5 file opened by h5py and changed by `change(f)`; `latest`: copied first into
    a file of HDF5's latest format, whose objects may carry attributes beyond 64 KiB."""
    path = tmp_path / "edit.h5"
    if latest:
        def rebuild(src, dst):  # object by object: h5py's copy would keep the old object headers
            dst.attrs.update(src.attrs)
            for key, obj in src.items():
                if isinstance(obj, h5py.Group):
                    rebuild(obj, dst.create_group(key))
                else:
                    dst.create_dataset(key, data=obj[()]).attrs.update(obj.attrs)

        with h5py.File(DATA / name, "r") as src, h5py.File(path, "w", libver="latest") as dst:
            rebuild(src, dst)
    else:
        shutil.copyfile(DATA / name, path)
    with h5py.File(path, "r+", libver="latest" if latest else None) as f:
        change(f)
    return path.read_bytes()


def _set(path: str, value):
    """Replace the dataset at `path` by `value`: an array, h5py.Empty, a link, or (a str) a second
    hard link to the dataset at that path."""
    def change(f):
        del f[path]
        f[path] = f[value] if isinstance(value, str) else value
    return change


def _layer(i: int):
    return lambda config: config["config"]["layers"][i]


def _dense(config: dict) -> dict:  # DENSE's first Dense layer's config
    return config["config"]["layers"][1]["config"]


def _attr(name: str, value, where: str = "/"):
    """Set (None: delete) the attribute `name` of the object at `where`."""
    def change(f):
        if name in f[where].attrs:
            del f[where].attrs[name]
        if value is not None:
            f[where].attrs[name] = value
    return change


def _model_config(change):
    """Change the legacy file's model_config JSON in place."""
    def edit(f):
        config = json.loads(f.attrs["model_config"])
        change(config)
        f.attrs["model_config"] = json.dumps(config)
    return edit


# --- the editing keeps a file that loads: the refusals below are the edits' doing -----------------
def test_edited_weights_are_what_the_model_computes_with(tmp_path):
    """Rewriting the last layer (kernel 0, bias [1, 2, 3], as float64 and float16) gives a model
    that predicts softmax([1, 2, 3]) for every input: the helpers edit the file the loader reads."""
    softmax = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    x = np.linspace(-2, 2, 12).reshape(3, 4)

    def last_layer(dtype):
        def change(f):
            _set("layers/dense_1/vars/0", np.zeros((6, 3), dtype))(f)
            _set("layers/dense_1/vars/1", np.array([1, 2, 3], dtype))(f)
        return change

    for dtype in (np.float64, np.float16):
        model = _loaded(tmp_path, _with_weights(tmp_path, last_layer(dtype)))
        np.testing.assert_allclose(model.predict(x, verbose=0), np.tile(softmax, (3, 1)), rtol=1e-6)
        assert model.dtype == np.float32 and model.optimizer.iterations == 6

    def legacy_last_layer(f):
        _set("model_weights/dense_14/sequential_5/dense_14/kernel", np.zeros((5, 3), np.float32))(f)
        _set("model_weights/dense_14/sequential_5/dense_14/bias", np.array([1, 2, 3], np.float32))(f)

    model = _loaded(tmp_path, _legacy(tmp_path, legacy_last_layer), ".h5")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tile(softmax, (3, 1)), rtol=1e-6)
    model = _loaded(tmp_path, _with_config(lambda c: _dense(c).update(units=6)))  # an edit that changes nothing
    assert [layer.units for layer in model.layers] == [6, 3]


# --- no code is ever run from a file --------------------------------------------------------------
PAYLOAD = "logitnet_payload_probe"  # a module on sys.path that leaves a marker when it is imported

_MODULE_PLACES = {
    "the model": lambda c: c.update(module=PAYLOAD),
    "the InputLayer": lambda c: _layer(0)(c).update(module=PAYLOAD),
    "a layer": lambda c: _layer(1)(c).update(module=PAYLOAD),
    "an activation": lambda c: _dense(c).update(
        activation={"module": PAYLOAD, "class_name": "function", "config": "swish2", "registered_name": "swish2"}),
    "an initializer": lambda c: _dense(c)["kernel_initializer"].update(module=PAYLOAD),
    "a regularizer": lambda c: _dense(c).update(
        kernel_regularizer={"module": PAYLOAD, "class_name": "L2", "config": {"l2": 0.1}, "registered_name": None}),
    "a dtype policy": lambda c: _dense(c)["dtype"].update(module=PAYLOAD),
    "the optimizer": lambda c: c["compile_config"]["optimizer"].update(module=PAYLOAD),
    "the loss": lambda c: c["compile_config"].update(
        loss={"module": PAYLOAD, "class_name": "FocalLoss", "config": {}, "registered_name": "Custom>FocalLoss"}),
    "a metric": lambda c: c["compile_config"].update(
        metrics=[{"module": PAYLOAD, "class_name": "F1", "config": {}, "registered_name": None}]),
}


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """The marker file that importing PAYLOAD (or running the code of a Lambda) would write."""
    marker = tmp_path / "code-ran"
    (tmp_path / f"{PAYLOAD}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, PAYLOAD, raising=False)
    yield marker
    assert PAYLOAD not in sys.modules and not marker.exists(), "code from the file ran"


@pytest.mark.parametrize("place", list(_MODULE_PLACES))
def test_a_module_other_than_keras_is_refused_and_never_imported(tmp_path, payload, place):
    reason = _refusal(tmp_path, _with_config(_MODULE_PLACES[place]))
    assert f"comes from the module '{PAYLOAD}'; only Keras' own objects are read" in reason
    assert "no code from a file is ever imported" in reason


@pytest.mark.parametrize("module, shown", [(None, "None"), ("kerasx", "'kerasx'"), ("keras_contrib.layers", "'keras_contrib.layers'"),
                                           ("__main__", "'__main__'"), ("builtins", "'builtins'")])
def test_module_names_that_only_look_like_keras_are_refused(tmp_path, module, shown):
    reason = _refusal(tmp_path, _with_config(lambda c: _layer(1)(c).update(module=module)))
    assert reason.startswith(f"config.json.config.layers[1] ('Dense') comes from the module {shown}")


@pytest.mark.parametrize("where, change, shown", [
    ("config.json.config.layers[1]", lambda c: _layer(1)(c).update(registered_name="my_package>FancyDense"),
     "'my_package>FancyDense'"),
    ("config.json.config.layers[2]", lambda c: _layer(2)(c).update(registered_name="Custom>Dense"), "'Custom>Dense'"),
    ("compile_config.optimizer", lambda c: c["compile_config"]["optimizer"].update(registered_name="Custom>Adam"),
     "'Custom>Adam'"),
    ("config.json.config.layers[1].config.kernel_initializer",
     lambda c: _dense(c)["kernel_initializer"].update(registered_name="my_init"), "'my_init'"),
])
def test_a_registered_name_marks_a_custom_object_and_is_refused(tmp_path, where, change, shown):
    reason = _refusal(tmp_path, _with_config(change))
    assert reason == (f"{where} is the custom object {shown}; custom objects are not supported "
                      "(no code from a file is ever run)")


def _lambda_code(marker: Path) -> str:
    """A Lambda's function as Keras serializes it: base64 of the marshalled code, here one that
    leaves a marker if anything ever runs it."""
    fn = eval(f"lambda x: (open({str(marker)!r}, 'w').write('lambda ran'), x)[1]")  # the payload, compiled here only
    return base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, payload):
    code = _lambda_code(payload)
    keras3 = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
              "config": {"name": "lambda", "trainable": True, "dtype": "float32", "arguments": {},
                         "function": {"class_name": "__lambda__", "config": {"code": code, "defaults": None,
                                                                              "closure": None}}}}
    reason = _refusal(tmp_path, _with_config(lambda c: c["config"]["layers"].insert(2, keras3)))
    assert reason == "config.json.config.layers[2]: a Lambda layer holds Python code, which logitnet never runs"

    tf2 = {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32",
                                              "function": [code, None, None], "function_type": "lambda",
                                              "module": "__main__", "output_shape": None, "arguments": {}}}
    reason = _refusal(tmp_path, _legacy(tmp_path, _model_config(lambda c: c["config"]["layers"].insert(2, tf2))), ".h5")
    assert reason == "model_config.config.layers[2]: a Lambda layer holds Python code, which logitnet never runs"


def test_a_pickle_in_the_weights_is_never_unpickled(tmp_path, payload):
    """An opaque dataset holding a pickle whose loading would run code: refused by its dtype."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(payload), "w"))

    blob = np.void(pickle.dumps(Evil()))
    reason = _refusal(tmp_path, _with_weights(tmp_path, _set("layers/dense/vars/1", np.array([blob] * 6))))
    assert reason.startswith("the HDF5 dataset 'layers/dense/vars/1' has dtype |V")
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr("model_config", blob)), ".h5")
    assert reason == "the attribute /.model_config must be text, got void"


@pytest.mark.parametrize("change, expected", [
    (lambda c: _layer(1)(c).update(class_name="MyDense"), ("config.json.config.layers[1]: MyDense is not supported; "
                                                          "logitnet models are Dense networks")),
    (lambda c: _dense(c).update(activation="my_activation"),
     "config.json.config.layers[1].config.activation is 'my_activation'; logitnet has the activations"),
    (lambda c: _dense(c)["kernel_initializer"].update(class_name="MyInit"),
     "config.json.config.layers[1].config.kernel_initializer is 'MyInit'; logitnet has the initializers"),
    (lambda c: _dense(c).update(kernel_regularizer={"module": "keras.regularizers", "class_name": "OrthogonalRegularizer",
                                                    "config": {"factor": 0.01}, "registered_name": None}),
     "config.json.config.layers[1].config.kernel_regularizer must be an L1, L2 or L1L2 regularizer"),
    (lambda c: c["compile_config"]["optimizer"].update(class_name="Lion", registered_name=None),
     "compile_config.optimizer is 'Lion'; logitnet has the optimizers ['Adam', 'RMSprop', 'SGD']"),
    (lambda c: c["compile_config"].update(loss="my_loss"), "compile.loss.class_name 'my_loss' is not a logitnet loss"),
    (lambda c: c["compile_config"].update(metrics=["f1_score"]), ("compile_config.metrics[0] is 'f1_score'; "
                                                                 "logitnet reads the metrics")),
])
def test_custom_objects_are_refused_by_name(tmp_path, change, expected):
    assert _refusal(tmp_path, _with_config(change)).startswith(expected)


def test_custom_objects_in_a_legacy_file_are_refused(tmp_path):
    custom = {"class_name": "AttentionPooling", "config": {"name": "pool", "trainable": True, "dtype": "float32"}}
    reason = _refusal(tmp_path, _legacy(tmp_path, _model_config(lambda c: c["config"]["layers"].insert(2, custom))), ".h5")
    assert reason.startswith("model_config.config.layers[2]: AttentionPooling is not supported; "
                             "logitnet models are Dense networks")
    training = {"loss": {"class_name": "focal_loss", "config": {}}, "metrics": None,
                "optimizer_config": {"class_name": "Custom>Adam", "config": {"learning_rate": 0.01}}}
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr("training_config", json.dumps(training))), ".h5")
    assert reason.startswith("compile.loss.class_name 'focal_loss' is not a logitnet loss")
    model = _loaded(tmp_path, _legacy(tmp_path, _attr("training_config", json.dumps(training))), ".h5", compile=False)
    assert model.optimizer is None and [layer.units for layer in model.layers] == [5, 3]


# --- what logitnet's models are not ---------------------------------------------------------------
@pytest.mark.parametrize("cls", ["Conv2D", "LSTM", "BatchNormalization", "Embedding", "MaxPooling2D",
                                 "MultiHeadAttention"])
def test_an_unsupported_layer_is_named(tmp_path, cls):
    expected = (f"{cls} is not supported; logitnet models are Dense networks (layers ['Activation', 'Dense', "
                "'Dropout', 'Flatten', 'LeakyReLU', 'Normalization', 'ReLU', 'Softmax'])")
    assert _refusal(tmp_path, _with_config(lambda c: _layer(1)(c).update(class_name=cls))) == \
        f"config.json.config.layers[1]: {expected}"
    edit = _model_config(lambda c: c["config"]["layers"][1].update(class_name=cls))
    assert _refusal(tmp_path, _legacy(tmp_path, edit), ".h5") == f"model_config.config.layers[1]: {expected}"


@pytest.mark.parametrize("cls", ["Functional", "Model", "MySubclassedModel"])
def test_a_model_other_than_sequential_is_refused(tmp_path, cls):
    assert _refusal(tmp_path, _with_config(lambda c: c.update(class_name=cls))) == \
        f"config.json holds a '{cls}' model; logitnet reads Keras Sequential models"
    functional = {"class_name": cls, "config": {"name": "model", "layers": [], "input_layers": [["input_1", 0, 0]],
                                                "output_layers": [["dense", 0, 0]]}}
    assert _refusal(tmp_path, _legacy(tmp_path, _attr("model_config", json.dumps(functional))), ".h5") == \
        f"model_config holds a '{cls}' model; logitnet reads Keras Sequential models"


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["config"]["dtype"]["config"].update(name="mixed_float16"),
     ("config.json.config.dtype is 'mixed_float16'; logitnet models are float32 or float64 "
     "(mixed precision is not supported)")),
    (lambda c: _layer(2)(c)["config"]["dtype"]["config"].update(name="mixed_bfloat16"),
     ("config.json.config.layers[2].config.dtype is 'mixed_bfloat16'; logitnet models are float32 or float64 "
     "(mixed precision is not supported)")),
    (lambda c: _layer(2)(c)["config"].update(dtype="float16"),
     ("config.json.config.layers[2].config.dtype is 'float16'; logitnet models are float32 or float64 "
     "(mixed precision is not supported)")),
    (lambda c: _layer(2)(c)["config"]["dtype"]["config"].update(name="float64"),
     "config.json mixes the dtypes ['float32', 'float64']; a logitnet model has one dtype"),
    (lambda c: _layer(2)(c)["config"]["dtype"].update(class_name="QuantizedDTypePolicy"),
     ("config.json.config.layers[2].config.dtype is a 'QuantizedDTypePolicy'; only float32 or float64 dtype "
     "policies are read")),
])
def test_mixed_precision_and_mixed_dtypes_are_refused(tmp_path, change, expected):
    assert _refusal(tmp_path, _with_config(change)) == expected


def test_mixed_precision_in_a_legacy_file_is_refused(tmp_path):
    edit = _model_config(lambda c: c["config"]["layers"][1]["config"]["dtype"]["config"].update(name="mixed_float16"))
    assert _refusal(tmp_path, _legacy(tmp_path, edit), ".h5").startswith(
        "model_config.config.layers[1].config.dtype is 'mixed_float16'; logitnet models are float32 or float64")


@pytest.mark.parametrize("change, expected", [
    (lambda c: _dense(c).update(kernel_size=3),
     "config.json.config.layers[1].config has the key 'kernel_size', which logitnet does not know for Dense"),
    (lambda c: _layer(1)(c).update(weights_path="/etc/passwd"), "config.json.config.layers[1] has the unknown keys"),
    (lambda c: _dense(c).update(activity_regularizer={"module": "keras.regularizers", "class_name": "L2",
                                                      "config": {"l2": 0.1}}),
     "config.json.config.layers[1].config.activity_regularizer is "),
    (lambda c: _dense(c).update(kernel_constraint={"module": "keras.constraints", "class_name": "MaxNorm",
                                                   "config": {"max_value": 2}}),
     "config.json.config.layers[1].config.kernel_constraint is "),
    (lambda c: c["compile_config"].update(run_eagerly=True), "compile_config.run_eagerly is True; logitnet supports only"),
    (lambda c: c["compile_config"].update(unknown_flag=True),
     "compile_config has the key 'unknown_flag', which logitnet does not know"),
    (lambda c: c["compile_config"]["optimizer"]["config"].update(learning_rate={
        "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", "config": {}}),
     "compile_config.optimizer has a learning-rate schedule, which logitnet does not read"),
])
def test_keys_and_values_logitnet_cannot_honour_are_refused(tmp_path, change, expected):
    assert _refusal(tmp_path, _with_config(change)).startswith(expected)


# --- sizes beyond the bounds, refused before anything large is allocated ---------------------------
@pytest.mark.parametrize("change, expected", [
    (lambda c: _dense(c).update(units=2**30),
     f"model.layers[0].config.units must be an integer in [1, {MAX_UNITS}], got {2**30}"),
    (lambda c: (_dense(c).update(units=MAX_UNITS), _layer(2)(c)["config"].update(units=MAX_UNITS)),
     (f"the model declares {4 * MAX_UNITS + MAX_UNITS + MAX_UNITS**2 + MAX_UNITS:,} parameters; "
     f"at most {MAX_PARAMS:,} are loaded")),
    (lambda c: _layer(0)(c)["config"].update(batch_shape=[None, 2**40]),
     f"config.json.config.layers[0].config.batch_shape must be [null, d1, ...] with sizes in [1, {MAX_UNITS}]"),
    (lambda c: _layer(0)(c)["config"].update(batch_shape=[None, 2**12, 2**13]),
     f"model.input_shape must be a list of 1 to 8 sizes >= 1 with at most {MAX_UNITS:,} numbers in all"),
    (lambda c: c["config"]["layers"].extend({"module": "keras.layers", "class_name": "Dropout",
                                             "config": {"name": f"drop{i}", "rate": 0.1}} for i in range(5000)),
     "model.layers must be a list of 1 to 4096 layer configs"),
])
def test_sizes_beyond_the_bounds_are_refused_before_allocation(tmp_path, change, expected):
    data = _with_config(change)
    reason, peak, seconds = _measured(lambda: _refusal(tmp_path, data))
    assert reason.startswith(expected)
    assert peak < 16 * 2**20 and seconds < 5  # a 2**30-unit layer alone would be 16 GiB


def test_a_legacy_file_s_units_beyond_the_bounds_are_refused_before_allocation(tmp_path):
    data = _legacy(tmp_path, _model_config(lambda c: c["config"]["layers"][2]["config"].update(units=2**30)))
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, data, ".h5"))
    assert reason == f"model.layers[1].config.units must be an integer in [1, {MAX_UNITS}], got {2**30}"
    assert peak < 16 * 2**20


def _weights_bomb(inflated: int) -> bytes:
    """DENSE with a model.weights.h5 member that inflates to `inflated` bytes (the real HDF5 file,
    then zeros), written a megabyte at a time."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in _members():
            if name != "model.weights.h5":
                zf.writestr(name, content)
                continue
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                fh.write(content)
                zeros = bytes(2**20)
                for _ in range((inflated - len(content)) // 2**20):
                    fh.write(zeros)
                fh.write(bytes((inflated - len(content)) % 2**20))
    return buf.getvalue()


def _claim(data: bytes, name: str, size: int) -> bytes:
    """The zip with the uncompressed size that the central directory records for `name` set to `size`."""
    cd = data.index(b"PK\x01\x02")
    while data[cd + 46:cd + 46 + struct.unpack("<H", data[cd + 28:cd + 30])[0]] != name.encode():
        cd = data.index(b"PK\x01\x02", cd + 4)
    return data[:cd + 24] + struct.pack("<I", size) + data[cd + 28:]


INFLATED = 128 * 2**20


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _weights_bomb(INFLATED)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path, bomb):
    assert len(bomb) < INFLATED // 200  # the file is small, what it inflates to is not
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, bomb))
    prefix = f"model.weights.h5 claims {INFLATED:,} bytes; at most "
    assert reason.startswith(prefix) and reason.endswith(" are read")
    limit = int(reason[len(prefix):-len(" are read")].replace(",", ""))
    assert 2**20 < limit < 4 * 2**20  # the bound follows from the config: 51 parameters and their optimizer slots
    assert peak < 2**20


def test_a_zip_bomb_that_lies_about_its_size_stops_at_the_size_it_claims(tmp_path, bomb):
    weights = dict(_members())["model.weights.h5"]
    for claimed in (len(weights), 2 * 2**20):
        data = _claim(bomb, "model.weights.h5", claimed)
        reason, peak, _ = _measured(lambda data=data: _refusal(tmp_path, data))
        assert reason.startswith("model.weights.h5 cannot be read (BadZipFile: Bad CRC-32")
        assert peak < claimed + 8 * 2**20  # what it claims, never what it inflates to


def test_oversized_metadata_and_config_members_are_refused_unread(tmp_path):
    big_meta = json.dumps({"keras_version": "3.15.1", "pad": " " * 2**17}).encode()
    data = zipfiles.replace(_bytes(DENSE), "metadata.json", big_meta)
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, data))
    assert reason == f"metadata.json claims {len(big_meta):,} bytes; at most 65,536 are read" and peak < 2**17
    big_config = b" " * (MAX_CONFIG_BYTES + 1)
    data = zipfiles.replace(_bytes(DENSE), "config.json", big_config)
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, data))
    assert reason == f"config.json claims {MAX_CONFIG_BYTES + 1:,} bytes; at most {MAX_CONFIG_BYTES:,} are read"
    assert peak < 2**20
    reason = _refusal(tmp_path, _claim(data, "config.json", 1000))
    assert reason.startswith("config.json cannot be read (BadZipFile: Bad CRC-32")


@pytest.mark.parametrize("shape", [(2**31, 2**10), (2**40,), (4, 6, 2**20)])
def test_a_huge_hdf5_dataset_is_refused_by_its_shape_unread(tmp_path, inline, shape):
    def change(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=shape, dtype="f4", chunks=(1,) * (len(shape) - 1) + (1024,))

    data = _with_weights(tmp_path, change)
    assert len(data) < 100_000  # nothing was written: the chunks do not exist
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, data))
    assert reason == f"the HDF5 dataset 'layers/dense/vars/0' has shape {shape}; the model needs (4, 6)"
    assert peak < 2**20


def test_oversized_legacy_attributes_are_refused_before_they_are_read(tmp_path, inline):
    """A fixed-length text attribute: its size is known before it is read."""
    with h5py.File(DATA / LEGACY, "r") as f:
        text = f.attrs["model_config"].encode()
    path = tmp_path / "big.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense attribute storage: no 64 KiB limit
        f.attrs.create("model_config", np.bytes_(text + b" " * MAX_CONFIG_BYTES))  # dtype S<n>, in the attribute
    data = path.read_bytes()
    reason, peak, _ = _measured(lambda: _refusal(tmp_path, data, ".h5"))
    assert reason == (f"the attribute /.model_config takes {MAX_CONFIG_BYTES + len(text):,} bytes; "
                      f"at most {MAX_CONFIG_BYTES:,} are read")
    assert peak < 2**20


def test_oversized_variable_length_legacy_attributes_are_refused(tmp_path):
    """Variable-length text (how Keras writes model_config and the name lists) lies in the file's
    global heap: its size shows only once read, in the loader's memory-bounded child."""
    with h5py.File(DATA / LEGACY, "r") as f:
        text = f.attrs["model_config"]
    padding = " " * (MAX_CONFIG_BYTES + 1)

    def big(f):
        f.attrs["model_config"] = text + padding  # still valid JSON: only the size is wrong

    reason = _refusal(tmp_path, _legacy(tmp_path, big), ".h5")
    assert reason == (f"the attribute /.model_config takes {len(text) + len(padding):,} bytes; "
                      f"at most {MAX_CONFIG_BYTES:,} are read")

    names = np.array(["x" * 2**20] * 40, dtype=h5py.string_dtype())
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr("layer_names", names, "model_weights")), ".h5")
    assert reason == f"the attribute model_weights.layer_names takes {40 * 2**20:,} bytes; at most {MAX_CONFIG_BYTES:,} are read"


def test_a_name_list_of_too_many_items_is_refused_unread(tmp_path):
    names = np.array([f"w{i}" for i in range(keras_files.MAX_ATTR_ITEMS + 1)], dtype=h5py.string_dtype())
    copied = _loaded(tmp_path, _legacy(tmp_path, lambda f: None, latest=True), ".h5")  # the copy itself loads
    assert copied.optimizer.iterations == 6 and [layer.units for layer in copied.layers] == [5, 3]
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr("weight_names", names, "optimizer_weights"), latest=True), ".h5")
    assert reason == (f"the attribute optimizer_weights.weight_names holds {keras_files.MAX_ATTR_ITEMS + 1:,} items; "
                      f"at most {keras_files.MAX_ATTR_ITEMS:,} are read")


class _TooSlow(BaseException):  # not an Exception: the loader's catch-all must not turn it into a refusal
    pass


def _within(seconds: float, fn):
    """fn(), interrupted (raising _TooSlow) if it takes longer than `seconds`."""
    def alarm(signum, frame):
        raise _TooSlow(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")
@pytest.mark.parametrize("with_dataset", [False, True], ids=["groups only", "a dataset at the bottom"])
def test_a_hard_link_fan_out_is_refused_in_bounded_time(tmp_path, inline, with_dataset):
    """14 groups, each hard-linking the next 16 times: a ~30 KB file of 16**13 paths, which a walk
    that follows every link never finishes (or, with a dataset at the bottom, stops at 100,000
    datasets after seconds). An object reached twice is refused at once."""
    def fan_out(f):
        groups = [f.create_group(f"fan/g{i}") for i in range(14)]  # 15 deep at most: within MAX_H5_DEPTH
        for parent, child in itertools.pairwise(groups):
            for k in range(16):
                parent[f"link{k}"] = child
        if with_dataset:
            groups[-1].create_dataset("payload", data=np.zeros(3, np.float32))

    data = _with_weights(tmp_path, fan_out)
    assert len(data) < 200_000
    reason = _within(2.0, lambda: _refusal(tmp_path, data))
    assert reason.startswith("the HDF5 entry 'fan/")
    assert reason.endswith("links to an object linked elsewhere in the file too; each entry must be linked once")


# --- the HDF5 tree: links, external and virtual data -----------------------------------------------
def _other_file(tmp_path: Path) -> Path:
    """An HDF5 file beside the model with a (4, 6) float32 dataset /x."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.ones((4, 6), np.float32)
    return path


def test_soft_links_are_refused(tmp_path):
    def to_stash(f):  # the kernel moved aside, and a soft link to it in its place
        f.move("layers/dense/vars/0", "stash")
        f["layers/dense/vars/0"] = h5py.SoftLink("/stash")

    reason = _refusal(tmp_path, _with_weights(tmp_path, to_stash))
    assert reason == "the HDF5 entry 'layers/dense/vars/0' is a SoftLink; only plain entries are read"
    reason = _refusal(tmp_path, _with_weights(tmp_path, lambda f: f.__setitem__("layers/dense/alias",
                                                                               h5py.SoftLink("/layers/dense/vars"))))
    assert reason == "the HDF5 entry 'layers/dense/alias' is a SoftLink; only plain entries are read"
    reason = _refusal(tmp_path, _with_weights(tmp_path, lambda f: f.__setitem__("dangling", h5py.SoftLink("/nowhere"))))
    assert reason == "the HDF5 entry 'dangling' is a SoftLink; only plain entries are read"

    def legacy_to_stash(f):
        f.move(BIAS, "stash")
        f[BIAS] = h5py.SoftLink("/stash")

    assert _refusal(tmp_path, _legacy(tmp_path, legacy_to_stash), ".h5") == \
        f"the HDF5 entry '{BIAS}' is a SoftLink; only plain entries are read"


def test_external_links_are_refused_unfollowed(tmp_path):
    other = _other_file(tmp_path)
    for target in (str(other), str(tmp_path / "missing.h5")):  # the same message: the link is never followed
        reason = _refusal(tmp_path, _with_weights(tmp_path, _set("layers/dense/vars/0", h5py.ExternalLink(target, "/x"))))
        assert reason == "the HDF5 entry 'layers/dense/vars/0' is a ExternalLink; only plain entries are read"
        reason = _refusal(tmp_path, _legacy(tmp_path, _set(KERNEL, h5py.ExternalLink(target, "/x"))), ".h5")
        assert reason == f"the HDF5 entry '{KERNEL}' is a ExternalLink; only plain entries are read"


def _external_dataset(source: Path, path: str, shape: tuple):
    """Replace the dataset at `path` by one of `shape` whose data lies in the file `source`."""
    def change(f):
        del f[path]
        f.create_dataset(path, shape=shape, dtype="f4", external=[(str(source), 0, 4 * int(np.prod(shape)))])
    return change


def test_datasets_with_external_storage_are_refused_unread(tmp_path):
    source = tmp_path / "secret.bin"
    source.write_bytes(np.arange(24, dtype=np.float32).tobytes())
    for src in (source, tmp_path / "missing.bin"):
        reason = _refusal(tmp_path, _with_weights(tmp_path, _external_dataset(src, "layers/dense/vars/0", (4, 6))))
        assert reason == "the HDF5 dataset 'layers/dense/vars/0' keeps its data in external files"
        reason = _refusal(tmp_path, _legacy(tmp_path, _external_dataset(src, KERNEL, (4, 5))), ".h5")
        assert reason == f"the HDF5 dataset '{KERNEL}' keeps its data in external files"


def test_virtual_datasets_are_refused_unread(tmp_path):
    other = _other_file(tmp_path)

    def virtual(path, shape):
        def change(f):
            layout = h5py.VirtualLayout(shape=shape, dtype="f4")
            layout[...] = h5py.VirtualSource(str(other), "x", shape=(4, 6))[:, :shape[1]]
            del f[path]
            f.create_virtual_dataset(path, layout, fillvalue=0)
        return change

    reason = _refusal(tmp_path, _with_weights(tmp_path, virtual("layers/dense/vars/0", (4, 6))))
    assert reason == "the HDF5 dataset 'layers/dense/vars/0' is virtual (its data lies in other files)"
    reason = _refusal(tmp_path, _legacy(tmp_path, virtual(KERNEL, (4, 5))), ".h5")
    assert reason == f"the HDF5 dataset '{KERNEL}' is virtual (its data lies in other files)"


def test_a_hard_link_cycle_is_refused(tmp_path):
    twice = "links to an object linked elsewhere in the file too; each entry must be linked once"
    reason = _refusal(tmp_path, _with_weights(tmp_path, lambda f: f.__setitem__("layers/dense/loop", f["layers"])))
    assert reason == f"the HDF5 entry 'layers/dense/loop' {twice}"
    reason = _refusal(tmp_path, _legacy(tmp_path, lambda f: f.__setitem__("model_weights/dense_13/up", f["model_weights"])),
                      ".h5")
    assert reason == f"the HDF5 entry 'model_weights/dense_13/up' {twice}"


def test_a_root_group_of_an_unknown_kind_is_refused(tmp_path):
    def unknown_message_type(path):
        data = bytearray(path.read_bytes())
        root = struct.unpack("<Q", data[64:72])[0]  # superblock v0: the root group's object header address
        assert data[root + 16:root + 18] == b"\x11\x00"  # its first message: a symbol table (type 0x0011)
        data[root + 17] = 0x04  # type 0x0411: no such message
        path.write_bytes(bytes(data))

    path = tmp_path / "edit.weights.h5"
    path.write_bytes(dict(_members())["model.weights.h5"])
    unknown_message_type(path)
    reason = _refusal(tmp_path, zipfiles.replace(_bytes(DENSE), "model.weights.h5", path.read_bytes()))
    assert reason.startswith("model.weights.h5 is damaged (")


def test_a_dataset_of_an_unknown_string_encoding_is_refused(tmp_path):
    path = tmp_path / "edit.weights.h5"
    path.write_bytes(dict(_members())["model.weights.h5"])
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["layers/dense/vars/0"].id).addr
    data = bytearray(path.read_bytes())
    # The kernel's datatype message: type 3, 24 bytes, constant; version 1, class 1 (float), bit field 20 1f 00.
    at = data.index(b"\x03\x00\x18\x00\x01\x00\x00\x00\x11\x20\x1f\x00", header) + 8
    assert at < header + 512  # in the kernel's own object header
    data[at] = 0x13  # version 1, class 3: a string, of character set (0x20 >> 4) = 2, which does not exist
    reason = _refusal(tmp_path, zipfiles.replace(_bytes(DENSE), "model.weights.h5", bytes(data)))
    assert reason.startswith("model.weights.h5 is damaged (")


def test_a_dataset_whose_filter_is_not_available_is_refused(tmp_path):
    def unknown_filter(f):
        del f["layers/dense/vars/1"]
        d = f.create_dataset("layers/dense/vars/1", shape=(6,), dtype="f4", chunks=(6,), compression=32001,
                             allow_unknown_filter=True)
        d.id.write_direct_chunk((0,), b"\x01 bytes that only the missing filter would know")

    assert _refusal(tmp_path, _with_weights(tmp_path, unknown_filter)).startswith(
        "model.weights.h5 is damaged (OSError: ")


# --- weights that disagree with the config, or are not usable numbers ------------------------------
@pytest.mark.parametrize("path, value, expected", [
    ("layers/dense/vars/0", np.zeros((6, 4), np.float32), "has shape (6, 4); the model needs (4, 6)"),
    ("layers/dense/vars/0", np.zeros((4, 6, 1), np.float32), "has shape (4, 6, 1); the model needs (4, 6)"),
    ("layers/dense/vars/1", np.float32(0), "has shape (); the model needs (6,)"),
    ("layers/dense/vars/1", h5py.Empty("f4"), "has shape None; the model needs (6,)"),
    ("optimizer/vars/3", np.zeros((4, 5), np.float32), "has shape (4, 5); the model needs (4, 6)"),
    ("layers/dense/vars/1", np.array(["a"] * 6, dtype=h5py.string_dtype()), "has dtype object; expected a float"),
    ("layers/dense/vars/1", np.zeros(6, "S4"), "has dtype |S4; expected a float"),
    ("layers/dense/vars/1", np.zeros(6, np.complex64), "has dtype complex64; expected a float"),
    ("layers/dense/vars/1", np.zeros(6, np.int32), "has dtype int32; expected a float"),
    ("layers/dense/vars/1", np.zeros(6, bool), "has dtype bool; expected a float"),
    ("layers/dense/vars/1", np.zeros(6, [("a", "f4")]), "has dtype [('a', '<f4')]; expected a float"),
    ("optimizer/vars/0", np.float32(6), "has dtype float32; expected an integer"),
    ("optimizer/vars/2", np.zeros((4, 6), np.int64), "has dtype int64; expected a float"),
    ("layers/dense/vars/1", np.array([0, 0, np.nan, 0, 0, 0], np.float32), "holds nan; every value must be finite"),
    ("layers/dense_1/vars/0", np.full((6, 3), np.inf, np.float32), "holds inf; every value must be finite"),
    ("optimizer/vars/5", np.full(6, -np.inf, np.float32), "holds -inf; every value must be finite"),
    ("optimizer/vars/1", np.float32(np.nan), "holds nan; every value must be finite"),
])
def test_a_weight_of_the_wrong_shape_dtype_or_value_is_refused(tmp_path, path, value, expected):
    reason = _refusal(tmp_path, _with_weights(tmp_path, _set(path, value)))
    assert reason == f"the HDF5 dataset {path!r} {expected}"


@pytest.mark.parametrize("name, path, value, expected", [
    (DENSE, "layers/dense/vars/1", np.full(6, 1e300), "layers/dense/vars/1 holds values too large for float32"),
    (DENSE, "optimizer/vars/0", np.int64(-1), "'optimizer/vars/0' must be an iteration count >= 0, got -1"),
    (DENSE, "optimizer/vars/0", np.uint64(2**63), f"'optimizer/vars/0' must be an iteration count >= 0, got {2**63}"),
    (DENSE, "optimizer/vars/3", -np.ones((4, 6), np.float32),
     "'optimizer/vars/3' holds negative values; it is a running mean of squares"),
    (LAYERS, "layers/normalization/vars/1", np.array([1, 1, -1e-3, 1], np.float32),
     "'layers/normalization/vars/1' holds negative values; it is the variance of model.layers[0] (Normalization)"),
    (LAYERS, "layers/normalization/vars/2", np.int32(-3),
     "'layers/normalization/vars/2' holds negative values; it is the sample count of model.layers[0] (Normalization)"),
])
def test_values_outside_their_range_are_refused(tmp_path, name, path, value, expected):
    assert _refusal(tmp_path, _with_weights(tmp_path, _set(path, value), name)) == expected


def test_a_legacy_file_s_bad_statistics_and_weights_are_refused(tmp_path):
    def negative_variance(f):
        f["model_weights/normalization/variance:0"][...] = np.array([1, -1, 1, 1], np.float32)

    assert _refusal(tmp_path, _legacy(tmp_path, negative_variance, TFK2), ".h5") == (
        "'model_weights/normalization/variance:0' holds negative values; it is the variance of model.layers[0] "
        "(Normalization)")
    assert _refusal(tmp_path, _legacy(tmp_path, _set(KERNEL, np.zeros((5, 4), np.float32))), ".h5") == \
        f"the HDF5 dataset '{KERNEL}' has shape (5, 4); the model needs (4, 5)"
    assert _refusal(tmp_path, _legacy(tmp_path, _set(BIAS, np.full(5, np.nan, np.float32))), ".h5") == \
        f"the HDF5 dataset '{BIAS}' holds nan; every value must be finite"
    assert _refusal(tmp_path, _legacy(tmp_path, _set(BIAS, np.zeros(5, np.complex128))), ".h5") == \
        f"the HDF5 dataset '{BIAS}' has dtype complex128; expected a float"

    def negative_iterations(f):
        f["optimizer_weights/iteration:0"][()] = -5

    assert _refusal(tmp_path, _legacy(tmp_path, negative_iterations, TFK2), ".h5") == \
        "'optimizer_weights/iteration:0' must be an iteration count >= 0, got -5"


@pytest.mark.parametrize("change, expected", [
    (lambda f: f.create_dataset("layers/dense/vars/2", data=np.zeros(6, np.float32)),
     "model.weights.h5 holds datasets logitnet does not read: ['layers/dense/vars/2']"),
    (lambda f: f.create_dataset("payload", data=np.zeros(3, np.float32)),
     "model.weights.h5 holds datasets logitnet does not read: ['payload']"),
    (lambda f: f.__setitem__("layers/dense/vars/copy", f["layers/dense/vars/0"]),  # a second hard link
     "the HDF5 entry 'layers/dense/vars/copy' links to an object linked elsewhere in the file too"),
    (_set("layers/dense_1/vars/1", "layers/dense/vars/1"),  # both biases one dataset (3 != 6 numbers, but first:)
     "the HDF5 entry 'layers/dense_1/vars/1' links to an object linked elsewhere in the file too"),
    (lambda f: f.__delitem__("layers/dense_1/vars/1"), "the weights file lacks 'layers/dense_1/vars/1', a weight of shape (3,)"),
    (lambda f: f.move("layers/dense", "layers/dense_9"), "the weights file lacks 'layers/dense/vars/0', a weight of shape (4, 6)"),
    (lambda f: f.__delitem__("optimizer/vars/9"),
     "the file holds 9 optimizer variables; a Adam with momentum, velocity over 4 trainable weights has 10"),
    (lambda f: f.create_dataset("optimizer/vars/10", data=np.zeros(3, np.float32)),
     "the file holds 11 optimizer variables; a Adam with momentum, velocity over 4 trainable weights has 10"),
    (lambda f: f.move("optimizer/vars/9", "optimizer/vars/12"), "model.weights.h5's optimizer/vars must be numbered 0, 1, ..."),
    (lambda f: f.move("optimizer/vars/9", "optimizer/vars/x"), "model.weights.h5's optimizer/vars must be numbered 0, 1, ..."),
])
def test_datasets_the_config_does_not_call_for_or_lacks_are_refused(tmp_path, change, expected):
    assert _refusal(tmp_path, _with_weights(tmp_path, change)).startswith(expected)


def test_optimizer_variables_are_checked_only_when_compiled(tmp_path):
    data = _with_weights(tmp_path, lambda f: f.__delitem__("optimizer/vars/9"))
    model = _loaded(tmp_path, data, compile=False)
    assert model.optimizer is None
    np.testing.assert_array_equal(model.get_weights()[3], _loaded(tmp_path, _bytes(DENSE)).get_weights()[3])


# --- the legacy file's attributes -----------------------------------------------------------------
def _weights_only(f):
    """What `model.save_weights("w.h5")` writes: no architecture, no training config."""
    del f.attrs["model_config"], f.attrs["training_config"]


@pytest.mark.parametrize("change, expected", [
    (_weights_only, ("it has no model_config attribute: it is not a Keras model file (a weights-only .h5 file has no "
                    "architecture to build)")),
    (_attr("model_config", 3), "the attribute /.model_config must be text, got int64"),
    (_attr("model_config", ["{}", "{}"]), "the attribute /.model_config must be text, got ndarray"),
    (_attr("model_config", h5py.Empty("S10")), "the attribute /.model_config must be text, got Empty"),
    (_attr("model_config", np.bytes_(b"\xff\xfe{}")), "the attribute /.model_config is not UTF-8 text (UnicodeDecodeError"),
    (_attr("model_config", json.dumps({"module": "keras", "class_name": "Sequential", "config": {"layers": []}})),
     "model_config.config.layers must be a non-empty list, got []"),
    (_attr("layer_names", None, "model_weights"), "model_weights has no layer_names attribute"),
    (_attr("layer_names", ["dense_14", "dense_13"], "model_weights"),
     "model_weights' layer_names ['dense_14', 'dense_13'] do not match the layers ['dense_13', 'dense_14']"),
    (_attr("layer_names", [1, 2], "model_weights"), "model_weights.layer_names must be a list of names"),
    (_attr("layer_names", [["dense_13", "dense_14"]], "model_weights"), "model_weights.layer_names must be a list of names"),
    (_attr("weight_names", None, "model_weights/dense_13"), "model_weights/dense_13 has no weight_names attribute"),
    (_attr("weight_names", ["sequential_5/dense_13/kernel"], "model_weights/dense_13"),
     "model_weights/dense_13 holds 1 weights; layer 'dense_13' has 2"),
    (_attr("weight_names", ["sequential_5/dense_13/kernel", "elsewhere/bias"], "model_weights/dense_13"),
     "the weights file lacks 'model_weights/dense_13/elsewhere/bias', a weight of shape (5,)"),
    (lambda f: f.move("model_weights", "weights"), "it has no model_weights group"),
    (lambda f: f.create_dataset("payload", data=[1.0]), "the file holds datasets logitnet does not read: ['payload']"),
    (lambda f: f["optimizer_weights"].attrs.__setitem__(
        "weight_names", [*f["optimizer_weights"].attrs["weight_names"], "adam_2/ghost"]),
     "optimizer_weights names datasets that are not there: ['optimizer_weights/adam_2/ghost']"),
    (lambda f: f["optimizer_weights"].attrs.__setitem__("weight_names", list(f["optimizer_weights"].attrs["weight_names"])[:-1]),
     "the file holds datasets logitnet does not read: ['optimizer_weights/adam_2/sequential_5_dense_14_bias_velocity']"),
])
def test_a_legacy_file_s_attributes_are_checked(tmp_path, change, expected):
    assert _refusal(tmp_path, _legacy(tmp_path, change), ".h5").startswith(expected)


def test_a_legacy_optimizer_with_the_wrong_variable_count_is_refused(tmp_path):
    def drop_last(f):
        names = [n.decode() if isinstance(n, bytes) else n for n in f["optimizer_weights"].attrs["weight_names"]]
        f["optimizer_weights"].attrs["weight_names"] = names[:-1]
        del f[f"optimizer_weights/{names[-1]}"]

    assert _refusal(tmp_path, _legacy(tmp_path, drop_last, TFK2), ".h5") == (
        "the file holds 4 optimizer variables; a SGD with momentum over 4 trainable weights has 5")


@pytest.mark.parametrize("attribute", ["model_config", "training_config"])
def test_bad_json_in_a_legacy_attribute_names_that_attribute(tmp_path, attribute):
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr(attribute, "{oops")), ".h5")
    assert reason.startswith(f"the attribute {attribute} is not valid UTF-8 JSON (JSONDecodeError: ")
    reason = _refusal(tmp_path, _legacy(tmp_path, _attr(attribute, '{"loss": "mse", "loss": "mae"}')), ".h5")
    assert reason == f"the attribute {attribute} repeats the key 'loss'"


def test_training_config_is_not_read_with_compile_false(tmp_path):
    data = _legacy(tmp_path, _attr("training_config", "{oops"))
    assert _refusal(tmp_path, data, ".h5").startswith("the attribute training_config is not valid UTF-8 JSON")
    model = _loaded(tmp_path, data, ".h5", compile=False)
    assert model.optimizer is None and [layer.units for layer in model.layers] == [5, 3]


# --- the .keras zip -------------------------------------------------------------------------------
KERAS_MEMBERS = "a .keras file holds metadata.json, config.json and model.weights.h5"


@pytest.mark.parametrize("make, expected", [
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", None), f"{KERAS_MEMBERS}; it lacks ['metadata.json']"),
    (lambda: zipfiles.replace(_bytes(DENSE), "config.json", None), f"{KERAS_MEMBERS}; it lacks ['config.json']"),
    (lambda: zipfiles.replace(_bytes(DENSE), "model.weights.h5", None), f"{KERAS_MEMBERS}; it lacks ['model.weights.h5']"),
    (lambda: zipfiles.make_zip(_members() + [("payload.py", b"import os; os.system('true')")]),
     f"{KERAS_MEMBERS}; unexpected [\"'payload.py'\"]"),
    (lambda: zipfiles.make_zip(_members() + [("assets/vocab.txt", b"a\nb\n")]), f"{KERAS_MEMBERS}; unexpected"),
    (lambda: zipfiles.make_zip(_members() + [_members()[1]]), "the zip holds the member 'config.json' more than once"),
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", b"[1]"),
     "metadata.json must be an object with a keras_version, got [1]"),
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", b'{"date_saved": "today"}'),
     "metadata.json must be an object with a keras_version"),
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", b'{"keras_version": "3", "logitnet_metadata": 3}'),
     "metadata.json's logitnet_metadata must be an object, got 3"),
    (lambda: zipfiles.replace(_bytes(DENSE), "config.json", b'{"module": '), "config.json is not valid UTF-8 JSON"),
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", b'{"keras_version": "3",'), "metadata.json is not valid UTF-8 JSON"),
    (lambda: zipfiles.replace(_bytes(DENSE), "metadata.json", b'{"keras_version": "3", "keras_version": "2"}'),
     "metadata.json repeats the key 'keras_version'"),
    (lambda: zipfiles.replace(_bytes(DENSE), "config.json", b"[]"), "config.json must be a JSON object, got []"),
    (lambda: zipfiles.replace(_bytes(DENSE), "model.weights.h5", b"not an HDF5 file"),
     "model.weights.h5 is not a readable HDF5 file (OSError: "),
    (lambda: zipfiles.replace(_bytes(DENSE), "model.weights.h5", _bytes(LEGACY)),
     "the weights file lacks 'layers/dense/vars/0', a weight of shape (4, 6)"),
])
def test_the_zip_members_are_checked(tmp_path, make, expected):
    assert _refusal(tmp_path, make()).startswith(expected)


# --- fuzz -----------------------------------------------------------------------------------------
# Each mutated file is loaded by a worker process with the HDF5 part inline (not in the loader's
# forked child, `keras_files._isolated`): hundreds of loads a second, and a crash or a hang inside
# libhdf5 is seen as such. The loader's child turns those into refusals; the first of each kind
# per fixture is loaded again that way to show it.
N_MUTATIONS = 150
CASE_SECONDS = 0.5  # an inline load of these few-KB files takes milliseconds; a case over this counts as a hang
_WORKER = textwrap.dedent("""
    import sys, traceback
    import numpy as np
    from logitnet import keras_files
    from logitnet.models import load_model
    from logitnet.saving import ModelFileError

    if sys.platform.startswith("linux"):  # killed with the test process, even while stuck in libhdf5
        import ctypes, signal
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    if sys.argv[1] == "inline":
        assert callable(keras_files._isolated)
        keras_files._isolated = lambda work, size: work()
    else:  # the loader's own child, with this time limit
        keras_files.H5_SECONDS = float(sys.argv[1])

    def outcome(path):
        try:
            model = load_model(path)
        except ModelFileError as err:
            if not err.unexpected:
                return "refused " + repr(str(err))
            cause = "".join(traceback.format_exception(err.__cause__))[-1500:]
            return "unexpected " + repr(str(err)[-300:] + " | " + cause)
        except BaseException as err:
            return "other " + repr(f"{type(err).__name__}: {err}"[:500])
        shape = model.input_shape[1:]
        x = np.linspace(-1, 1, 3 * int(np.prod(shape))).reshape(3, *shape)
        with np.errstate(all="ignore"):
            out = model.predict(x, verbose=0)
        if out.shape[0] != 3 or out.dtype != model.dtype:
            return f"other 'predict gave {out.shape} {out.dtype}'"
        biggest = max(float(np.abs(w).max()) for w in model.weights if w.size)
        if not np.isfinite(out).all() and biggest < 1e3:  # flipped exponent bits may give 1e38 weights
            return f"other 'non-finite predictions from weights at most {biggest}'"
        return "loaded"

    # The compiled path (logitnet[fast]) loads numba and its kernels on first use, which takes
    # longer than a case may: warm them up here, so that a case times the file's reading alone.
    import logitnet as ln
    for dtype in ("float32", "float64"):
        warm = ln.Sequential([ln.layers.Dense(2, "relu"), ln.layers.Dense(2, "softmax")], seed=0, dtype=dtype)
        warm.build((None, 3))
        warm.predict(np.zeros((1, 3)), verbose=0)

    print("ready", flush=True)
    for line in sys.stdin:
        print(outcome(line.rstrip("\\n")), flush=True)
""")


class _Worker:
    def __init__(self, mode: str = "inline") -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self._line(60.0) == "ready"

    def _line(self, seconds: float) -> str | None:
        """The worker's next line; None if none came within `seconds`, "crash ..." if it died."""
        line, deadline = b"", time.monotonic() + seconds
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return f"crash (exit status {self.proc.wait()})"
            line += chunk
        return line.decode().strip()

    def load(self, path: Path, seconds: float = CASE_SECONDS) -> str:
        self.proc.stdin.write(f"{path}\n".encode())
        self.proc.stdin.flush()
        return self._line(seconds) or "hang"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _alone(path: Path, h5_seconds: float) -> str:
    """The outcome of loading `path` in a fresh worker, HDF5 in the loader's child with that time limit."""
    worker = _Worker(str(h5_seconds))
    try:
        return worker.load(path, h5_seconds + 30)
    finally:
        worker.close()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One of: 1-8 bit flips, 1-4 random bytes, a truncation, a splice of the file into itself."""
    out = bytearray(data)
    op = int(rng.integers(4))
    if op == 0:
        for pos in rng.integers(0, len(out), rng.integers(1, 9)):
            out[pos] ^= 1 << int(rng.integers(8))
    elif op == 1:
        for pos in rng.integers(0, len(out), rng.integers(1, 5)):
            out[pos] = int(rng.integers(256))
    elif op == 2:
        return bytes(out[:int(rng.integers(0, len(out)))])
    else:
        start, stop = sorted(int(v) for v in rng.integers(0, len(out), 2))
        at = int(rng.integers(0, len(out)))
        out[at:at + stop - start] = data[start:stop]
        return bytes(out[:len(data)]) if rng.integers(2) else bytes(out)
    return bytes(out)


def _fuzz(name: str, folder: Path) -> list[tuple[str, Path]]:
    """(outcome, file) of each of N_MUTATIONS seeded mutations of the fixture `name`: for a .keras
    file, every other one mutates a member and zips it again (valid CRCs), so the parsers behind
    the zip see the damage. Files that did not load or get refused are kept in `folder`."""
    data = _bytes(name)
    rng = np.random.default_rng(sum(name.encode()))  # a fixed seed per fixture
    members = zipfiles.members(data) if name.endswith(".keras") else None
    path = folder / f"fuzz{Path(name).suffix}"
    worker, results = _Worker(), []
    try:
        for i in range(N_MUTATIONS):
            if members and i % 2:
                j = int(rng.integers(len(members)))
                bad = zipfiles.make_zip(members[:j] + [(members[j][0], _mutate(members[j][1], rng))] + members[j + 1:])
            else:
                bad = _mutate(data, rng)
            path.write_bytes(bad)
            result, kept = worker.load(path), path
            kind = result.split()[0]
            if kind not in ("loaded", "refused"):  # kept, to be looked at or loaded again
                kept = folder / f"{kind}_{i}{path.suffix}"
                kept.write_bytes(bad)
            if kind in ("hang", "crash"):
                worker.close()
                worker = _Worker()
            results.append((result, kept))
    finally:
        worker.close()
    return results


@pytest.mark.parametrize("name", FIXTURES)
def test_fuzzed_files_load_usable_or_are_refused_by_a_check(tmp_path, name):
    """Each mutation loads (and predicts finite numbers from sane weights) or is refused with a
    ModelFileError from a check; anything else (another exception, unexpected=True) fails. What
    hangs or crashes libhdf5 is refused by the loader's child (checked on the first of each)."""
    results = _fuzz(name, tmp_path)
    kinds = [r.split()[0] for r, _ in results]
    problems = [(i, r) for i, r in enumerate(r for r, _ in results) if r.split()[0] not in
                ("loaded", "refused", "hang", "crash")]
    assert not problems, f"{problems[:3]} (the files are in {tmp_path})"
    assert kinds.count("refused") >= N_MUTATIONS // 2  # the mutations do damage: most are refused
    assert kinds.count("loaded") + kinds.count("refused") >= 0.8 * N_MUTATIONS  # few hang libhdf5
    for kind, expected in (("hang", "did not finish in 1 s: the file is damaged"),
                           ("crash", "libhdf5 crashed reading its HDF5 data")):
        kept = [f for (r, f), k in zip(results, kinds) if k == kind]
        if kept:
            again = _alone(kept[0], 1.0)
            assert again.startswith("refused") and expected in again, (kept[0], again)


def test_a_corrupt_string_datatype_that_crashes_libhdf5_is_a_refusal(tmp_path):
    """One bit flip in model_config's datatype message (variable-length string -> variable-length
    kind 3) makes libhdf5 segfault on reading the attribute: the loader's child dies, the file is refused."""
    data = bytearray(_bytes(LEGACY))
    at = data.index(b"model_config\x00") + 16  # the attribute message's datatype, after the name padded to 8
    assert data[at:at + 2] == b"\x19\x01"  # version 1, class 9 (variable length), kind 1 (string)
    data[at + 1] = 0x03
    path = _path(tmp_path, bytes(data), ".h5")
    crashed = subprocess.run([sys.executable, "-c", f"import h5py; h5py.File({str(path)!r}, 'r').attrs['model_config']"],
                             capture_output=True, timeout=60, check=False)
    assert crashed.returncode == -signal.SIGSEGV  # libhdf5 itself, without logitnet
    outcome = _alone(path, 60.0)
    assert outcome.startswith("refused") and "libhdf5 crashed reading its HDF5 data (exit code -11)" in outcome
