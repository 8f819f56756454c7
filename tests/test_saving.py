"""Model files: exact round trips; damaged and hostile files refused with ModelFileError (a fuzz of
truncated, bit-flipped and rebuilt files, and named attacks refused before any large allocation);
atomic saves that survive SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import time
import traceback
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zipfiles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logitnet import Sequential, optimizers, regularizers
from logitnet.layers import Dense, Input
from logitnet.models import load_model
from logitnet.saving import MAX_PARAMS, MAX_UNITS, ModelFileError, save_model

FUZZ = settings(deadline=None, max_examples=150, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- helpers ----------------------------------------------------------------------------------
def _data(n_features=4, n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)), np.arange(n) % 3


def _model(dtype="float32", use_bias=True, compiled=True, optimizer=None, fit=True, seed=0):
    m = Sequential([Input((4,)), Dense(5, "relu", use_bias=use_bias, kernel_regularizer=regularizers.l2(1e-3)),
                    Dense(3, "softmax", use_bias=use_bias)], seed=seed, dtype=dtype, name="small")
    if compiled:
        m.compile(optimizer=optimizer or optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        if fit:
            m.fit(*_data(), epochs=2, batch_size=8, verbose=0)
    m.metadata = {"class_names": ["a", "b", "c"], "nested": {"x": [1, 2.5, None, True]}, "note": "é"}
    return m


def _file(tmp_path, model=None, **kw) -> bytes:
    path = tmp_path / "m.logitnet"
    save_model(model or _model(), path, **kw)
    return path.read_bytes()


_members, _zip, _replace = zipfiles.members, zipfiles.make_zip, zipfiles.replace


def _with_config(data: bytes, change) -> bytes:
    config = json.loads(dict(_members(data))["config.json"])
    change(config)
    return _replace(data, "config.json", json.dumps(config).encode())


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npy_raw(header: str, payload: bytes = b"") -> bytes:
    """A version 1.0 .npy with any header text."""
    text = header.encode("latin1", "replace") + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _declare_size(data: bytes, name: str, size: int) -> bytes:
    """Patch the uncompressed size the zip declares for `name` (central directory and local header)."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    out[info.header_offset + 22:info.header_offset + 26] = struct.pack("<I", size)
    cd = data.index(b"PK\x01\x02")  # the first central directory entry
    while True:
        n_len = struct.unpack("<H", data[cd + 28:cd + 30])[0]
        if data[cd + 46:cd + 46 + n_len] == name.encode():
            out[cd + 24:cd + 28] = struct.pack("<I", size)
            return bytes(out)
        cd = data.index(b"PK\x01\x02", cd + 4)


COUNT = {"loaded": 0, "refused": 0}


def _outcome(path, data: bytes) -> str:
    """Load `data`: either a usable model or a ModelFileError; anything else fails the test."""
    path.write_bytes(data)
    try:
        model = load_model(path)
    except ModelFileError as err:
        # Every refusal comes from a check; a loader that failed by itself is a bug, shown with its cause.
        assert not err.unexpected, "".join(traceback.format_exception(err.__cause__))
        assert str(err)
        COUNT["refused"] += 1
        return "refused"
    COUNT["loaded"] += 1
    x = np.linspace(-1, 1, 3 * model.input_dim).reshape(3, model.input_dim)
    with np.errstate(all="ignore"):
        out = model.predict(x, verbose=0)
    assert out.shape == (3, model.layers[-1].units) and out.dtype == model.dtype
    if max(np.abs(w).max() for w in model.weights) < 1e3:
        assert np.isfinite(out).all()
    if model.optimizer is not None:
        state = model.optimizer.get_state()
        assert all(v.shape == (model.count_params(),) for k, v in state.items() if k != "iterations")
    return "loaded"


def _refused(path, data: bytes, match: str) -> ModelFileError:
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    return info.value


# --- round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("compiled", [True, False])
def test_round_trip_is_exact(tmp_path, dtype, use_bias, compiled):
    m = _model(dtype, use_bias, compiled)
    path = tmp_path / "m.logitnet"
    save_model(m, path)
    loaded = load_model(path)
    x, y = _data()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    for a, b in zip(m.get_weights(), loaded.get_weights(), strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    assert loaded.get_config() == m.get_config() and loaded.metadata == m.metadata
    assert loaded.layers[0].kernel_regularizer.get_config() == {"l1": 0.0, "l2": 1e-3}
    if not compiled:
        assert loaded.optimizer is None and loaded.loss is None
        return
    assert loaded.optimizer.get_config() == m.optimizer.get_config()
    assert loaded.loss.get_config() == m.loss.get_config() and loaded.metric_names == ["accuracy"]
    for key, value in m.optimizer.get_state().items():
        np.testing.assert_array_equal(loaded.optimizer.get_state()[key], value)
    m.fit(x, y, epochs=1, shuffle=False, verbose=0)  # training continues identically
    loaded.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", [optimizers.SGD(0.1), optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                                       optimizers.RMSprop(momentum=0.5, centered=True),
                                       optimizers.Adam(amsgrad=True)], ids=repr)
def test_optimizer_state_round_trips(tmp_path, optimizer):
    m = _model(optimizer=optimizer)
    save_model(m, tmp_path / "m.logitnet")
    loaded = load_model(tmp_path / "m.logitnet")
    assert loaded.optimizer.iterations == m.optimizer.iterations == 6
    assert sorted(loaded.optimizer.get_state()) == sorted(m.optimizer.get_state())
    for key, value in m.optimizer.get_state().items():
        np.testing.assert_array_equal(loaded.optimizer.get_state()[key], value)


def test_options_and_same_bytes(tmp_path):
    m = _model()
    first = _file(tmp_path, m)
    assert _file(tmp_path, m) == first  # same model, same bytes
    if hasattr(os, "fchmod"):
        assert (tmp_path / "m.logitnet").stat().st_mode & 0o777 == 0o644
    without = _file(tmp_path, m, include_optimizer=False)
    assert not any(n.startswith("optimizer/") for n, _ in _members(without))
    assert load_model(tmp_path / "m.logitnet").optimizer.iterations == 0
    assert load_model(tmp_path / "m.logitnet", compile=False).optimizer is None
    order = _members(first)  # member order does not matter
    (tmp_path / "m.logitnet").write_bytes(_zip(order[::-1]))
    np.testing.assert_array_equal(load_model(tmp_path / "m.logitnet").get_weights()[0], m.get_weights()[0])
    assert os.listdir(tmp_path) == ["m.logitnet"]  # no temporary files left


def test_arrays_in_other_float_layouts_load(tmp_path):
    m = _model("float64")
    data = _file(tmp_path, m)
    kernel = m.get_weights()[0]
    for variant in (kernel.astype(">f8"), np.asfortranarray(kernel), kernel.astype(np.float16)):
        (tmp_path / "m.logitnet").write_bytes(_replace(data, "weights/0.npy", _npy(variant)))
        loaded = load_model(tmp_path / "m.logitnet")
        assert loaded.dtype == np.float64
        np.testing.assert_array_equal(loaded.get_weights()[0], variant.astype(np.float64))


def test_save_refuses_what_would_not_load(tmp_path):
    path = tmp_path / "m.logitnet"
    good = _file(tmp_path)
    m = _model()
    m.layers[0].kernel[0, 0] = np.nan
    with pytest.raises(ValueError, match="weights/0 holds non-finite"):
        save_model(m, path)
    m = _model()
    m.metadata = {"value": np.float32(1)}
    with pytest.raises(ValueError, match="JSON"):
        save_model(m, path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.logitnet"]  # old file intact, no temp


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    from logitnet import saving

    good, real, calls = _file(tmp_path), saving.npy.write_array, []

    def write_array(fp, array, **kw):  # the third array hits a full disk
        calls.append(array.shape)
        if len(calls) == 3:
            raise OSError("disk full")
        real(fp, array, **kw)

    monkeypatch.setattr(saving.npy, "write_array", write_array)
    with pytest.raises(OSError, match="disk full"):
        save_model(_model(seed=5), tmp_path / "m.logitnet")
    assert (tmp_path / "m.logitnet").read_bytes() == good and os.listdir(tmp_path) == ["m.logitnet"]


# --- named hostile and damaged files ----------------------------------------------------------
def _set(path: list, value):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _drop(path: list):
    def change(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


CONFIG_CASES = {
    "version 99": (_set(["version"], 99), "format version 99 by a newer logitnet"),
    "version as text": (_set(["version"], "1"), "unknown format version '1'"),
    "version true": (_set(["version"], True), "unknown format version True"),
    "version 0": (_set(["version"], 0), "unknown format version 0"),
    "version 1 with a version-2 model": (_set(["version"], 1),
                                         r"model must have the keys \['name', 'dtype', 'seed', 'input_dim', 'layers'\]"),
    "other format": (_set(["format"], "keras"), "format 'keras'"),
    "unknown top key": (_set(["extra"], 1), "only"),
    "no metadata": (_drop(["metadata"]), "metadata"),
    "metadata a list": (_set(["metadata"], [1]), "metadata must be a JSON object"),
    "model a list": (_set(["model"], []), "model must be a JSON object"),
    "name not text": (_set(["model", "name"], 3), "model.name"),
    "dtype int64": (_set(["model", "dtype"], "int64"), "model.dtype"),
    "dtype a list": (_set(["model", "dtype"], ["float32"]), "model.dtype"),
    "seed negative": (_set(["model", "seed"], -1), "model.seed"),
    "seed a float": (_set(["model", "seed"], 1.5), "model.seed"),
    "input_shape [0]": (_set(["model", "input_shape"], [0]), r"model\.input_shape must be a list"),
    "input_shape an int": (_set(["model", "input_shape"], 4), r"model\.input_shape must be a list"),
    "input_shape empty": (_set(["model", "input_shape"], []), r"model\.input_shape must be a list"),
    "input_dim (version 1's key)": (_set(["model", "input_dim"], 4), r"unknown keys \[\"'input_dim'\"\]"),
    "no layers": (_set(["model", "layers"], []), "model.layers"),
    "layer a string": (_set(["model", "layers", 0], "dense"), r"model.layers\[0\] must be a JSON object"),
    "layer in version 1's form": (_set(["model", "layers", 0], {"units": 5, "name": "dense"}),
                                  r"model\.layers\[0\] must have the keys \['class_name', 'config'\]"),
    "layer config a list": (_set(["model", "layers", 0, "config"], []),
                            r"model\.layers\[0\]\.config must be a JSON object"),
    "unknown layer class": (_set(["model", "layers", 0, "class_name"], "Conv2D"),
                            r"model\.layers\[0\]\.class_name must be one of .*got 'Conv2D'"),
    "10**12 units": (_set(["model", "layers", 0, "config", "units"], 10**12),
                     r"layers\[0\]\.config\.units must be an integer in"),
    "units 0": (_set(["model", "layers", 0, "config", "units"], 0), r"config\.units must be an integer in"),
    "units 5.0": (_set(["model", "layers", 0, "config", "units"], 5.0), r"config\.units must be an integer in"),
    "units true": (_set(["model", "layers", 0, "config", "units"], True), r"config\.units must be an integer in"),
    "unknown activation": (_set(["model", "layers", 0, "config", "activation"], "selu"),
                           r"config\.activation must be one of .*got 'selu'"),
    "activation a list": (_set(["model", "layers", 0, "config", "activation"], ["relu"]),
                          r"config\.activation must be one of"),
    "unknown initializer": (_set(["model", "layers", 1, "config", "kernel_initializer"], "orthogonal"),
                            r"layers\[1\]\.config\.kernel_initializer must be one of"),
    "use_bias 1": (_set(["model", "layers", 0, "config", "use_bias"], 1), r"config\.use_bias must be true or false"),
    "negative l2": (_set(["model", "layers", 0, "config", "kernel_regularizer", "l2"], -1),
                    r"config\.kernel_regularizer must be null or \{l1, l2\} with finite numbers >= 0"),
    "infinite l1": (_set(["model", "layers", 0, "config", "kernel_regularizer", "l1"], float("inf")),
                    r"config\.kernel_regularizer must be null or \{l1, l2\} with finite numbers >= 0"),
    "huge integer l1": (_set(["model", "layers", 0, "config", "kernel_regularizer", "l1"], 10**400),
                        r"config\.kernel_regularizer must be null or \{l1, l2\} with finite numbers >= 0"),
    "regularizer extra key": (_set(["model", "layers", 0, "config", "kernel_regularizer", "l3"], 0),
                              r"config\.kernel_regularizer must be null or \{l1, l2\}"),
    "trainable 1": (_set(["model", "layers", 0, "config", "trainable"], 1), r"config\.trainable must be true or false"),
    "unknown layer key": (_set(["model", "layers", 0, "config", "evil"], True), r"config must have .*unknown keys"),
    "unknown layer entry key": (_set(["model", "layers", 0, "module"], "keras"), "unknown keys"),
    "missing layer key": (_drop(["model", "layers", 0, "config", "use_bias"]), r"lacks \['use_bias'\]"),
    "missing trainable": (_drop(["model", "layers", 0, "config", "trainable"]), r"lacks \['trainable'\]"),
    "same layer names": (_set(["model", "layers", 1, "config", "name"], "dense"), r"layers\[1\]\.config\.name .*unique"),
    "unknown loss": (_set(["compile", "loss", "class_name"], "Hinge"), "not a logitnet loss"),
    "loss for another head": (_set(["compile", "loss"], {"class_name": "BinaryCrossentropy", "config": {}}),
                              "BinaryCrossentropy does not fit the last layer"),
    "loss config key": (_set(["compile", "loss", "config", "evil"], 1), "unknown key"),
    "label smoothing text": (_set(["compile", "loss", "config", "from_logits"], "yes"), "from_logits"),
    "unknown optimizer": (_set(["compile", "optimizer", "class_name"], "Lion"), "not a valid optimizer"),
    "learning rate 0": (_set(["compile", "optimizer", "config", "learning_rate"], 0), "learning_rate"),
    "learning rate 10**400": (_set(["compile", "optimizer", "config", "learning_rate"], 10**400), "optimizer"),
    "optimizer config key": (_set(["compile", "optimizer", "config", "os.system"], "x"), "optimizer"),
    "optimizer a string": (_set(["compile", "optimizer"], "adam"), "compile.optimizer must be"),
    "unknown metric": (_set(["compile", "metrics"], ["accuracy", "mystery"]), "unknown metric 'mystery'"),
    "metrics a string": (_set(["compile", "metrics"], "accuracy"), "compile.metrics"),
    "state names": (_set(["optimizer_state"], ["iterations", "momentum"]), "optimizer_state must list"),
    "state without compile": (_drop(["compile"]), "no compile section"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_is_refused(tmp_path, case):
    change, match = CONFIG_CASES[case]
    _refused(tmp_path / "m.logitnet", _with_config(_file(tmp_path), change), match)


def test_sizes_are_bounded_before_anything_is_allocated(tmp_path):
    data, path = _file(tmp_path), tmp_path / "m.logitnet"
    wide = _set(["model", "layers", 0, "config", "units"], MAX_UNITS)
    def two_wide(config):
        wide(config)
        config["model"]["input_shape"] = [MAX_UNITS]
    huge_header = _npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", b"\0" * 64)
    bomb = _zip([(n, b"\0" * 20_000_000 if n == "weights/0.npy" else c) for n, c in _members(data)])
    cases = [
        (_with_config(data, _set(["model", "layers", 0, "config", "units"], 10**12)), "units must be an integer"),
        (_with_config(data, _set(["model", "input_shape"], [2**12, 2**12, 2])), "model.input_shape must be a list"),
        (_with_config(data, two_wide), f"at most {MAX_PARAMS:,} are loaded"),
        (_replace(data, "weights/0.npy", huge_header), r"shape \(1000000, 1000000\); the model needs \(4, 5\)"),
        (_declare_size(data, "weights/0.npy", 2**32 - 2), "weights/0.npy claims 4,294,967,294 bytes"),
        (_declare_size(data, "config.json", 2**32 - 2), "config.json claims 4,294,967,294 bytes"),
        (bomb, "weights/0.npy claims 20,000,000 bytes"),
    ]
    for bad, match in cases:
        path.write_bytes(bad)
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError, match=match):
                load_model(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**20, (match, peak)


class _Payload:
    """Unpickling this would create a folder: proof that something ran."""

    marker = ""

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_refusal_names_its_check_and_a_loader_bug_is_marked_with_its_cause(tmp_path, monkeypatch):
    from logitnet import saving

    data, path = _file(tmp_path), tmp_path / "m.logitnet"
    refused = _refused(path, data[:-30], "not a zip archive")  # truncated: a check refuses it
    assert not refused.unexpected
    refused = _refused(path, _replace(data, "config.json", b'{"format": "logitnet-model", "version": 1'),
                       "not valid UTF-8 JSON")
    assert not refused.unexpected and type(refused.__cause__).__name__ == "JSONDecodeError"
    path.write_bytes(data)

    def broken(*args):  # an error no check anticipates: a bug in the loader, not a bad file
        raise KeyError("layers")

    monkeypatch.setattr(saving, "_check_layers", broken)
    with pytest.raises(ModelFileError, match="bug in logitnet") as info:
        load_model(path)
    assert info.value.unexpected and isinstance(info.value.__cause__, KeyError)
    monkeypatch.undo()
    assert load_model(path).count_params() == _model().count_params()


@pytest.mark.parametrize("flags, match", [(0x20, "zip flags"), (0x40, "zip flags")])
def test_zip_features_the_loader_does_not_read_are_refused_by_name(tmp_path, flags, match):
    data = bytearray(_file(tmp_path))
    cd = data.index(b"PK\x01\x02")  # the first central directory entry's general-purpose flags
    data[cd + 8:cd + 10] = struct.pack("<H", struct.unpack("<H", data[cd + 8:cd + 10])[0] | flags)
    assert not _refused(tmp_path / "m.logitnet", bytes(data), match).unexpected


def test_a_member_said_to_lie_outside_the_file_is_refused(tmp_path):
    data = bytearray(_file(tmp_path))
    cd = data.index(b"PK\x01\x02")  # its local header offset, pointed past the end
    data[cd + 42:cd + 46] = struct.pack("<I", len(data) + 1000)
    assert not _refused(tmp_path / "m.logitnet", bytes(data), "lies outside the file").unexpected


def test_bad_members_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, path = _file(tmp_path), tmp_path / "m.logitnet"
    kernel = _model().get_weights()[0]
    _Payload.marker = str(tmp_path / "executed")
    evil = np.empty(kernel.shape, dtype=object)
    evil[...] = _Payload()
    members = _members(data)
    cases = [
        (b"", "not a zip archive"), (b"hello", "not a zip archive"),
        (_replace(data, "config.json", None), "no config.json"),
        (_replace(data, "config.json", b"[1, 2]"), "config.json must be a JSON object"),
        (_replace(data, "config.json", b'{"format": "logitnet-model", "format": 1}'), "repeats the key"),
        (_replace(data, "config.json", b"{not json"), "not valid UTF-8 JSON"),
        (_replace(data, "config.json", b"\xff\xfe{}"), "not valid UTF-8 JSON"),
        (_replace(data, "config.json", b"[" * 100_000 + b"]" * 100_000), "not valid UTF-8 JSON"),
        (_replace(data, "config.json", b'{"units": ' + b"9" * 5000 + b"}"), "not valid UTF-8 JSON"),
        (_replace(data, "weights/1.npy", None), r"lacks \['weights/1.npy'\]"),
        (_replace(data, "optimizer/momentum.npy", None), "lacks"),
        (_zip(members + [("../../evil.npy", _npy(kernel))]), "unexpected"),
        (_zip(members + [members[1]]), "more than once"),
        (_zip([members[0]] + members), "more than once"),
        (_zip(members, zipfile.ZIP_BZIP2), "compression method 12"),
        (_replace(data, "weights/0.npy", _npy(kernel.T)), r"shape \(5, 4\); the model needs \(4, 5\)"),
        (_replace(data, "weights/0.npy", _npy(kernel.astype(np.int64))), "dtype int64"),
        (_replace(data, "weights/0.npy", _npy(kernel.astype(np.complex64))), "dtype complex64"),
        (_replace(data, "weights/0.npy", _npy(evil)), "dtype object"),
        (_replace(data, "weights/0.npy", _npy(np.where(kernel > 0, np.nan, kernel))), "holds nan"),
        (_replace(data, "weights/1.npy", _npy(np.full(5, np.inf, np.float32))), "holds inf"),
        (_replace(data, "weights/0.npy", _npy(np.full((4, 5), 1e300))), "too large for float32"),
        (_replace(data, "weights/0.npy", _npy(kernel) + b"extra"), f"holds {len(_npy(kernel)) + 5} bytes"),
        (_replace(data, "weights/0.npy", _npy(kernel)[:-3]), "holds"),
        (_replace(data, "weights/0.npy", _npy(kernel)[:20]), "not a readable .npy"),
        (_replace(data, "weights/0.npy", b"PK\x03\x04garbage"), "not a readable .npy"),
        (_replace(data, "weights/0.npy", _npy_raw("{'descr': '<f4', 'fortran_order': False, "
                                                  "'shape': " + "(" * 3000 + ")" * 3000 + "}")), "npy"),
        (_replace(data, "weights/0.npy", _npy_raw("__import__('os').mkdir('x')")), "not a readable .npy"),
        (_replace(data, "optimizer/iterations.npy", _npy(np.array(-1))), "iteration count >= 0"),
        (_replace(data, "optimizer/iterations.npy", _npy(np.array(2**63, dtype=np.uint64))), "iteration count"),
        (_replace(data, "optimizer/iterations.npy", _npy(np.array(1.0))), "an integer"),
        (_replace(data, "optimizer/velocity.npy", _npy(-np.ones(43, np.float32))), "negative"),
        (_replace(data, "optimizer/momentum.npy", _npy(np.ones(42, np.float32))), r"shape \(42,\)"),
    ]
    if np.dtype(np.longdouble).itemsize > 8:
        cases.append((_replace(data, "weights/0.npy", _npy(kernel.astype(np.longdouble))), "dtype float128"))
    for bad, match in cases:
        _refused(path, bad, match)
    assert not os.path.exists(_Payload.marker) and not os.path.exists("x")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")


# --- fuzz -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> bytes:
    return _file(tmp_path_factory.mktemp("fuzz"))


def test_fuzz_truncation_bit_flips_and_rebuilt_members(tmp_path, small_file):
    data, path, rng = small_file, tmp_path / "m.logitnet", np.random.default_rng(0)
    before = dict(COUNT)
    for length in range(len(data)):  # truncated at every length: never a model
        assert _outcome(path, data[:length]) == "refused"
    for _ in range(800):  # raw bit flips: CRCs and the zip structure catch most
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), rng.integers(1, 4)):
            flipped[pos] ^= 1 << int(rng.integers(8))
        _outcome(path, bytes(flipped))
    members = _members(data)
    for _ in range(1200):  # flips inside a member, zipped again with valid CRCs: the parsers' turn
        i = int(rng.integers(len(members)))
        name, content = members[i]
        changed = bytearray(content)
        for pos in rng.integers(0, len(content), rng.integers(1, 3)):
            changed[pos] ^= 1 << int(rng.integers(8))
        _outcome(path, _zip(members[:i] + [(name, bytes(changed))] + members[i + 1:]))
    for _ in range(200):  # members shuffled, duplicated, dropped, renamed or swapped
        mixed = [members[j] for j in rng.permutation(len(members))]
        op = rng.integers(4)
        j, k = rng.integers(len(mixed), size=2)
        if op == 0:
            mixed.append(mixed[j])
        elif op == 1:
            del mixed[j]
        elif op == 2:
            mixed[j] = (mixed[k][0], mixed[j][1])
        else:
            mixed[j], mixed[k] = (mixed[j][0], mixed[k][1]), (mixed[k][0], mixed[j][1])
        result = _outcome(path, _zip(mixed))
        if op in (0, 1) or (op == 2 and j != k):
            assert result == "refused"
    cases = sum(COUNT.values()) - sum(before.values())
    assert cases >= 4500


_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
            | st.sampled_from([0, 1, -1, 3, 4, 5, 10**12, MAX_UNITS + 1, 2**63, 1e400, "relu", "softmax",
                               "float64", "zeros", "Adam", "iterations", "momentum", "dense"]))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, prefix + (key,))


@FUZZ
@given(data=st.data())
def test_fuzz_config_values(tmp_path, small_file, data):
    config = json.loads(dict(_members(small_file))["config.json"])
    where = data.draw(st.sampled_from(list(_paths(config))[1:]))
    node = config
    for key in where[:-1]:
        node = node[key]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        node[where[-1]] = data.draw(_json)
    elif action == "delete":
        del node[where[-1]]
    elif isinstance(node, dict):
        node[data.draw(st.text(max_size=8))] = data.draw(_json)
    else:
        node.insert(where[-1], data.draw(_json))
    _outcome(tmp_path / "m.logitnet", _replace(small_file, "config.json", json.dumps(config).encode()))


@FUZZ
@given(data=st.data())
def test_fuzz_npy_headers_and_values(tmp_path, small_file, data):
    names = [n for n, _ in _members(small_file) if n.endswith(".npy")]
    name = data.draw(st.sampled_from(names))
    shape = data.draw(st.sampled_from([(4, 5), (5,), (5, 3), (3,), (43,), ()])
                      | st.lists(st.integers(0, 2**62), max_size=3).map(tuple))
    descr = data.draw(st.sampled_from(["<f4", "<f8", "<f2", ">f8", "<i8", "<u8", "|b1", "|O", "<c8", "<U3",
                                       "|V8", "<f16", "[('a', '<f4')]", "'<f4'", "object"]))
    fortran = data.draw(st.sampled_from(["False", "True", "1", "None"]))
    header = data.draw(st.sampled_from([f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}",
                                        f"{{'descr': {descr}, 'shape': {shape}}}"]) | st.text(max_size=40))
    n_bytes = data.draw(st.sampled_from([0, 8, 20, 80, 152, 304]) | st.integers(0, 400))
    values = data.draw(st.sampled_from(["zeros", "random", "nan", "big"]))
    payload = {"zeros": np.zeros(n_bytes // 8), "random": np.random.default_rng(n_bytes).normal(size=n_bytes // 8),
               "nan": np.full(n_bytes // 8, np.nan), "big": np.full(n_bytes // 8, 1e300)}[values].tobytes()
    content = _npy_raw(header, payload + b"\0" * (n_bytes % 8))
    _outcome(tmp_path / "m.logitnet", _replace(small_file, name, content))


@FUZZ
@given(data=st.data())
def test_fuzz_well_formed_arrays(tmp_path, small_file, data):
    """Proper .npy files of any float values: refused exactly when the values are not usable."""
    names = [n for n, _ in _members(small_file) if n.startswith("weights/")]
    name = data.draw(st.sampled_from(names))
    shape = np.load(io.BytesIO(dict(_members(small_file))[name])).shape
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    values = data.draw(st.lists(st.floats(width=16 * (2 ** [np.float16, np.float32, np.float64].index(dtype)))
                                | st.sampled_from([np.nan, np.inf, 1e300, -1e38]),
                                min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    with np.errstate(over="ignore"):
        arr = np.array(values, dtype=dtype).reshape(shape)
        usable = np.isfinite(arr).all() and np.isfinite(arr.astype(np.float32)).all()
    result = _outcome(tmp_path / "m.logitnet", _replace(small_file, name, _npy(arr)))
    assert result == ("loaded" if usable else "refused")


# --- atomic saves -----------------------------------------------------------------------------
def _size(path: Path) -> int:
    """The file's size, or -1 if it was renamed away meanwhile."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")
def test_save_survives_sigkill(tmp_path):
    """A process saving a large model again and again, killed at random moments (mostly mid-save):
    the file is absent (nothing saved yet) or a complete model, the old or the new one."""
    models = [Sequential([Input((1000,)), Dense(2000, "relu"), Dense(10, "softmax")], seed=s) for s in (1, 2)]
    for m in models:
        m.build()
    assert models[0].count_params() > 2_000_000
    path, rng = tmp_path / "big.logitnet", np.random.default_rng(0)
    save_model(models[0], tmp_path / "size.logitnet")
    full_size = (tmp_path / "size.logitnet").stat().st_size  # kills land when a temp file is part-written
    (tmp_path / "size.logitnet").unlink()
    existed = False
    for i in range(20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only saves
            pid = os.fork()
        if pid == 0:  # the child: save, alternating the two models, until killed
            try:
                for k in range(i, 10**6):
                    save_model(models[k % 2], path)
            finally:
                os._exit(1)
        old_temps = set(tmp_path.glob(".big.logitnet.*.tmp"))
        target = rng.uniform(0.0, 1.0) * full_size
        for _ in range(20_000):  # until a new temp file reaches the target size (or ~20 s pass)
            if any(_size(t) >= target for t in set(tmp_path.glob(".big.logitnet.*.tmp")) - old_temps):
                break
            time.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not path.exists():
            assert not existed, "the model file vanished"
            save_model(models[1], path)  # killed before its first save: start the next ones from a file
        existed = True
        loaded = load_model(path)
        match = [j for j, m in enumerate(models)
                 if all(np.array_equal(a, b) for a, b in zip(loaded.weights, m.weights))]
        assert len(match) == 1  # one of the two models, whole
        others = [p.name for p in tmp_path.iterdir() if p != path]
        assert all(n.startswith(".big.logitnet.") and n.endswith(".tmp") for n in others), others
        assert len(others) <= 1  # each save removed the temp file the last killed one left
    save_model(models[0], path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing left behind


# --- temporary files left by killed saves --------------------------------------------------------
def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _paused_save(model, path):
    """Fork a child that saves `model` to `path` and stops mid-write (after config.json);
    returns (pid, resume) where resume() lets it finish and returns its exit status."""
    from logitnet import saving

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only saves
        pid = os.fork()
    if pid == 0:
        try:
            real = saving._write_member

            def paused(zf, name, data):
                real(zf, name, data)
                if name == "config.json":
                    os.write(ready_w, b"1")
                    os.read(go_r, 1)

            saving._write_member = paused
            save_model(model, path)
        finally:
            os._exit(0)
    assert os.read(ready_r, 1) == b"1"

    def resume() -> int:
        os.write(go_w, b"1")
        return os.waitpid(pid, 0)[1]

    return pid, resume


def _temps(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


@pytest.mark.skipif(not hasattr(os, "fork") or os.name != "posix", reason="needs fork, SIGKILL and flock")
def test_a_killed_save_leaves_a_temp_that_the_next_save_removes_and_load_ignores(tmp_path):
    path, old, new = tmp_path / "m.logitnet", _model(seed=1), _model(seed=2)
    save_model(old, path)
    pid, _ = _paused_save(new, path)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    (stale,) = _temps(path)
    assert stale.startswith(f".m.logitnet.{pid}.") and (tmp_path / stale).stat().st_size > 0
    loaded = load_model(path)  # the stale temp is not the model: load reads the old file
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights, old.weights))
    save_model(new, path)
    assert _temps(path) == [] and sorted(os.listdir(tmp_path)) == ["m.logitnet"]
    loaded = load_model(path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights, new.weights))


@pytest.mark.skipif(not hasattr(os, "fork") or os.name != "posix", reason="needs fork and flock")
def test_a_temp_still_being_written_is_never_removed(tmp_path):
    path, first, second = tmp_path / "m.logitnet", _model(seed=1), _model(seed=2)
    _pid, resume = _paused_save(second, path)  # another process, mid-write
    (writing,) = _temps(path)
    save_model(first, path)  # must leave the other writer's file alone
    assert _temps(path) == [writing]
    assert load_model(path).get_weights()[0].tolist() == first.get_weights()[0].tolist()
    status = resume()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and _temps(path) == []
    loaded = load_model(path)  # the other writer completed its save
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights, second.weights))


@pytest.mark.skipif(not hasattr(os, "fork") or os.name != "posix", reason="needs fork and flock")
def test_only_unlocked_temps_of_gone_writers_of_this_file_are_removed(tmp_path):
    import fcntl

    path, dead = tmp_path / "m.logitnet", _dead_pid()
    stale = tmp_path / f".m.logitnet.{dead}.abcd_123.tmp"
    locked = tmp_path / f".m.logitnet.{dead}.locked00.tmp"  # writer gone, yet its lock is held
    alive = tmp_path / f".m.logitnet.{os.getppid()}.zzzzzzzz.tmp"  # a live process's
    other = [tmp_path / f".m.logitnet.2.{dead}.abcdefgh.tmp",  # the temp of a file named m.logitnet.2
             tmp_path / f".other.logitnet.{dead}.abcdefgh.tmp", tmp_path / f".m.logitnet.{dead}.short.tmp",
             tmp_path / f".m.logitnet.x{dead}.abcdefgh.tmp", tmp_path / "m.logitnet.bak"]
    for p in [stale, locked, alive, *other]:
        p.write_bytes(b"partial")
    link = tmp_path / f".m.logitnet.{dead}.linklink.tmp"
    link.symlink_to(tmp_path / "m.logitnet.bak")
    with open(locked, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        save_model(_model(), path)
        assert not stale.exists() and locked.exists()
    save_model(_model(), path)  # the lock is free now
    assert not locked.exists()
    assert alive.exists() and all(p.exists() for p in other) and link.is_symlink()
    assert (tmp_path / "m.logitnet.bak").read_bytes() == b"partial"
