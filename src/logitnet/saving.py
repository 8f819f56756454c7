"""One-file model saving without pickle: a zip of JSON (architecture, compile settings) and .npy
arrays (weights, optimizer state), read back with allow_pickle=False."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "logitnet-model"
VERSION = 1


class ModelFileError(ValueError):
    """A file that is not a logitnet model, or a damaged one."""


def _array_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, order="C"), allow_pickle=False)  # (ascontiguousarray makes 0-d 1-d)
    return buf.getvalue()


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    # A fixed date and mode make the same model give the same file, byte for byte.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def save_model(model: Any, filepath: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Write `model` to `filepath` atomically: a temporary file in the same folder, then a rename."""
    model._require_built()
    config: dict[str, Any] = {"format": FORMAT, "version": VERSION, "model": model.get_config(),
                              "metadata": model.metadata}
    arrays = {f"weights/{i}": w for i, w in enumerate(model.weights)}
    if model.head is not None:
        loss = model.loss
        config["compile"] = {
            "loss": {"class_name": type(loss).__name__, "config": loss.get_config()},
            "optimizer": {"class_name": type(model.optimizer).__name__, "config": model.optimizer.get_config()},
            "metrics": [m if isinstance(m, str) else m.name for m in model.metric_names],
        }
        if include_optimizer:
            state = model.optimizer.get_state()
            config["optimizer_state"] = sorted(state)
            arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in state.items()})
    path = Path(filepath)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                _write_member(zf, "config.json", json.dumps(config, indent=1).encode())
                for name, arr in arrays.items():
                    _write_member(zf, f"{name}.npy", _array_bytes(arr))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_array(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(zf.read(f"{name}.npy")), allow_pickle=False)
    except KeyError:
        raise ModelFileError(f"the model file lacks the array {name!r}") from None
    except ValueError as err:
        raise ModelFileError(f"the array {name!r} in the model file is damaged: {err}") from None


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Any:  # noqa: A002 - Keras' name
    """Read a model written by `save` / `save_model`: same architecture, weights and settings."""
    from .layers import Dense
    from .model import Sequential

    path = Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
            if not isinstance(config, dict) or config.get("format") != FORMAT:
                raise ModelFileError(f"{str(path)!r} is not a logitnet model file")
            if config.get("version") != VERSION:
                raise ModelFileError(f"{str(path)!r} has format version {config.get('version')!r}; "
                                     f"this logitnet reads version {VERSION}")
            spec = config["model"]
            model = Sequential([Dense.from_config(c) for c in spec["layers"]], name=spec["name"],
                               seed=spec.get("seed"), dtype=spec["dtype"])
            model.build((int(spec["input_dim"]),))
            model.metadata = config.get("metadata") or {}
            model.set_weights([_read_array(zf, f"weights/{i}") for i in range(len(model.weights))])
            if compile and "compile" in config:
                from . import losses, optimizers

                comp = config["compile"]
                model.compile(optimizer=optimizers.get(comp["optimizer"]), loss=losses.get(comp["loss"]),
                              metrics=comp["metrics"])
                if "optimizer_state" in config:
                    model.optimizer.build(model.params.size, model.dtype)
                    model.optimizer.set_state({k: _read_array(zf, f"optimizer/{k}")
                                               for k in config["optimizer_state"]})
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{str(path)!r} is not a readable logitnet model file ({type(err).__name__}: {err})") from None
    return model
