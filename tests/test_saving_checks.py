"""The model-file checks, one crafted file each, with the exact ModelFileError message that names
what is wrong (where, the bad value, what was expected); and files at the checks' edges that must
load (one input, one unit, one layer, big seeds and counts, zero velocities, .npy version 2.0)."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest
import zipfiles

from logitnet import Sequential, losses, optimizers, regularizers
from logitnet.layers import Dense, Input
from logitnet.saving import (
    MAX_CONFIG_BYTES,
    MAX_LAYERS,
    MAX_PARAMS,
    ModelFileError,
    _check_config,
    save_model,
)


# --- files --------------------------------------------------------------------------------------
def _model():
    m = Sequential([Input((4,)), Dense(5, "relu", kernel_regularizer=regularizers.l2(1e-3)), Dense(3, "softmax")],
                   seed=0, name="small")
    m.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    m.fit(rng.normal(size=(24, 4)), np.arange(24) % 3, epochs=1, batch_size=8, verbose=0)
    return m


def _bytes(model, tmp_path) -> bytes:
    path = tmp_path / "saved.logitnet"
    save_model(model, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> bytes:
    return _bytes(_model(), tmp_path_factory.mktemp("base"))


_members, _zip, _replace = zipfiles.members, zipfiles.make_zip, zipfiles.replace


def _config(data: bytes) -> dict:
    return json.loads(dict(_members(data))["config.json"])


def _with_config(change):
    def make(data: bytes) -> bytes:
        config = _config(data)
        change(config)
        return _replace(data, "config.json", json.dumps(config).encode())
    return make


def _npy(arr: np.ndarray, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def _npy_raw(header: str, payload: bytes = b"", version: int = 1) -> bytes:
    text = header.encode("latin1") + b"\n"
    size = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + payload


def _padded_npy(arr: np.ndarray, total_header: int) -> bytes:
    """A .npy 1.0 of `arr` whose header (magic to newline) is exactly `total_header` bytes."""
    text = f"{{'descr': '{arr.dtype.str}', 'fortran_order': False, 'shape': {arr.shape!r}, }}"
    return _npy_raw(text + " " * (total_header - 10 - len(text) - 1), arr.tobytes())


def _central(data: bytes, name: str) -> int:
    """Offset of `name`'s central directory entry."""
    cd = data.index(b"PK\x01\x02")
    while data[cd + 46:cd + 46 + struct.unpack("<H", data[cd + 28:cd + 30])[0]] != name.encode():
        cd = data.index(b"PK\x01\x02", cd + 4)
    return cd


def _patch_central(data: bytes, name: str, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    at = _central(data, name) + offset
    out[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(out)


def _flags(name, value):
    return lambda data: _patch_central(data, name, 8, "<H", value)


def _corrupt_stream(name):
    """Flip a byte inside `name`'s deflated data: its CRC (or the stream) no longer checks out."""
    def make(data: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            info = zf.getinfo(name)
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        out = bytearray(data)
        out[start + info.compress_size // 2] ^= 0xFF
        return bytes(out)
    return make


_load, _refusal = zipfiles.load, zipfiles.refusal


def _set(*path_and_value):
    *path, value = path_and_value

    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop(*path):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


def _many_members(data: bytes) -> bytes:
    return _zip(_members(data) + [(f"extra/{i}.npy", b"") for i in range(7)])


KERNEL = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
ONE_INF = np.zeros(5, np.float32)
ONE_INF[3] = np.inf
LAYER0 = ("model", "layers", 0, "config")

# name -> (make the file from the base file, the message); `...` marks text from numpy or zipfile.
REFUSED = {
    # config.json's top level
    "no model": (_with_config(_drop("model")),
                 ("config.json must have the keys model and metadata, and only ['compile', 'format', 'metadata', "
                  "'model', 'optimizer_state', 'version']; got [\"'compile'\", \"'format'\", \"'metadata'\", "
                  "\"'optimizer_state'\", \"'version'\"]")),
    "model key": (_with_config(_set("model", "trainable", True)),
                  ("model must have the keys ['name', 'dtype', 'seed', 'input_shape', 'layers']; unknown keys "
                   "[\"'trainable'\"]")),
    "model name": (_with_config(_set("model", "name", 3)), "model.name must be a string, got 3"),
    "model dtype": (_with_config(_set("model", "dtype", "int8")),
                    "model.dtype must be one of ('float32', 'float64'), got 'int8'"),
    "seed 2**4096": (_with_config(_set("model", "seed", 2**4096)),
                     "model.seed must be null or an integer >= 0, got 104438888141315250...4708340403154190336"),
    "input_shape": (_with_config(_set("model", "input_shape", [0])),
                    ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 numbers in all, "
                     "got [0]")),
    "input_shape too many numbers": (_with_config(_set("model", "input_shape", [2**12, 2**12, 2])),
                                     ("model.input_shape must be a list of 1 to 8 sizes >= 1 with at most 16,777,216 "
                                      "numbers in all, got [4096, 4096, 2]")),
    "input_dim of version 1": (_with_config(_set("model", "input_dim", 4)),
                               ("model must have the keys ['name', 'dtype', 'seed', 'input_shape', 'layers']; "
                                "unknown keys [\"'input_dim'\"]")),
    "layers": (_with_config(_set("model", "layers", {})),
               f"model.layers must be a list of 1 to {MAX_LAYERS} layer configs, got {{}}"),
    # layers
    "layer entry key": (_with_config(_set("model", "layers", 0, "module", "keras")),
                        "model.layers[0] must have the keys ['class_name', 'config']; unknown keys [\"'module'\"]"),
    "layer class": (_with_config(_set("model", "layers", 0, "class_name", "Conv2D")),
                    ("model.layers[0].class_name must be one of ['Activation', 'Dense', 'Dropout', 'Flatten', "
                     "'LeakyReLU', 'Normalization', 'ReLU', 'Softmax'], got 'Conv2D'")),
    "layer config key": (_with_config(_set(*LAYER0, "dtype", "float32")),
                         ("model.layers[0].config must have the keys ['units', 'activation', 'use_bias', "
                          "'kernel_initializer', 'bias_initializer', 'kernel_regularizer', 'name', 'trainable']; "
                          "unknown keys [\"'dtype'\"]")),
    "units 0": (_with_config(_set(*LAYER0, "units", 0)),
                "model.layers[0].config.units must be an integer in [1, 16777216], got 0"),
    "activation": (_with_config(_set(*LAYER0, "activation", "selu")),
                   ("model.layers[0].config.activation must be one of [...'linear', ...'relu', ...'sigmoid', "
                    "...'softmax', ...'tanh'], got 'selu'")),
    "initializer": (_with_config(_set(*LAYER0, "bias_initializer", "orthogonal")),
                    "model.layers[0].config.bias_initializer must be one of ..., got 'orthogonal'"),
    "use_bias": (_with_config(_set(*LAYER0, "use_bias", 1)),
                 "model.layers[0].config.use_bias must be true or false, got 1"),
    "regularizer key": (_with_config(_set(*LAYER0, "kernel_regularizer", {"l2": 0.1})),
                        ("model.layers[0].config.kernel_regularizer must be null or {l1, l2} with finite numbers "
                         ">= 0, got {'l2': 0.1}")),
    "regularizer value": (_with_config(_set(*LAYER0, "kernel_regularizer", "l2", -0.5)),
                          ("model.layers[0].config.kernel_regularizer must be null or {l1, l2} with finite numbers "
                           ">= 0, got {'l1': 0.0, 'l2': -0.5}")),
    "trainable": (_with_config(_set(*LAYER0, "trainable", "no")),
                  "model.layers[0].config.trainable must be true or false, got 'no'"),
    "duplicate name": (_with_config(_set("model", "layers", 1, "config", "name", "dense")),
                       "model.layers[1].config.name must be a non-empty string unique in the model, got 'dense'"),
    "name not a string": (_with_config(_set(*LAYER0, "name", 7)),
                          "model.layers[0].config.name must be a non-empty string unique in the model, got 7"),
    "empty name": (_with_config(_set(*LAYER0, "name", "")),
                   "model.layers[0].config.name must be a non-empty string unique in the model, got ''"),
    # compile
    "compile key": (_with_config(_set("compile", "run_eagerly", True)),
                    "compile must have the keys ['loss', 'optimizer', 'metrics']; unknown keys [\"'run_eagerly'\"]"),
    "loss key": (_with_config(_set("compile", "loss", "module", "keras")),
                 "compile.loss must have the keys ['class_name', 'config']; unknown keys [\"'module'\"]"),
    "loss class_name": (_with_config(_set("compile", "loss", "class_name", 5)),
                        "compile.loss.class_name must be a string, got 5"),
    "unknown loss": (_with_config(_set("compile", "loss", "class_name", "Hinge")),
                     "compile.loss.class_name 'Hinge' is not a logitnet loss (ValueError: unknown loss 'Hinge'; ...)"),
    "loss config a list": (_with_config(_set("compile", "loss", "config", [])),
                           "compile.loss.config must be a JSON object, got []"),
    "key of another loss": (_with_config(_set("compile", "loss", "config", "label_smoothing", 0.1)),
                            ("compile.loss.config has the unknown key 'label_smoothing' for "
                             "SparseCategoricalCrossentropy")),
    "loss value": (_with_config(_set("compile", "loss", "config", "from_logits", "yes")),
                   "compile.loss.config.from_logits must be true or false, got 'yes'"),
    "optimizer key": (_with_config(_set("compile", "optimizer", "module", "keras")),
                      "compile.optimizer must have the keys ['class_name', 'config']; unknown keys [\"'module'\"]"),
    "optimizer config a list": (_with_config(_set("compile", "optimizer", "config", [])),
                                "compile.optimizer.config must be a JSON object, got []"),
    "optimizer value": (_with_config(_set("compile", "optimizer", "config", "learning_rate", [0.1])),
                        "compile.optimizer.config.learning_rate must be a number, string, boolean or null, got [0.1]"),
    "unknown optimizer": (_with_config(_set("compile", "optimizer", "class_name", "Lion")),
                          ("compile.optimizer {'class_name': 'Lion', 'config': {'amsgrad': False, ...}} is not a valid "
                           "optimizer (ValueError: unknown optimizer class_name 'Lion'; ...)")),
    "one softmax unit": (_with_config(lambda c: c["model"]["layers"][1]["config"].update(units=1)),
                         ("compile.loss SparseCategoricalCrossentropy does not fit the last layer (ValueError: "
                          "SparseCategoricalCrossentropy needs at least 2 output units: ...)")),
    "metrics not strings": (_with_config(_set("compile", "metrics", [3])),
                            "compile.metrics must be a list of at most 64 metric names, got [3]"),
    "metrics a string": (_with_config(_set("compile", "metrics", "accuracy")),
                         "compile.metrics must be a list of at most 64 metric names, got 'accuracy'"),
    "65 metrics": (_with_config(_set("compile", "metrics", ["accuracy"] * 65)),
                   "compile.metrics must be a list of at most 64 metric names, got ['accuracy', ...]"),
    "unknown metric": (_with_config(_set("compile", "metrics", ["accuracy", "mystery"])),
                       "compile.metrics has an unknown metric 'mystery' (ValueError: ...)"),
    # optimizer_state
    "state a dict": (_with_config(_set("optimizer_state", {"iterations": 0, "momentum": 0, "velocity": 0})),
                     ("optimizer_state must list ['iterations', 'momentum', 'velocity'] for this Adam, got "
                      "{'iterations': 0, 'momentum': 0, 'velocity': 0}")),
    "state with a number": (_with_config(_set("optimizer_state", ["iterations", "momentum", "velocity", 3])),
                            ("optimizer_state must list ['iterations', 'momentum', 'velocity'] for this Adam, got "
                             "['iterations', 'momentum', 'velocity', 3]")),
    "state without compile": (_with_config(_drop("compile")),
                              "config.json has an optimizer_state but no compile section"),
    # the zip and its members
    "no config.json": (lambda data: _replace(data, "config.json", None), "the zip has no config.json"),
    "config.json damaged": (_corrupt_stream("config.json"), "config.json cannot be read (...)"),
    "member twice": (lambda data: _zip(_members(data) + [_members(data)[2]]),
                     "the zip holds the member 'weights/1.npy' more than once"),
    "encrypted": (_flags("weights/0.npy", 0x1), "'weights/0.npy' is encrypted"),
    "zip flags": (_flags("weights/0.npy", 0x20),
                  ("'weights/0.npy' has the zip flags 0x0020; only 0x080e (deflate options, data descriptor, "
                   "UTF-8 names) are read")),
    "offset at the end": (lambda data: _patch_central(data, "weights/0.npy", 42, "<I", len(data)),
                          "'weights/0.npy' lies outside the file (offset {n}, ..."),
    "compression": (lambda data: _zip(_members(data), zipfile.ZIP_LZMA),
                    "'config.json' uses compression method 14; expected stored or deflated"),
    "members missing": (lambda data: _replace(data, "weights/3.npy", None),
                        "the zip's members do not match its config.json; it lacks ['weights/3.npy']"),
    "many members missing": (lambda data: _zip(_members(data)[:1]),
                             ("the zip's members do not match its config.json; it lacks ['optimizer/iterations.npy', "
                              "'optimizer/momentum.npy', 'optimizer/velocity.npy', 'weights/0.npy', 'weights/1.npy']")),
    "members extra": (_many_members,
                      ("the zip's members do not match its config.json; unexpected [\"'extra/0.npy'\", "
                       "\"'extra/1.npy'\", \"'extra/2.npy'\", \"'extra/3.npy'\", \"'extra/4.npy'\"]")),
    # arrays
    "array damaged": (_corrupt_stream("weights/0.npy"), "weights/0.npy cannot be read (...)"),
    "npy version 3.0": (lambda data: _replace(data, "weights/1.npy", _npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", b"\0" * 20, version=3)),
        "weights/1.npy has .npy format version (3, 0); expected 1.0 or 2.0"),
    # A header longer than the 4,096 bytes read for it (the array itself is small enough).
    "npy header too long": (lambda data: _replace(data, "weights/0.npy", _npy_raw(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }" + " " * 4100, b"\0" * 80)),
        "weights/0.npy is not a readable .npy array: its header is malformed (ValueError: ...)"),
    "int kernel": (lambda data: _replace(data, "weights/0.npy", _npy(KERNEL.astype(np.int32))),
                   "weights/0.npy has dtype int32; expected float16, float32 or float64"),
    "int slot": (lambda data: _replace(data, "optimizer/momentum.npy", _npy(np.zeros(43, np.int32))),
                 "optimizer/momentum.npy has dtype int32; expected float16, float32 or float64"),
    # One byte more than a (4, 5) array may take: 4,096 header bytes and 20 float64 values.
    "member over the bound": (lambda data: _replace(data, "weights/0.npy",
                                                    _padded_npy(KERNEL.astype(np.float64), 4096) + b"\0"),
                              "weights/0.npy claims 4,257 bytes; an array of shape (4, 5) takes at most 4,256"),
    "float iterations": (lambda data: _replace(data, "optimizer/iterations.npy", _npy(np.array(3.0))),
                         "optimizer/iterations.npy has dtype float64; expected an integer"),
    "one inf": (lambda data: _replace(data, "weights/1.npy", _npy(ONE_INF)),
                "weights/1.npy holds inf; every value must be finite"),
    "too large for float32": (lambda data: _replace(data, "weights/0.npy", _npy(KERNEL.astype(np.float64) * 1e300)),
                              "weights/0.npy holds values too large for float32"),
    "slot too large for float32": (lambda data: _replace(data, "optimizer/momentum.npy", _npy(np.full(43, 1e300))),
                                   "optimizer/momentum.npy holds values too large for float32"),
    "iterations 2**62": (lambda data: _replace(data, "optimizer/iterations.npy", _npy(np.array(2**62))),
                         "optimizer/iterations.npy must be an iteration count >= 0, got 4611686018427387904"),
    "negative velocity": (lambda data: _replace(data, "optimizer/velocity.npy", _npy(-np.ones(43, np.float32))),
                          "optimizer/velocity.npy holds negative values; it is a running mean of squares"),
}


def _matches(message: str, expected: str) -> bool:
    parts = expected.split("...")
    if len(parts) == 1:
        return message == expected
    return message.startswith(parts[0]) and message.endswith(parts[-1]) and all(p in message for p in parts)


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_file_is_refused_with_the_message_that_names_it(tmp_path, base, case):
    make, expected = REFUSED[case]
    data = make(base)
    message = _refusal(tmp_path, data)
    assert _matches(message, expected.replace("{n}", f"{len(data):,}")), message


# --- files at the edges of the checks, which must load ------------------------------------------
def test_one_input_one_unit_one_layer_a_big_seed_and_the_loss_settings(tmp_path):
    m = Sequential([Input((1,)), Dense(1, "linear")], seed=12345, name="tiny")
    m.compile(optimizer=optimizers.SGD(0.1), loss=losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1))
    m.fit(np.linspace(-1, 1, 8)[:, None], (np.arange(8) > 3).astype(float), epochs=1, batch_size=4, verbose=0)
    loaded = _load(tmp_path, _bytes(m, tmp_path))
    assert loaded.seed == 12345 and loaded.input_dim == 1 and len(loaded.layers) == 1
    assert loaded.loss.get_config() == m.loss.get_config()  # from_logits and label_smoothing kept
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_three_layers_with_arrays_of_over_512_values(tmp_path):
    m = Sequential([Input((40,)), Dense(30, "relu"), Dense(8, "tanh"), Dense(3, "softmax")], seed=1)
    m.compile(optimizer=optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    rng = np.random.default_rng(1)
    m.fit(rng.normal(size=(16, 40)), np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    loaded = _load(tmp_path, _bytes(m, tmp_path))
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.optimizer.get_state()["momentum"], m.optimizer.get_state()["momentum"])


def _padded_json(config: dict) -> bytes:
    text = json.dumps(config).encode()
    return text[:-1] + b" " * (MAX_CONFIG_BYTES - len(text)) + b"}"


LOADS = {
    "zero velocity": (lambda data: _replace(data, "optimizer/velocity.npy", _npy(np.zeros(43, np.float32))),
                      lambda m: not m.optimizer.get_state()["velocity"].any()),
    "iterations 0": (lambda data: _replace(data, "optimizer/iterations.npy", _npy(np.array(0))),
                     lambda m: m.optimizer.iterations == 0),
    "iterations 1000": (lambda data: _replace(data, "optimizer/iterations.npy", _npy(np.array(1000))),
                        lambda m: m.optimizer.iterations == 1000),
    "iterations 2**62 - 1": (lambda data: _replace(data, "optimizer/iterations.npy", _npy(np.array(2**62 - 1))),
                             lambda m: m.optimizer.iterations == 2**62 - 1),
    "npy version 2.0": (lambda data: _replace(data, "weights/0.npy", _npy(KERNEL, version=(2, 0))),
                        lambda m: (m.get_weights()[0] == KERNEL).all()),
    # 4,096 header bytes and the float64 data: exactly the size bound for a (4, 5) array
    "the largest member allowed": (lambda data: _replace(data, "weights/0.npy",
                                                         _padded_npy(KERNEL.astype(np.float64), 4096)),
                                   lambda m: (m.get_weights()[0] == KERNEL).all()),
    "deflate option flag": (_flags("weights/0.npy", 0x2), lambda m: m.count_params() == 43),
    "64 metrics": (_with_config(_set("compile", "metrics", ["accuracy"] * 64)),
                   lambda m: m.metric_names == ["accuracy"] * 64),
    # config.json of exactly MAX_CONFIG_BYTES: white space before its closing brace
    "the largest config.json": (lambda data: _replace(data, "config.json", _padded_json(_config(data))),
                                lambda m: m.count_params() == 43),
}


@pytest.mark.parametrize("case", list(LOADS))
def test_a_file_at_the_edge_of_a_check_loads(tmp_path, base, case):
    make, check = LOADS[case]
    assert check(_load(tmp_path, make(base)))


def _bare_config(base: bytes) -> dict:
    config = _config(base)
    del config["compile"], config["optimizer_state"]
    return config


def _layer(name: str, units: int, use_bias: bool = True) -> dict:
    return {"class_name": "Dense",
            "config": {"units": units, "activation": "linear", "use_bias": use_bias, "kernel_initializer": "zeros",
                       "bias_initializer": "zeros", "kernel_regularizer": None, "name": name, "trainable": True}}


def test_the_size_bounds_themselves(base):
    # The checks only count: nothing of these sizes is allocated.
    config = _bare_config(base)
    config["model"]["layers"] = [_layer(f"l{i}", 1) for i in range(MAX_LAYERS)]
    assert len(_check_config(config).shapes) == 2 * MAX_LAYERS
    config["model"]["layers"].append(_layer("one more", 1))
    with pytest.raises(ModelFileError, match=r"^model\.layers must be a list of 1 to 4096 layer configs, got \["):
        _check_config(config)
    config["model"]["input_shape"] = [2**7]
    config["model"]["layers"] = [_layer("wide", 2**24, use_bias=False)]  # 2^7 · 2^24 = 2^31 parameters
    assert _check_config(config).shapes == [((2**7, 2**24), "f")] and MAX_PARAMS == 2**31
    config["model"]["layers"] = [_layer("wide", 2**24)]
    with pytest.raises(ModelFileError, match=r"^the model declares 2,164,260,864 parameters; at most "
                                             r"2,147,483,648 are loaded$"):
        _check_config(config)
    config["model"]["input_shape"] = [2**4] * 6  # 2^24 numbers in a sample: the most allowed
    config["model"]["layers"] = [{"class_name": "Flatten", "config": {"name": "f", "trainable": True,
                                                                      "data_format": None}}, _layer("l", 2)]
    assert _check_config(config).shapes == [((2**24, 2), "f"), ((2,), "f")]
    config["model"]["input_shape"] = [2**4] * 5 + [2**4 + 1]
    with pytest.raises(ModelFileError, match=r"^model\.input_shape must be a list of 1 to 8 sizes >= 1 with at most "
                                             r"16,777,216 numbers in all, got \[16, 16, 16, 16, 16, 17\]$"):
        _check_config(config)
    config["model"]["input_shape"] = [1] * 9
    with pytest.raises(ModelFileError, match=r"^model\.input_shape must be a list of 1 to 8 sizes"):
        _check_config(config)
    config["model"]["input_shape"] = [2]
    config["model"]["layers"] = [_layer("l", 2)]
    config["model"]["seed"] = 2**4096 - 1
    assert _check_config(config).model["seed"] == 2**4096 - 1
