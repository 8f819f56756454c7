"""One-file model saving without pickle: a zip of JSON (architecture, compile settings, metadata)
and .npy arrays (weights, optimizer state).

Nothing lost: a save writes only what the loader accepts (finite arrays, JSON metadata), to a
temporary file that replaces the target in one rename. Nothing executed: loading checks every
part of the file against the format before it builds anything, bounds every size before it
allocates, reads arrays with allow_pickle=False from memory, and refuses anything else with a
`ModelFileError` naming what is wrong.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import os
import reprlib
import tokenize
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy

from . import activations, initializers, losses, optimizers
from . import layers as layers_mod
from . import metrics as metrics_mod
from .atomic_file import atomic_write
from .head import Head

FORMAT = "logitnet-model"
VERSION = 2  # 2: layers as {"class_name", "config"} and input_shape; 1 (read too): Dense stacks
# Bounds checked before anything is allocated; far above any model this library trains.
MAX_UNITS = 2**24  # the widest layer (or input) a file may declare
MAX_PARAMS = 2**31  # the most parameters a file may declare
MAX_LAYERS = 4096
MAX_CONFIG_BYTES = 32 * 2**20  # config.json, metadata included
MAX_NPY_HEADER = 4096  # bytes; numpy writes 128 for these arrays
MAX_METRICS = 64

_V1_LAYER_KEYS = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                  "kernel_regularizer", "name")
_V1_MODEL_KEYS = ("name", "dtype", "seed", "input_dim", "layers")
_MODEL_KEYS = ("name", "dtype", "seed", "input_shape", "layers")
MAX_RANK = 8  # the most axes a sample may have
_TOP_KEYS = {"format", "version", "model", "metadata", "compile", "optimizer_state"}
_MODEL_DTYPES = ("float32", "float64")
_SLOTS_NONNEGATIVE = ("velocity", "velocity_hat")  # running means of g²
_LOSS_CHECKS = {  # key -> (test, what it must be)
    "name": (lambda v: isinstance(v, str), "a string"),
    "reduction": (lambda v: v in losses.REDUCTIONS, f"one of {losses.REDUCTIONS}"),
    "dtype": (lambda v: v is None or v in ("float16", "float32", "float64"), "float16/32/64 or null"),
    "from_logits": (lambda v: isinstance(v, bool), "true or false"),
    "label_smoothing": (lambda v: _is_real(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "axis": (lambda v: _is_int(v) and abs(v) <= 64, "an integer"),
    "ignore_class": (lambda v: v is None or _is_int(v), "an integer or null"),
    "delta": (lambda v: _is_real(v) and v > 0, "a finite number > 0"),
}
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class ModelFileError(ValueError):
    """A file that is not a logitnet model, or a damaged one.

    `unexpected` is True when no check refused the file but the loader itself failed (its
    `__cause__` is that error): a bug in logitnet, which the fuzz tests look for.
    """

    def __init__(self, message: str, *, unexpected: bool = False) -> None:
        super().__init__(message)
        self.unexpected = unexpected


# What a damaged zip member raises while it is read: a bad CRC or header, a broken deflate stream,
# an end that comes too soon.
_ZIP_STREAM_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)
_NPY_HEADER_ERRORS = (ValueError, SyntaxError, tokenize.TokenError, RecursionError)
# Zip flag bits a member may carry: 1-2 deflate options, 3 sizes after the data, 11 UTF-8 names.
_ZIP_FLAGS_ALLOWED = 0x2 | 0x4 | 0x8 | 0x800


# --- small checks -----------------------------------------------------------------------------
def _show(value: object) -> str:
    return _short.repr(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _int(value: object, where: str, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise ModelFileError(f"{where} must be an integer in [{low}, {high}], got {_show(value)}")
    return value


def _dict(value: object, where: str, keys: tuple[str, ...] | None = None) -> dict:
    """`value` as a dict; with `keys`, exactly those keys."""
    if not isinstance(value, dict):
        raise ModelFileError(f"{where} must be a JSON object, got {_show(value)}")
    if keys is not None and set(value) != set(keys):
        missing, extra = sorted(set(keys) - set(value)), sorted(set(value) - set(keys))
        raise ModelFileError(f"{where} must have the keys {list(keys)}"
                             + (f"; it lacks {missing}" if missing else "")
                             + (f"; unknown keys {[_show(k) for k in extra]}" if extra else ""))
    return value


@contextlib.contextmanager
def _refusing(what: str, expected: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Turn the errors `expected` of a damaged file inside (from zipfile, zlib, numpy's .npy
    parser, json, or logitnet's own validation of a config) into a ModelFileError naming `what`.
    Anything else is not caught here: `load_model` reports it as a bug in the loader."""
    try:
        yield
    except ModelFileError:
        raise
    except expected as err:
        text = str(err) if len(str(err)) <= 200 else str(err)[:200] + "..."
        raise ModelFileError(f"{what} ({type(err).__name__}: {text})") from err


# --- the configuration ------------------------------------------------------------------------
@dataclass
class _Plan:
    """What a checked config.json describes; nothing in it is large."""

    model: dict
    shapes: list[tuple[tuple[int, ...], str]]  # every weight array: shape, dtype kind ('f' or 'i')
    n_flat: int  # the trainable numbers (the optimizer's slots are this long)
    metadata: dict
    loss: losses.Loss | None = None
    optimizer: optimizers.Optimizer | None = None
    metrics: list[str] = field(default_factory=list)
    state_names: list[str] = field(default_factory=list)
    nonnegative: dict[int, str] = field(default_factory=dict)  # weight index -> what it is (no value < 0)
    counts: list[tuple[int, int]] = field(default_factory=list)  # per layer: trainable arrays, others


def _parse_json(raw: bytes, what: str = "config.json") -> Any:
    """The JSON in `raw` (what: where it comes from, for the messages), refusing repeated keys."""
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        keys = Counter(k for k, _ in pairs)
        if len(keys) != len(pairs):
            raise ModelFileError(f"{what} repeats the key {_show(keys.most_common(1)[0][0])}")
        return dict(pairs)

    # RecursionError: JSON nested deeper than Python's parser goes.
    # json's parser raises ValueError (JSONDecodeError, or an integer of over 4,300 digits).
    with _refusing(f"{what} is not valid UTF-8 JSON", (ValueError, RecursionError)):
        return json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)


def _finite(v: object, low: float = -math.inf) -> bool:
    return _is_real(v) and v >= low


def _nested_numbers(v: object, depth: int = 0) -> bool:
    if _is_real(v):
        return True
    return isinstance(v, list) and depth < MAX_RANK and all(_nested_numbers(e, depth + 1) for e in v)


def _is_axis(v: object) -> bool:
    return _is_int(v) and abs(v) <= MAX_RANK


_INITIALIZER = (lambda v: isinstance(v, str) and v in initializers.INITIALIZERS,
                f"one of {sorted(initializers.INITIALIZERS)}")
_ACTIVATION = (lambda v: isinstance(v, str) and v in activations.REGISTRY, f"one of {sorted(activations.REGISTRY)}")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
# Each layer class's config: key -> (test, what it must be). Exactly these keys, besides name and trainable.
_LAYER_CONFIGS: dict[str, dict[str, tuple]] = {
    "Dense": {
        "units": (lambda v: _is_int(v) and 1 <= v <= MAX_UNITS, f"an integer in [1, {MAX_UNITS}]"),
        "activation": _ACTIVATION, "use_bias": _BOOL,
        "kernel_initializer": _INITIALIZER, "bias_initializer": _INITIALIZER,
        "kernel_regularizer": (lambda v: v is None or (isinstance(v, dict) and set(v) == {"l1", "l2"}
                                                      and all(_finite(x, 0) for x in v.values())),
                               "null or {l1, l2} with finite numbers >= 0"),
    },
    "Activation": {"activation": _ACTIVATION},
    "ReLU": {"max_value": (lambda v: v is None or _finite(v, 0), "null or a finite number >= 0"),
             "negative_slope": (lambda v: _finite(v, 0), "a finite number >= 0"),
             "threshold": (lambda v: _finite(v, 0), "a finite number >= 0")},
    "LeakyReLU": {"negative_slope": (lambda v: _finite(v, 0), "a finite number >= 0")},
    "Softmax": {"axis": (_is_axis, "an integer axis")},
    "Dropout": {"rate": (lambda v: _finite(v, 0) and v < 1, "a number in [0, 1)"),
                "noise_shape": (lambda v: v is None or (isinstance(v, list) and len(v) <= MAX_RANK + 1 and all(
                    e is None or (_is_int(e) and 1 <= e <= MAX_UNITS) for e in v)), "null or a list of sizes"),
                "seed": (lambda v: v is None or (_is_int(v) and 0 <= v < 2**64), "null or an integer >= 0")},
    "Normalization": {"axis": (lambda v: isinstance(v, list) and len(v) <= MAX_RANK and all(map(_is_axis, v)),
                               "a list of integer axes"),
                      "invert": _BOOL,
                      "mean": (lambda v: v is None or _nested_numbers(v), "null or (nested lists of) finite numbers"),
                      "variance": (lambda v: v is None or _nested_numbers(v),
                                   "null or (nested lists of) finite numbers")},
    "Flatten": {"data_format": (lambda v: v in (None, "channels_last"), 'null or "channels_last"')},
}


def _check_layers(spec: list, in_shape: tuple[int, ...]) -> tuple[list[layers_mod.Layer], list[tuple[tuple[int, ...], str]]]:
    """The layers a config describes, given their shapes for `in_shape` (nothing is built), and
    the (shape, dtype kind) of every weight array in the order the file stores them."""
    built, weights, width, names = [], [], in_shape, set()
    for i, entry in enumerate(spec):
        where = f"model.layers[{i}]"
        entry = _dict(entry, where, ("class_name", "config"))
        cls_name = entry["class_name"]
        if not isinstance(cls_name, str) or cls_name not in _LAYER_CONFIGS:
            raise ModelFileError(f"{where}.class_name must be one of {sorted(_LAYER_CONFIGS)}, got {_show(cls_name)}")
        checks = _LAYER_CONFIGS[cls_name]
        cfg = _dict(entry["config"], f"{where}.config", (*checks, "name", "trainable"))
        for key, (test, wanted) in checks.items():
            if not test(cfg[key]):
                raise ModelFileError(f"{where}.config.{key} must be {wanted}, got {_show(cfg[key])}")
        if not isinstance(cfg["trainable"], bool):
            raise ModelFileError(f"{where}.config.trainable must be true or false, got {_show(cfg['trainable'])}")
        if not isinstance(cfg["name"], str) or not cfg["name"] or cfg["name"] in names:
            raise ModelFileError(f"{where}.config.name must be a non-empty string unique in the model, "
                                 f"got {_show(cfg['name'])}")
        names.add(cfg["name"])
        with _refusing(f"{where} ({cls_name}) does not fit inputs of shape {(None, *width)}", (ValueError, TypeError)):
            layer = layers_mod.LAYERS[cls_name].from_config(cfg)
            out = layer.check_input(width)  # allocates nothing
            if math.prod(out) > MAX_UNITS:
                raise ValueError(f"it outputs samples of {math.prod(out):,} numbers; at most {MAX_UNITS:,}")
        layer.in_shape, layer.out_shape = width, out  # shapes only: the layer is not built
        weights += [(shape, "f") for shape in layer.flat_shapes(width)] + layer.own_shapes(width)
        built.append(layer)
        width = out
    return built, weights


def _nonnegative_weights(built: list[layers_mod.Layer]) -> dict[int, str]:
    """The weight arrays (by index in the file) that must hold no negative value, as each layer
    declares them (an adapted Normalization's variance and sample count), and what each is."""
    out, i = {}, 0
    for k, layer in enumerate(built):
        i += len(layer.flat_shapes(layer.in_shape))
        for j, what in layer.nonnegative_weights().items():
            out[i + j] = f"the {what} of model.layers[{k}] ({type(layer).__name__})"
        i += len(layer.own_shapes(layer.in_shape))
    return out


def _check_compile(comp: object, output: tuple[str, dict, int | None], plan: _Plan) -> None:
    comp = _dict(comp, "compile", ("loss", "optimizer", "metrics"))
    loss_spec = _dict(comp["loss"], "compile.loss", ("class_name", "config"))
    name = loss_spec["class_name"]
    if not isinstance(name, str):
        raise ModelFileError(f"compile.loss.class_name must be a string, got {_show(name)}")
    with _refusing(f"compile.loss.class_name {_show(name)} is not a logitnet loss", (ValueError,)):
        cls = type(losses.get(name))
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    for key, value in _dict(loss_spec["config"], "compile.loss.config").items():
        if key not in allowed or key not in _LOSS_CHECKS:
            raise ModelFileError(f"compile.loss.config has the unknown key {_show(key)} for {cls.__name__}")
        test, wanted = _LOSS_CHECKS[key]
        if not test(value):
            raise ModelFileError(f"compile.loss.config.{key} must be {wanted}, got {_show(value)}")
    with _refusing(f"compile.loss {_show(loss_spec)} is not a valid loss", (ValueError,)):
        plan.loss = losses.get({"class_name": cls.__name__, "config": loss_spec["config"]})
    opt_spec = _dict(comp["optimizer"], "compile.optimizer", ("class_name", "config"))
    for key, value in _dict(opt_spec["config"], "compile.optimizer.config").items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ModelFileError(f"compile.optimizer.config.{key} must be a number, string, boolean or "
                                 f"null, got {_show(value)}")
    with _refusing(f"compile.optimizer {_show(opt_spec)} is not a valid optimizer", (ValueError,)):
        plan.optimizer = optimizers.get(opt_spec)
    with _refusing(f"compile.loss {cls.__name__} does not fit the last layer", (ValueError,)):
        head = Head(output[0], output[2], plan.loss, output[1])
    names = comp["metrics"]
    if not isinstance(names, list) or len(names) > MAX_METRICS or not all(isinstance(m, str) for m in names):
        raise ModelFileError(f"compile.metrics must be a list of at most {MAX_METRICS} metric names, "
                             f"got {_show(names)}")
    for m in names:
        with _refusing(f"compile.metrics has an unknown metric {_show(m)}", (ValueError,)):
            metrics_mod.get(m, head.task)
    plan.metrics = list(names)


def _upgrade_v1(config: dict) -> dict:
    """A version-1 config (Dense stacks, `input_dim`) in version 2's form."""
    spec = _dict(config.get("model"), "model", _V1_MODEL_KEYS)
    layers = spec["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise ModelFileError(f"model.layers must be a list of 1 to {MAX_LAYERS} layer configs, got {_show(layers)}")
    new_layers = [{"class_name": "Dense", "config": {**_dict(cfg, f"model.layers[{i}]", _V1_LAYER_KEYS), "trainable": True}}
                  for i, cfg in enumerate(layers)]
    model = {k: spec[k] for k in ("name", "dtype", "seed")}
    model.update(input_shape=[_int(spec["input_dim"], "model.input_dim", 1, MAX_UNITS)], layers=new_layers)
    return {**config, "version": VERSION, "model": model}


def _check_config(config: object) -> _Plan:
    """Check config.json's content against the format; nothing large is allocated."""
    config = _dict(config, "config.json")
    if config.get("format") != FORMAT:
        raise ModelFileError(f'config.json says format {_show(config.get("format"))}, not "{FORMAT}"')
    version = config.get("version")
    if _is_int(version) and version > VERSION:
        raise ModelFileError(f"it was written in format version {version} by a newer logitnet; this "
                             f"logitnet reads versions 1 to {VERSION}: upgrade logitnet to load it")
    if not _is_int(version) or version not in (1, VERSION):
        raise ModelFileError(f"config.json has the unknown format version {_show(version)}; expected 1 to {VERSION}")
    unknown = set(config) - _TOP_KEYS
    if unknown or "model" not in config or "metadata" not in config:
        raise ModelFileError(f"config.json must have the keys model and metadata, and only {sorted(_TOP_KEYS)}; "
                             f"got {sorted(_show(k) for k in config)}")
    if version == 1:
        config = _upgrade_v1(config)
    spec = _dict(config["model"], "model", _MODEL_KEYS)
    if not isinstance(spec["name"], str):
        raise ModelFileError(f"model.name must be a string, got {_show(spec['name'])}")
    if not isinstance(spec["dtype"], str) or spec["dtype"] not in _MODEL_DTYPES:
        raise ModelFileError(f"model.dtype must be one of {_MODEL_DTYPES}, got {_show(spec['dtype'])}")
    if spec["seed"] is not None and not (_is_int(spec["seed"]) and 0 <= spec["seed"] < 2**4096):
        raise ModelFileError(f"model.seed must be null or an integer >= 0, got {_show(spec['seed'])}")
    shape = spec["input_shape"]
    if not (isinstance(shape, list) and 1 <= len(shape) <= MAX_RANK
            and all(_is_int(d) and 1 <= d <= MAX_UNITS for d in shape) and math.prod(shape) <= MAX_UNITS):
        raise ModelFileError(f"model.input_shape must be a list of 1 to {MAX_RANK} sizes >= 1 with at most "
                             f"{MAX_UNITS:,} numbers in all, got {_show(shape)}")
    layers = spec["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise ModelFileError(f"model.layers must be a list of 1 to {MAX_LAYERS} layer configs, got {_show(layers)}")
    built, shapes = _check_layers(layers, tuple(shape))
    n_params = sum(math.prod(s) for s, _ in shapes)
    if n_params > MAX_PARAMS:
        raise ModelFileError(f"the model declares {n_params:,} parameters; at most {MAX_PARAMS:,} are loaded")
    n_flat = sum(math.prod(s) for layer in built for s in layer.flat_shapes(layer.in_shape))
    plan = _Plan(spec, shapes, n_flat, _dict(config["metadata"], "metadata"), nonnegative=_nonnegative_weights(built))
    plan.counts = [(len(layer.flat_shapes(layer.in_shape)), len(layer.own_shapes(layer.in_shape))) for layer in built]
    if "compile" in config:
        name, params, n_body = layers_mod.output_activation(built)
        logits = built[n_body - 1].out_shape if n_body else tuple(shape)
        if len(logits) != 1:
            raise ModelFileError(f"the network outputs samples of shape {logits}; a compiled model's must be (units,)")
        _check_compile(config["compile"], (name, params, logits[0]), plan)
    if "optimizer_state" in config:
        names = config["optimizer_state"]
        if plan.optimizer is None:
            raise ModelFileError("config.json has an optimizer_state but no compile section")
        expected = sorted(set(plan.optimizer.slot_names()) | {"iterations"})
        if not isinstance(names, list) or sorted(n for n in names if isinstance(n, str)) != expected \
                or len(names) != len(expected):
            raise ModelFileError(f"optimizer_state must list {expected} for this {type(plan.optimizer).__name__}, "
                                 f"got {_show(names)}")
        plan.state_names = expected
    return plan


# --- arrays -----------------------------------------------------------------------------------
def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple[int, ...], kinds: str) -> np.ndarray:
    """Member `info` as an array of exactly `shape` and of a dtype kind in `kinds` (itemsize <= 8);
    sizes are checked against `shape` before the data is read."""
    name, count = info.filename, math.prod(shape)
    limit = MAX_NPY_HEADER + 8 * count
    if info.file_size > limit:
        raise ModelFileError(f"{name} claims {info.file_size:,} bytes; an array of shape {shape} takes at most {limit:,}")
    with _refusing(f"{name} cannot be read", _ZIP_STREAM_ERRORS), zf.open(info) as fh:
        head = fh.read(min(info.file_size, MAX_NPY_HEADER))
        buf = io.BytesIO(head)
        # numpy's .npy header parser (a Python literal) raises these for a malformed header.
        with _refusing(f"{name} is not a readable .npy array: its header is malformed", _NPY_HEADER_ERRORS):
            version = npy.read_magic(buf)
            if version not in ((1, 0), (2, 0)):
                raise ModelFileError(f"{name} has .npy format version {version}; expected 1.0 or 2.0")
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            got_shape, _, dtype = read_header(buf, max_header_size=MAX_NPY_HEADER)
        if got_shape != shape:
            raise ModelFileError(f"{name} has shape {_show(got_shape)}; the model needs {shape}")
        if dtype.kind not in kinds or dtype.itemsize > 8 or dtype.hasobject or dtype.fields:
            raise ModelFileError(f"{name} has dtype {dtype}; expected "
                                 + ("float16, float32 or float64" if kinds == "f" else "an integer"))
        expected = buf.tell() + count * dtype.itemsize
        if info.file_size != expected:
            raise ModelFileError(f"{name} holds {info.file_size:,} bytes; its header implies {expected:,}")
        data = head + fh.read(expected - len(head))
        if len(data) != expected or fh.read(1):
            raise ModelFileError(f"{name} is truncated or too long")
        with _refusing(f"{name} is not a readable .npy array", (ValueError,)):
            arr = np.load(io.BytesIO(data), allow_pickle=False)
    if arr.shape != shape or arr.dtype != dtype:  # np.load read the same header; a second look costs nothing
        raise ModelFileError(f"{name} did not read back as shape {shape}, dtype {dtype}")
    if kinds == "f" and not np.isfinite(arr).all():
        raise ModelFileError(f"{name} holds {arr[~np.isfinite(arr)][0]}; every value must be finite")
    return arr


def _as_dtype(arr: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if not np.isfinite(out).all():
        raise ModelFileError(f"{name} holds values too large for {dtype}")
    return out


# --- the zip ----------------------------------------------------------------------------------
def _members(zf: zipfile.ZipFile, file_size: int) -> dict[str, zipfile.ZipInfo]:
    """The zip's members by name, each checked to be one this loader reads, lying inside the file."""
    infos = zf.infolist()
    counts = Counter(i.filename for i in infos)
    if len(counts) != len(infos):
        raise ModelFileError(f"the zip holds the member {_show(counts.most_common(1)[0][0])} more than once")
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{_show(info.filename)} is encrypted")
        if info.flag_bits & ~_ZIP_FLAGS_ALLOWED:
            raise ModelFileError(f"{_show(info.filename)} has the zip flags {info.flag_bits:#06x}; only "
                                 f"{_ZIP_FLAGS_ALLOWED:#06x} (deflate options, data descriptor, UTF-8 names) are read")
        if not 0 <= info.header_offset < file_size or info.compress_size > file_size:
            raise ModelFileError(f"{_show(info.filename)} lies outside the file (offset {info.header_offset:,}, "
                                 f"{info.compress_size:,} bytes, in a file of {file_size:,})")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(f"{_show(info.filename)} uses compression method {info.compress_type}; "
                                 "expected stored or deflated")
    return {i.filename: i for i in infos}


def _read_config(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> Any:
    info = members.get("config.json")
    if info is None:
        raise ModelFileError("the zip has no config.json")
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"config.json claims {info.file_size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read")
    with _refusing("config.json cannot be read", _ZIP_STREAM_ERRORS), zf.open(info) as fh:
        raw = fh.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"config.json is larger than {MAX_CONFIG_BYTES:,} bytes")
    return _parse_json(raw)


def _read_file(zf: zipfile.ZipFile, file_size: int) -> tuple[_Plan, list[np.ndarray], dict[str, np.ndarray]]:
    """Check the whole zip: the config, then exactly the arrays it implies, each bounded first."""
    members = _members(zf, file_size)
    plan = _check_config(_read_config(zf, members))
    weight_names = [f"weights/{i}.npy" for i in range(len(plan.shapes))]
    state_names = {k: f"optimizer/{k}.npy" for k in plan.state_names}
    expected = {"config.json", *weight_names, *state_names.values()}
    if set(members) != expected:
        missing, extra = sorted(expected - set(members)), sorted(set(members) - expected)
        raise ModelFileError("the zip's members do not match its config.json"
                             + (f"; it lacks {missing[:5]}" if missing else "")
                             + (f"; unexpected {[_show(e) for e in extra[:5]]}" if extra else ""))
    dtype = np.dtype(plan.model["dtype"])

    def weight(i: int, name: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
        arr = _read_array(zf, members[name], shape, "f" if kind == "f" else "iu")
        if i in plan.nonnegative and (arr < 0).any():
            raise ModelFileError(f"{name} holds negative values; it is {plan.nonnegative[i]}")
        if kind == "f":
            return _as_dtype(arr, dtype, name)
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ModelFileError(f"{name} holds values too large for int64")
        return arr.astype(np.int64)

    weights = [weight(i, n, s, kind) for i, (n, (s, kind)) in enumerate(zip(weight_names, plan.shapes))]
    state: dict[str, np.ndarray] = {}
    n_params = plan.n_flat
    for key, name in state_names.items():
        if key == "iterations":
            state[key] = _read_array(zf, members[name], (), "iu").astype(np.int64)
            if not 0 <= int(state[key]) < 2**62:
                raise ModelFileError(f"{name} must be an iteration count >= 0, got {int(state[key])}")
        else:
            state[key] = _as_dtype(_read_array(zf, members[name], (n_params,), "f"), dtype, name)
            if key in _SLOTS_NONNEGATIVE and (state[key] < 0).any():
                raise ModelFileError(f"{name} holds negative values; it is a running mean of squares")
    return plan, weights, state


@dataclass
class SavedModel:
    """What a checked model file holds: its plan (config), its weight arrays (Keras order) and
    its optimizer state. `models.load_model` builds the model from it."""

    plan: _Plan
    weights: list[np.ndarray]
    state: dict[str, np.ndarray]

    def layers(self) -> list[layers_mod.Layer]:
        """Fresh layers from the checked layer configs."""
        return [layers_mod.LAYERS[e["class_name"]].from_config(e["config"]) for e in self.plan.model["layers"]]


def load(filepath: str | os.PathLike, build: Callable[[SavedModel], Any]) -> Any:
    """Check the whole model file at `filepath`, then return `build(saved)`.

    Raises FileNotFoundError for a missing file (and the system's OSError for one it cannot open),
    and ModelFileError for anything that is not a complete, valid logitnet model file, or when
    `build` fails on a file the checks passed (then marked unexpected: a bug in logitnet).
    """
    def read(fh: BinaryIO) -> SavedModel:
        # zipfile refuses a newer zip version with NotImplementedError; a member name that is
        # not UTF-8 though flagged so fails to decode.
        with _refusing("it is not a zip archive", (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError)):
            zf = zipfile.ZipFile(fh)
        with zf:
            return SavedModel(*_read_file(zf, os.fstat(fh.fileno()).st_size))

    return guarded_load(filepath, "logitnet", read, build)


def guarded_load(filepath: str | os.PathLike, kind: str, read: Callable[[BinaryIO], SavedModel],
                 build: Callable[[SavedModel], Any]) -> Any:
    """`build(read(file))` for the open file at `filepath`, where only ModelFileError (naming the
    file and saying it is not a readable `kind` model file) reaches the caller, besides the
    system's errors for a file that is missing or cannot be opened."""
    path = Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    with open(path, "rb") as fh:
        try:
            return build(read(fh))
        except ModelFileError as err:
            raise ModelFileError(f"{str(path)!r} is not a readable {kind} model file: {err}",
                                 unexpected=err.unexpected) from err.__cause__
        except MemoryError:
            raise ModelFileError(f"{str(path)!r} could not be loaded: not enough memory") from None
        except Exception as err:  # noqa: BLE001 - only ModelFileError reaches users; the cause is kept
            raise ModelFileError(f"{str(path)!r} could not be loaded: the loader failed with "
                                 f"{type(err).__name__}: {_show(str(err))}. This is a bug in logitnet; "
                                 "please report it with the file", unexpected=True) from err


# --- saving -----------------------------------------------------------------------------------
def _describe(model: Any, include_optimizer: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    config: dict[str, Any] = {"format": FORMAT, "version": VERSION, "model": model.get_config(),
                              "metadata": model.metadata}
    arrays = {f"weights/{i}": w for i, w in enumerate(model.weights)}
    if model.head is not None:
        config["compile"] = {
            "loss": {"class_name": type(model.loss).__name__, "config": model.loss.get_config()},
            "optimizer": {"class_name": type(model.optimizer).__name__, "config": model.optimizer.get_config()},
            "metrics": [m if isinstance(m, str) else m.name for m in model.metric_names],
        }
        if include_optimizer:
            state = model.optimizer.get_state()
            config["optimizer_state"] = sorted(state)
            arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in sorted(state.items())})
    return config, arrays


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes | np.ndarray) -> None:
    # A fixed date and mode make the same model give the same file, byte for byte.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    if isinstance(data, bytes):
        zf.writestr(info, data)
        return
    info.file_size = data.nbytes + MAX_NPY_HEADER  # an upper bound: decides ZIP64 for huge arrays
    with zf.open(info, "w") as dest:  # streamed: no second copy of a large array in memory
        npy.write_array(dest, np.ascontiguousarray(data) if data.ndim else data, allow_pickle=False)


def save_model(model: Any, filepath: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Write `model` to `filepath` atomically: a temporary file in the same folder, fsync, rename
    (`atomic_file`).

    The file then holds either the previous model or this one, never a part of it, even if the
    process is killed; a killed save's temporary file is removed by the next save of that file. Raises ValueError (before writing) for what the loader would refuse:
    non-finite weights or optimizer state, metadata that is not JSON, sizes beyond the bounds.
    """
    model._require_built()
    config, arrays = _describe(model, include_optimizer)
    try:
        text = json.dumps(config, indent=1).encode()
    except (TypeError, ValueError) as err:
        raise ValueError(f"model.metadata must hold only JSON values (dicts with string keys, lists, "
                         f"strings, numbers, booleans, None): {err}") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"the model's config and metadata take {len(text):,} bytes of JSON; at most "
                         f"{MAX_CONFIG_BYTES:,} are allowed")
    try:  # what is written must load: the loader's own checks, before touching the disk
        plan = _check_config(_parse_json(text))
    except ModelFileError as err:
        raise ValueError(f"this model cannot be saved in a form that loads back: {err}") from None
    for name, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{name} holds non-finite values (NaN or inf); a model file keeps finite "
                             "arrays only: train again (callbacks.TerminateOnNaN stops a diverging fit)")
    for i, what in plan.nonnegative.items():
        if (arrays[f"weights/{i}"] < 0).any():
            raise ValueError(f"weights/{i} holds negative values; it is {what}, which the loader refuses")
    with atomic_write(filepath) as fh, zipfile.ZipFile(fh, "w") as zf:
        _write_member(zf, "config.json", text)
        for name, arr in arrays.items():
            _write_member(zf, f"{name}.npy", arr)
