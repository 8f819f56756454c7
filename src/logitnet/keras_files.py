"""Keras model files: Keras 3 `.keras` (a zip of metadata.json, config.json and model.weights.h5)
and legacy HDF5 `.h5` (tf.keras 2.x, Keras 3's legacy saver), read and written with h5py alone.

Reading is checked as strictly as logitnet's own files (`saving`): the architecture is turned into
logitnet's config (`keras_config`) and checked by `saving`'s checks, so every weight's shape is
known before the HDF5 data is opened; then every link of the HDF5 tree is walked, refusing soft
and external links, external and virtual datasets, datasets nobody asked for and shapes or
dtypes that differ, before any array is read. A zip member is read with a bound derived from the
checked config, so a zip bomb stops at that bound.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from . import keras_config
from .atomic_file import atomic_write
from .saving import (
    _ZIP_STREAM_ERRORS,
    MAX_CONFIG_BYTES,
    ModelFileError,
    SavedModel,
    _as_dtype,
    _check_config,
    _members,
    _parse_json,
    _refusing,
    _show,
    _write_member,
    guarded_load,
)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
KERAS_MEMBERS = {"metadata.json", "config.json", "model.weights.h5"}
MAX_H5_OBJECTS = 100_000  # groups and datasets in one weights file
MAX_H5_DEPTH = 16
MAX_ATTR_ITEMS = 4 * 4096 + 2  # names in one attribute: an optimizer's variables for the most layers
_H5_FIXED, _H5_PER_ARRAY = 2**20, 2**16  # bytes an HDF5 file may take beyond its arrays: 1 MiB + 64 KiB per array
# What h5py raises for a damaged or unreadable HDF5 file (libhdf5's errors surface as these).
_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError)  # TypeError: damaged datatypes, ids
# The time a child reading HDF5 gets (see _isolated): far beyond what a sound file needs.
H5_SECONDS = 60.0
H5_BYTES_PER_SECOND = 20 * 2**20
# And the memory: reading a sound file takes about its size (its arrays, uncompressed) and the
# arrays' copies; more means a damaged file (a string stored once but referenced many times).
H5_MEMORY = 2**30
H5_MEMORY_PER_BYTE = 8
DATE_SAVED = "1980-01-01@00:00:00"  # fixed, so the same model gives the same file


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError('Keras model files need h5py: pip install "logitnet[keras]"') from None
    return h5py


def kind_of(filepath: str | os.PathLike) -> str | None:
    """"keras" for a Keras 3 zip, "h5" for an HDF5 file, None for anything else (logitnet's own files)."""
    try:
        with open(filepath, "rb") as fh:
            head = fh.read(8)
            if head == HDF5_MAGIC:
                return "h5"
            if head[:4] == ZIP_MAGIC:
                names = set(zipfile.ZipFile(fh).namelist())
                return "keras" if "model.weights.h5" in names or "metadata.json" in names else None
    except (OSError, zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError, ValueError, EOFError):
        return None
    return None


def load(filepath: str | os.PathLike, kind: str, build: Callable[[SavedModel], Any], compile: bool = True) -> Any:
    """Check the Keras file at `filepath` (kind "keras" or "h5") whole, then return `build(saved)`."""
    h5py = _h5py()

    def read(fh: BinaryIO) -> SavedModel:
        size = os.fstat(fh.fileno()).st_size
        if kind == "h5":
            def legacy() -> SavedModel:
                with _refusing("it is not a readable HDF5 file", _H5_ERRORS):
                    f = h5py.File(fh, "r")
                with f:
                    return _read_legacy(f, compile)

            return _isolated(legacy, size)
        with _refusing("it is not a zip archive", (zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError)):
            zf = zipfile.ZipFile(fh)
        with zf:
            return _read_keras_zip(zf, size, compile)

    return guarded_load(filepath, "Keras", read, build)


# --- reading: the zip -------------------------------------------------------------------------
def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, refusing (before and while reading) more than `limit` of them."""
    if info.file_size > limit:
        raise ModelFileError(f"{info.filename} claims {info.file_size:,} bytes; at most {limit:,} are read")
    with _refusing(f"{info.filename} cannot be read", _ZIP_STREAM_ERRORS), zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(f"{info.filename} holds more than {limit:,} bytes")
    return data


def _read_keras_zip(zf: zipfile.ZipFile, size: int, compile: bool) -> SavedModel:
    members = _members(zf, size)
    names = {n for n in members if not n.endswith("/")}
    if names != KERAS_MEMBERS:
        missing, extra = sorted(KERAS_MEMBERS - names), sorted(names - KERAS_MEMBERS)
        raise ModelFileError("a .keras file holds metadata.json, config.json and model.weights.h5"
                             + (f"; it lacks {missing}" if missing else "")
                             + (f"; unexpected {[_show(e) for e in extra[:5]]}" if extra else ""))
    meta = _parse_json(_member(zf, members["metadata.json"], 2**16), "metadata.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("keras_version"), str):
        raise ModelFileError(f"metadata.json must be an object with a keras_version, got {_show(meta)}")
    extra_meta = meta.get("logitnet_metadata", {})
    if not isinstance(extra_meta, dict):
        raise ModelFileError(f"metadata.json's logitnet_metadata must be an object, got {_show(extra_meta)}")
    raw = _parse_json(_member(zf, members["config.json"], MAX_CONFIG_BYTES))
    compile_config = raw.get("compile_config") if compile and isinstance(raw, dict) else None
    config = keras_config.from_keras(raw, compile_config)
    config["metadata"] = extra_meta
    plan = _check_config(config)
    # The most the weights file can need: every weight, 3 optimizer slots per trainable number,
    # and HDF5's own structure per array (a hard-linked hierarchy of a few KB each).
    n_arrays = 4 * len(plan.shapes) + 2
    limit = 8 * (sum(math.prod(s) for s, _ in plan.shapes) + 3 * plan.n_flat + 2) + _H5_FIXED + _H5_PER_ARRAY * n_arrays
    data = _member(zf, members["model.weights.h5"], limit)
    h5py = _h5py()

    def weights() -> SavedModel:
        with _refusing("model.weights.h5 is not a readable HDF5 file", _H5_ERRORS):
            f = h5py.File(io.BytesIO(data), "r")
        with f, _refusing("model.weights.h5 is damaged", _H5_ERRORS):
            return _weights_v3(f, plan)

    return _isolated(weights, len(data))


def _die_with_parent() -> None:
    """Have Linux kill this child when its parent dies, so a looping libhdf5 is never left behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _limit_memory(extra: int) -> None:
    """Let this process (a forked child) take at most `extra` more bytes of address space (Linux)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = current + extra
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


def _isolated(work: Callable[[], SavedModel], size: int) -> SavedModel:
    """`work()`, which parses HDF5, in a forked child under a time limit where fork exists.

    libhdf5 trusts the structure it parses: some damaged files make it loop forever or crash
    (seen in the fuzz tests). A child that does not finish in `H5_SECONDS` (plus a second per
    `H5_BYTES_PER_SECOND` of data) is killed, and a file that kills the child is refused; only
    checked arrays and configs come back, pickled by logitnet's own code.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return work()
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        budget = H5_MEMORY + H5_MEMORY_PER_BYTE * size
        _die_with_parent()
        try:
            _limit_memory(budget)
            result: tuple = ("ok", work())
        except ModelFileError as err:
            result = ("refused", str(err), err.unexpected)
        except MemoryError:
            result = ("refused", (f"reading its HDF5 data takes more than {budget:,} bytes of memory, far more "
                      f"than {size:,} bytes of data need: the file is damaged"), False)
        except BaseException as err:  # noqa: BLE001 - reported to the parent as a loader bug
            result = ("failed", f"{type(err).__name__}: {err}")
        send.send(result)

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    limit = H5_SECONDS + size / H5_BYTES_PER_SECOND
    try:
        if not receive.poll(limit):
            raise ModelFileError(f"reading its HDF5 data did not finish in {limit:.0f} s: the file is damaged "
                                 "(libhdf5 loops on it)")
        try:
            result = receive.recv()
        except EOFError:
            proc.join()
            raise ModelFileError(f"libhdf5 crashed reading its HDF5 data (exit code {proc.exitcode}): "
                                 "the file is damaged") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()
    if result[0] == "refused":
        raise ModelFileError(result[1], unexpected=result[2])
    if result[0] == "failed":
        raise RuntimeError(result[1])  # guarded_load reports it as a bug in logitnet
    return result[1]


def _weights_v3(f: Any, plan: Any) -> SavedModel:
    """Weights (and optimizer variables) at layers/<class>[_k]/vars/<i> and optimizer/vars/<i>."""
    datasets = _walk(f)
    classes = [e["class_name"] for e in plan.model["layers"]]
    wanted, i = [], 0
    for path, (n_flat, n_own) in zip(keras_config.layer_paths(classes), plan.counts):
        wanted += [(f"{path}/vars/{j}", *plan.shapes[i + j]) for j in range(n_flat + n_own)]
        i += n_flat + n_own
    weights = [_read(datasets, path, shape, kind, plan, k) for k, (path, shape, kind) in enumerate(wanted)]
    opt = sorted((p for p in datasets if p.startswith("optimizer/vars/")), key=lambda p: int(p.rsplit("/", 1)[1])
                 if p.rsplit("/", 1)[1].isdigit() else -1)
    extra = set(datasets) - {p for p, _, _ in wanted} - set(opt)
    if extra:
        raise ModelFileError(f"model.weights.h5 holds datasets logitnet does not read: {sorted(extra)[:5]}")
    if [p.rsplit("/", 1)[1] for p in opt] != [str(k) for k in range(len(opt))]:
        raise ModelFileError(f"model.weights.h5's optimizer/vars must be numbered 0, 1, ...; got {opt[:5]}")
    state = _optimizer_state([(p, datasets[p]) for p in opt], plan, has_lr=True) if plan.optimizer and opt else {}
    return SavedModel(plan, weights, state)


# --- reading: HDF5 ----------------------------------------------------------------------------
def _walk(group: Any, prefix: str = "", found: dict | None = None, depth: int = 0,
          seen: set | None = None) -> dict[str, Any]:
    """Every dataset under `group` by path, following hard links only; refuses soft and external
    links, external and virtual datasets, an object linked twice (Keras links each once; links
    to links could make a small file a tree of billions of paths), and trees too deep or too large."""
    h5py = _h5py()
    found = {} if found is None else found
    seen = {group.id} if seen is None else seen
    if depth > MAX_H5_DEPTH:
        raise ModelFileError(f"the HDF5 tree is deeper than {MAX_H5_DEPTH} groups at {_show(prefix)}")
    if len(group) > MAX_H5_OBJECTS:
        raise ModelFileError(f"the HDF5 group {_show(prefix or '/')} holds more than {MAX_H5_OBJECTS:,} entries")
    for name in group:
        path = f"{prefix}{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            raise ModelFileError(f"the HDF5 entry {_show(path)} is a {type(link).__name__}; only plain entries are read")
        obj = group.get(name)
        if obj is None or obj.id in seen:
            raise ModelFileError(f"the HDF5 entry {_show(path)} links to an object linked elsewhere in the "
                                 "file too; each entry must be linked once")
        seen.add(obj.id)
        if len(seen) > MAX_H5_OBJECTS:
            raise ModelFileError(f"the HDF5 file holds more than {MAX_H5_OBJECTS:,} entries")
        if isinstance(obj, h5py.Group):
            _walk(obj, f"{path}/", found, depth + 1, seen)
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                raise ModelFileError(f"the HDF5 dataset {_show(path)} is virtual (its data lies in other files)")
            if obj.external:
                raise ModelFileError(f"the HDF5 dataset {_show(path)} keeps its data in external files")
            found[path] = obj
        else:
            raise ModelFileError(f"the HDF5 entry {_show(path)} is a {type(obj).__name__}, not a group or dataset")
    return found


def _array(obj: Any, path: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """The dataset as an array of exactly `shape`, of a float (kind 'f') or integer (kind 'i') dtype."""
    if obj.shape != shape:
        raise ModelFileError(f"the HDF5 dataset {_show(path)} has shape {obj.shape}; the model needs {shape}")
    dtype = obj.dtype
    kinds = "f" if kind == "f" else "iu"
    if dtype.kind not in kinds or dtype.itemsize > 8 or dtype.fields or dtype.hasobject:
        raise ModelFileError(f"the HDF5 dataset {_show(path)} has dtype {dtype}; expected "
                             + ("a float" if kind == "f" else "an integer"))
    arr = np.asarray(obj[()])
    if arr.shape != shape or arr.dtype != dtype:
        raise ModelFileError(f"the HDF5 dataset {_show(path)} did not read back as {shape}, {dtype}")
    if kind == "f" and not np.isfinite(arr).all():
        raise ModelFileError(f"the HDF5 dataset {_show(path)} holds {arr[~np.isfinite(arr)][0]}; every value must be finite")
    return arr


def _read(datasets: dict, path: str, shape: tuple, kind: str, plan: Any, index: int) -> np.ndarray:
    if path not in datasets:
        raise ModelFileError(f"the weights file lacks {_show(path)}, a weight of shape {shape}")
    arr = _array(datasets[path], path, shape, kind)
    if index in plan.nonnegative and (arr < 0).any():
        raise ModelFileError(f"{_show(path)} holds negative values; it is {plan.nonnegative[index]}")
    if kind == "f":
        return _as_dtype(arr, np.dtype(plan.model["dtype"]), path)
    if arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ModelFileError(f"{_show(path)} holds values too large for int64")
    return arr.astype(np.int64)


def _optimizer_state(entries: list[tuple[str, Any]], plan: Any, has_lr: bool,
                     legacy: bool = False) -> dict[str, np.ndarray]:
    """logitnet's flat optimizer state from Keras' optimizer variables, in Keras' order:
    iterations, [learning_rate], then the slots of each trainable variable (`keras_config.slot_layout`)."""
    opt = plan.optimizer
    slots = opt.slot_names()
    dtype = np.dtype(plan.model["dtype"])
    trainable, offset, i = [], 0, 0  # (offset, shape) of each trainable variable, in the flat vector
    for entry, (n_flat, n_own) in zip(plan.model["layers"], plan.counts):
        for shape, _ in plan.shapes[i:i + n_flat]:
            if entry["config"]["trainable"]:
                trainable.append((offset, shape))
            offset += math.prod(shape)
        i += n_flat + n_own
    layout = keras_config.slot_layout(type(opt).__name__, slots, legacy)
    expected = 1 + has_lr + sum(len(block) for block in layout) * len(trainable)
    if len(entries) != expected:
        raise ModelFileError(f"the file holds {len(entries)} optimizer variables; a {type(opt).__name__} with "
                             f"{', '.join(slots) or 'no slots'} over {len(trainable)} trainable weights has {expected}")
    it_path, it_obj = entries[0]
    iterations = _array(it_obj, it_path, (), "i")
    if not 0 <= int(iterations) < 2**62:
        raise ModelFileError(f"{_show(it_path)} must be an iteration count >= 0, got {int(iterations)}")
    if has_lr:
        _array(entries[1][1], entries[1][0], (), "f")  # the config holds the learning rate; this must be sane
    state = {name: np.zeros(plan.n_flat, dtype) for name in slots}
    rest = iter(entries[1 + has_lr:])
    for block in layout:
        for start, shape in trainable:
            for name in block:
                path, obj = next(rest)
                values = _as_dtype(_array(obj, path, shape, "f"), dtype, path)
                if name in ("velocity", "velocity_hat") and (values < 0).any():
                    raise ModelFileError(f"{_show(path)} holds negative values; it is a running mean of squares")
                state[name][start:start + math.prod(shape)] = values.reshape(-1)
    state["iterations"] = np.array(int(iterations), dtype=np.int64)
    return state


def _attr_value(obj: Any, name: str, where: str) -> Any:
    """The attribute `name` of `obj`, bounded before it is read where its size is known (fixed-size
    data) and after (variable-length strings, whose text lies elsewhere in the file: the child's
    memory limit bounds what reading them may take, see _isolated)."""
    attr = obj.attrs.get_id(name)
    count = attr.get_space().get_simple_extent_npoints()
    if count > MAX_ATTR_ITEMS:
        raise ModelFileError(f"the attribute {where}.{name} holds {count:,} items; at most {MAX_ATTR_ITEMS:,} are read")
    size = attr.get_storage_size() if count else 0  # libhdf5 fails to size an empty attribute
    if size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"the attribute {where}.{name} takes {size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read")
    value = obj.attrs[name]
    items = value.tolist() if isinstance(value, np.ndarray) else [value]
    size = sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in (items if isinstance(items, list) else [items]))
    if size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"the attribute {where}.{name} takes {size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read")
    return value


def _text_attr(obj: Any, name: str, where: str) -> str | None:
    """A string attribute (bounded in size), or None when absent."""
    if name not in obj.attrs:
        return None
    value = _attr_value(obj, name, where)
    if isinstance(value, bytes):
        with _refusing(f"the attribute {where}.{name} is not UTF-8 text", (UnicodeDecodeError,)):
            value = value.decode("utf-8")
    if not isinstance(value, str):
        raise ModelFileError(f"the attribute {where}.{name} must be text, got {type(value).__name__}")
    return value


def _names_attr(obj: Any, name: str, where: str) -> list[str]:
    """A list-of-names attribute (layer_names, weight_names) as str."""
    if name not in obj.attrs:
        raise ModelFileError(f"{where} has no {name} attribute")
    values = np.asarray(_attr_value(obj, name, where))
    if values.ndim != 1 or (values.size and values.dtype.kind not in "SUO"):
        raise ModelFileError(f"{where}.{name} must be a list of names")
    out = []
    for v in values.tolist():
        if isinstance(v, bytes):
            with _refusing(f"{where}.{name} holds a name that is not UTF-8", (UnicodeDecodeError,)):
                v = v.decode("utf-8")
        if not isinstance(v, str):
            raise ModelFileError(f"{where}.{name} must be a list of names, got {_show(v)}")
        out.append(v)
    return out


def _read_legacy(f: Any, compile: bool) -> SavedModel:
    """A legacy .h5 model: attributes model_config and training_config, weights under model_weights."""
    h5py = _h5py()
    with _refusing("the HDF5 file is damaged", _H5_ERRORS):
        text = _text_attr(f, "model_config", "/")
        if text is None:
            raise ModelFileError("it has no model_config attribute: it is not a Keras model file "
                                 "(a weights-only .h5 file has no architecture to build)")
        training = _text_attr(f, "training_config", "/") if compile else None
        raw = _parse_json(text.encode(), "the attribute model_config")
        config = keras_config.from_keras(raw, None if training is None else
                                         _parse_json(training.encode(), "the attribute training_config"),
                                         where="model_config")
        plan = _check_config(config)
        datasets = _walk(f)
        group = f.get("model_weights")
        if not isinstance(group, h5py.Group):
            raise ModelFileError("it has no model_weights group")
        layer_names = [e["config"]["name"] for e in plan.model["layers"]]
        stored = [n for n in _names_attr(group, "layer_names", "model_weights") if n != "top_level_model_weights"]
        if stored != layer_names:
            raise ModelFileError(f"model_weights' layer_names {_show(stored)} do not match the layers {_show(layer_names)}")
        used: set[str] = set()
        weights, i = [], 0
        for name, (n_flat, n_own) in zip(layer_names, plan.counts):
            names = _names_attr(group[name], "weight_names", f"model_weights/{name}")
            if len(names) != n_flat + n_own:
                raise ModelFileError(f"model_weights/{name} holds {len(names)} weights; layer {name!r} has {n_flat + n_own}")
            for w in names:
                path = f"model_weights/{name}/{w}"
                weights.append(_read(datasets, path, *plan.shapes[i], plan, i))
                used.add(path)
                i += 1
        opt: list[tuple[str, Any]] = []
        if "optimizer_weights" in f:
            og = f["optimizer_weights"]
            opt = [(f"optimizer_weights/{n}", datasets.get(f"optimizer_weights/{n}")) for n in
                   _names_attr(og, "weight_names", "optimizer_weights")]
            missing = [p for p, d in opt if d is None]
            if missing:
                raise ModelFileError(f"optimizer_weights names datasets that are not there: {missing[:3]}")
        extra = set(datasets) - used - {p for p, _ in opt}
        if extra:
            raise ModelFileError(f"the file holds datasets logitnet does not read: {sorted(extra)[:5]}")
        state = {}
        if plan.optimizer is not None and opt:
            legacy = opt[0][0].endswith("/iter:0")  # tf.keras' legacy optimizers: "Adam/iter:0"
            has_lr = len(opt) > 1 and opt[1][0].rsplit("/", 1)[1].startswith("learning_rate")
            state = _optimizer_state(opt, plan, has_lr=has_lr, legacy=legacy)
        return SavedModel(plan, weights, state)


# --- writing ----------------------------------------------------------------------------------
def _group(h5py: Any, parent: Any, name: str) -> Any:
    """A new group that records no times (HDF5 stamps objects by default: files would differ)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def _vars(h5py: Any, f: Any, path: str, name: str, arrays: list[np.ndarray]) -> None:
    group = f
    for part in [p for p in path.split("/") if p] + ["vars"]:
        group = group[part] if part in group else _group(h5py, group, part)
    group.attrs["name"] = name
    for i, arr in enumerate(arrays):
        group.create_dataset(str(i), data=arr, track_times=False)


def _weights_file(model: Any, include_optimizer: bool) -> bytes:
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w", libver="earliest") as f:
        _vars(h5py, f, "", model.name, [])
        paths = keras_config.layer_paths([type(layer).__name__ for layer in model.layers])
        for path, layer in zip(paths, model.layers):
            _vars(h5py, f, path, layer.name, [np.asarray(w) for w in layer.weights])
        if include_optimizer and model.head is not None:
            opt = model.optimizer
            state = opt.get_state()
            arrays: list[np.ndarray] = [np.array(int(state["iterations"]), np.int64),
                                        np.array(opt.learning_rate, model.dtype)]
            views = [(sl, layer) for layer, sl in zip(model.layers, model._flat.slices)
                     if layer.trainable and sl.stop > sl.start]
            for block in keras_config.slot_layout(type(opt).__name__, opt.slot_names()):
                for sl, layer in views:
                    start = sl.start
                    for shape in layer.flat_shapes(layer.in_shape):
                        for name in block:
                            arrays.append(state[name][start:start + math.prod(shape)].reshape(shape))
                        start += math.prod(shape)
            _vars(h5py, f, "optimizer", opt.name, arrays)
    return buf.getvalue()


def save(model: Any, filepath: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Write `model` as a Keras 3 `.keras` file that `keras.models.load_model` reads (atomically,
    byte-identical for the same model). logitnet metrics Keras lacks are left out of its compile config."""
    model._require_built()
    for i, w in enumerate(model.weights):
        if w.dtype.kind == "f" and not np.isfinite(w).all():
            raise ValueError(f"weight {i} holds non-finite values (NaN or inf); a model file keeps finite arrays only")
    names = [m if isinstance(m, str) else m.name for m in model.metric_names]
    known, dropped = keras_config.keras_metric_names(names)
    if dropped:
        import warnings

        warnings.warn(f"Keras has no metrics {dropped}; the .keras file's compile config leaves them out",
                      UserWarning, stacklevel=3)
    config = json.dumps(keras_config.to_keras(model, known)).encode()
    meta = {"keras_version": keras_config.KERAS_VERSION, "date_saved": DATE_SAVED}
    if model.metadata:
        meta["logitnet_metadata"] = model.metadata
    try:
        meta_text = json.dumps(meta).encode()
    except (TypeError, ValueError) as err:
        raise ValueError(f"model.metadata must hold only JSON values: {err}") from None
    weights = _weights_file(model, include_optimizer)
    with atomic_write(filepath) as fh, zipfile.ZipFile(fh, "w") as zf:
        _write_member(zf, "metadata.json", meta_text)
        _write_member(zf, "config.json", config)
        _write_member(zf, "model.weights.h5", weights)

