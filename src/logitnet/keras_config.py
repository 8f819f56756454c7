"""Keras model configs in logitnet's terms, and back: pure JSON, no Keras and no h5py.

`from_keras` reads the architecture and compile settings of a Keras 3 `.keras` file or a legacy
`.h5` file (tf.keras 2.x or Keras 3's legacy saver) and returns the config of logitnet's own format
(`saving`), which `saving.check_config` then checks like any other model file. Nothing named in a
file is ever imported or called: classes are looked up in logitnet's tables, a module other than
Keras', a custom `registered_name`, a Lambda or an unknown key is refused with `ModelFileError`.
`to_keras` writes a logitnet model's config the way Keras 3 does, for Keras to load.
"""

from __future__ import annotations

import re
from typing import Any

from . import activations, initializers
from .saving import (
    FORMAT,
    MAX_RANK,
    MAX_UNITS,
    VERSION,
    ModelFileError,
    _is_int,
    _is_real,
    _show,
)

KERAS_VERSION = "3.5.0"  # the oldest Keras 3 that reads what `to_keras` writes in this layout

# Keys every layer config may carry, with the values logitnet can honour (None: any, checked elsewhere).
_INERT: dict[str, tuple] = {  # key -> the values that change nothing in logitnet
    "activity_regularizer": (None,), "bias_regularizer": (None,), "kernel_constraint": (None,),
    "bias_constraint": (None,), "quantization_config": (None,), "lora_rank": (None, 0), "lora_alpha": (None,),
    "sparse": (False,), "ragged": (False,), "optional": (False,), "autocast": (True,),
}
# The keys each Keras layer class may have besides name, trainable and dtype.
_LAYER_KEYS: dict[str, set[str]] = {
    "Dense": {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
              "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint",
              "quantization_config", "lora_rank", "lora_alpha"},
    "Activation": {"activation"},
    "ReLU": {"max_value", "negative_slope", "threshold"},
    "LeakyReLU": {"negative_slope", "alpha"},
    "Softmax": {"axis"},
    "Dropout": {"rate", "noise_shape", "seed"},
    "Normalization": {"axis", "invert", "mean", "variance"},
    "Flatten": {"data_format"},
}
_REFUSED_LAYERS = {"Lambda": "a Lambda layer holds Python code, which logitnet never runs"}
_ACTIVATION_ALIASES = {"swish": "silu"}
_INITIALIZER_NAMES = {re.sub("_", "", name): name for name in initializers.INITIALIZERS}
_OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}  # by class name or "adam"
_KERAS_METRICS = {  # Keras metric names -> logitnet's (all accuracies are the task's accuracy)
    "accuracy": "accuracy", "acc": "accuracy", "binary_accuracy": "accuracy", "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy", "auc": "auc", "precision": "precision", "recall": "recall",
    "mse": "mse", "mae": "mae", "mean_squared_error": "mse", "mean_absolute_error": "mae",
}
_COMPILE_INERT = {"loss_weights": (None,), "weighted_metrics": (None, []), "run_eagerly": (False,),
                  "steps_per_execution": (1,), "jit_compile": (False, True, "auto"), "auto_scale_loss": (True, False)}


def _snake(name: str) -> str:
    """Keras' to_snake_case: GlorotUniform -> glorot_uniform, ReLU -> re_lu."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_object(obj: object, where: str, kinds: str = "keras") -> tuple[str, dict]:
    """(class_name, config) of a serialized Keras object, refusing any that is not Keras' own."""
    if not isinstance(obj, dict):
        raise ModelFileError(f"{where} must be a JSON object, got {_show(obj)}")
    unknown = set(obj) - {"module", "class_name", "config", "registered_name", "build_config",
                          "compile_config", "shared_object_id", "name", "inbound_nodes"}
    if unknown:
        raise ModelFileError(f"{where} has the unknown keys {sorted(_show(k) for k in unknown)}")
    cls = obj.get("class_name")
    if not isinstance(cls, str):
        raise ModelFileError(f"{where}.class_name must be a string, got {_show(cls)}")
    module = obj.get("module", kinds)
    if not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
        raise ModelFileError(f"{where} ({_show(cls)}) comes from the module {_show(module)}; only Keras' own "
                             "objects are read (no code from a file is ever imported)")
    registered = obj.get("registered_name")
    if registered is not None and registered != cls:
        raise ModelFileError(f"{where} is the custom object {_show(registered)}; custom objects are not "
                             "supported (no code from a file is ever run)")
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}.config must be a JSON object, got {_show(config)}")
    return cls, config


def _dtype_name(value: object, where: str) -> str:
    """'float32' or 'float64' from a dtype string or a Keras DTypePolicy."""
    name = value
    if isinstance(value, dict):
        cls, cfg = _keras_object(value, where)
        if cls not in ("DTypePolicy", "Policy", "FloatDTypePolicy"):
            raise ModelFileError(f"{where} is a {_show(cls)}; only float32 or float64 dtype policies are read")
        name = cfg.get("name")
    if name not in ("float32", "float64"):
        raise ModelFileError(f"{where} is {_show(name)}; logitnet models are float32 or float64 "
                             "(mixed precision is not supported)")
    return name


def _batch_shape(value: object, where: str) -> list[int]:
    """A Keras batch shape [null, d1, ...] as the sample shape [d1, ...]."""
    if not (isinstance(value, list) and 2 <= len(value) <= MAX_RANK + 1 and value[0] is None
            and all(_is_int(d) and 1 <= d <= MAX_UNITS for d in value[1:])):
        raise ModelFileError(f"{where} must be [null, d1, ...] with sizes in [1, {MAX_UNITS}], got {_show(value)}")
    return value[1:]


def _activation(value: object, where: str) -> str:
    if isinstance(value, dict):
        cls, _ = _keras_object(value, where)
        value = _snake(cls)
    if not isinstance(value, str) or _ACTIVATION_ALIASES.get(value, value) not in activations.REGISTRY:
        raise ModelFileError(f"{where} is {_show(value)}; logitnet has the activations {sorted(activations.REGISTRY)}")
    return _ACTIVATION_ALIASES.get(value, value)


def _initializer(value: object, where: str) -> str:
    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    cls, _ = _keras_object(value, where)
    name = _INITIALIZER_NAMES.get(re.sub("_", "", _snake(cls)))
    if name is None:
        raise ModelFileError(f"{where} is {_show(cls)}; logitnet has the initializers {sorted(initializers.INITIALIZERS)}")
    return name


def _regularizer(value: object, where: str) -> dict | None:
    if value is None:
        return None
    cls, cfg = _keras_object(value, where)
    wanted = {"L1": {"l1"}, "L2": {"l2"}, "L1L2": {"l1", "l2"}}.get(cls)
    if wanted is None or not set(cfg) <= wanted or not all(_is_real(v) and v >= 0 for v in cfg.values()):
        raise ModelFileError(f"{where} must be an L1, L2 or L1L2 regularizer with factors >= 0, got {_show(value)}")
    return {"l1": float(cfg.get("l1", 0.0)), "l2": float(cfg.get("l2", 0.0))}


def _layer(entry: object, where: str, dtypes: set[str], first: bool) -> tuple[str, dict, list[int] | None]:
    """One Keras layer as logitnet's (class_name, config), and its declared input shape if any."""
    cls, cfg = _keras_object(entry, where)
    if cls in _REFUSED_LAYERS:
        raise ModelFileError(f"{where}: {_REFUSED_LAYERS[cls]}")
    if cls not in _LAYER_KEYS and cls != "InputLayer":
        raise ModelFileError(f"{where}: {cls} is not supported; logitnet models are Dense networks "
                             f"(layers {sorted(_LAYER_KEYS)})")
    name = cfg.get("name")
    if not isinstance(name, str) or not name:
        raise ModelFileError(f"{where}.config.name must be a non-empty string, got {_show(name)}")
    if "dtype" in cfg and cfg["dtype"] is not None:
        dtypes.add(_dtype_name(cfg["dtype"], f"{where}.config.dtype"))
    shape = None
    for key in ("batch_shape", "batch_input_shape"):
        if key in cfg and (first or cls == "InputLayer"):  # Keras ignores a later layer's declared shape
            shape = _batch_shape(cfg[key], f"{where}.config.{key}")
    if cls == "InputLayer":
        allowed = {"name", "dtype", "batch_shape", "batch_input_shape", "sparse", "ragged", "optional"}
    else:
        allowed = {"name", "trainable", "dtype", "batch_input_shape", *_LAYER_KEYS[cls]}
    for key, value in cfg.items():
        if key not in allowed:
            raise ModelFileError(f"{where}.config has the key {_show(key)}, which logitnet does not know for {cls}")
        if key in _INERT and value not in _INERT[key]:
            raise ModelFileError(f"{where}.config.{key} is {_show(value)}; logitnet supports only "
                                 f"{' or '.join(map(repr, _INERT[key]))}")
    trainable = cfg.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ModelFileError(f"{where}.config.trainable must be true or false, got {_show(trainable)}")
    out: dict[str, Any] = {"name": name, "trainable": trainable}
    at = f"{where}.config"
    if cls == "Dense":
        out.update(units=cfg.get("units"), activation=_activation(cfg.get("activation", "linear"), f"{at}.activation"),
                   use_bias=cfg.get("use_bias", True),
                   kernel_initializer=_initializer(cfg.get("kernel_initializer", "GlorotUniform"), f"{at}.kernel_initializer"),
                   bias_initializer=_initializer(cfg.get("bias_initializer", "Zeros"), f"{at}.bias_initializer"),
                   kernel_regularizer=_regularizer(cfg.get("kernel_regularizer"), f"{at}.kernel_regularizer"))
    elif cls == "Activation":
        out["activation"] = _activation(cfg.get("activation"), f"{at}.activation")
    elif cls == "ReLU":
        out.update(max_value=cfg.get("max_value"), negative_slope=cfg.get("negative_slope", 0.0),
                   threshold=cfg.get("threshold", 0.0))
    elif cls == "LeakyReLU":
        out["negative_slope"] = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    elif cls == "Softmax":
        axis = cfg.get("axis", -1)
        out["axis"] = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    elif cls == "Dropout":
        out.update(rate=cfg.get("rate"), noise_shape=cfg.get("noise_shape"), seed=cfg.get("seed"))
    elif cls == "Normalization":
        axis = cfg.get("axis", -1)
        out.update(axis=[axis] if _is_int(axis) else axis, invert=cfg.get("invert", False),
                   mean=cfg.get("mean"), variance=cfg.get("variance"))
    elif cls == "Flatten":
        out["data_format"] = cfg.get("data_format")
    return cls, out, shape


def from_keras(model_config: object, compile_config: object | None, where: str = "config.json") -> dict:
    """logitnet's file config (format, version, model, metadata, compile) for a Keras Sequential's
    config and compile config (None: not compiled)."""
    cls, cfg = _keras_object(model_config, where)
    if cls != "Sequential":
        raise ModelFileError(f"{where} holds a {_show(cls)} model; logitnet reads Keras Sequential models")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{where}.config.layers must be a non-empty list, got {_show(layers)}")
    dtypes: set[str] = set()
    if cfg.get("dtype") is not None:
        dtypes.add(_dtype_name(cfg["dtype"], f"{where}.config.dtype"))
    shape, out_layers = None, []
    for i, entry in enumerate(layers):
        kind, layer_cfg, declared = _layer(entry, f"{where}.config.layers[{i}]", dtypes, first=i == 0)
        if declared is not None:
            if out_layers:
                raise ModelFileError(f"{where}.config.layers[{i}] declares an input shape, but it is not the first layer")
            shape = declared
        if kind != "InputLayer":
            out_layers.append({"class_name": kind, "config": layer_cfg})
    for key in ("build_input_shape",):
        if shape is None and cfg.get(key) is not None:
            shape = _batch_shape(cfg[key], f"{where}.config.{key}")
    build = model_config.get("build_config") if isinstance(model_config, dict) else None
    if shape is None and isinstance(build, dict) and build.get("input_shape") is not None:
        shape = _batch_shape(build["input_shape"], f"{where}.build_config.input_shape")
    if shape is None:
        raise ModelFileError(f"{where} does not say the model's input shape (no InputLayer, no build shape)")
    if len(dtypes) > 1:
        raise ModelFileError(f"{where} mixes the dtypes {sorted(dtypes)}; a logitnet model has one dtype")
    name = cfg.get("name", "sequential")
    config: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "metadata": {},
        "model": {"name": name if isinstance(name, str) else "sequential", "dtype": dtypes.pop() if dtypes else "float32",
                  "seed": None, "input_shape": shape, "layers": out_layers},
    }
    if compile_config:  # Keras writes {} for a model that was not compiled
        config["compile"] = _compile(compile_config, "compile_config")
    return config


def _compile(comp: object, where: str) -> dict:
    """Keras' compile_config (or a legacy training_config) as logitnet's compile section."""
    if not isinstance(comp, dict):
        raise ModelFileError(f"{where} must be a JSON object, got {_show(comp)}")
    for key, value in comp.items():
        if key in _COMPILE_INERT:
            if value not in _COMPILE_INERT[key]:
                raise ModelFileError(f"{where}.{key} is {_show(value)}; logitnet supports only "
                                     f"{' or '.join(map(repr, _COMPILE_INERT[key]))}")
        elif key not in ("optimizer", "optimizer_config", "loss", "metrics"):
            raise ModelFileError(f"{where} has the key {_show(key)}, which logitnet does not know")
    optimizer = comp.get("optimizer", comp.get("optimizer_config"))
    if isinstance(optimizer, str):
        optimizer = {"class_name": optimizer, "config": {}}
    if isinstance(optimizer, dict) and isinstance(optimizer.get("class_name"), str):
        # tf.keras 2.11-2.15 wrote its own built-in optimizers as "Custom>Adam".
        optimizer = {**optimizer, "class_name": optimizer["class_name"].removeprefix("Custom>")}
    cls, opt_cfg = _keras_object(optimizer, f"{where}.optimizer")
    if _OPTIMIZER_CLASSES.get(cls.lower()) is None:
        raise ModelFileError(f"{where}.optimizer is {_show(cls)}; logitnet has the optimizers "
                             f"{sorted(_OPTIMIZER_CLASSES.values())} (load with compile=False to skip the compile settings)")
    opt_cfg = {k: v for k, v in opt_cfg.items() if k not in ("jit_compile", "is_legacy_optimizer")}
    if opt_cfg.get("decay", 0.0) != 0.0:
        raise ModelFileError(f"{where}.optimizer has decay={_show(opt_cfg['decay'])} (tf.keras' legacy learning-rate "
                             "decay), which logitnet does not have; load with compile=False")
    opt_cfg.pop("decay", None)
    if isinstance(opt_cfg.get("learning_rate"), dict):
        raise ModelFileError(f"{where}.optimizer has a learning-rate schedule, which logitnet does not read; "
                             "load with compile=False")
    loss = comp.get("loss")
    if isinstance(loss, dict):
        loss_cls, loss_cfg = _keras_object(loss, f"{where}.loss")
        loss = {"class_name": loss_cls, "config": {k: v for k, v in loss_cfg.items() if k != "fn"}}
    elif isinstance(loss, str):
        loss = {"class_name": loss, "config": {}}
    else:
        raise ModelFileError(f"{where}.loss must be a loss name or a Keras loss, got {_show(loss)}")
    metrics = comp.get("metrics") or []
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        metrics = metrics[0]  # tf.keras 2 wrote one list per output
    if not isinstance(metrics, list):
        raise ModelFileError(f"{where}.metrics must be a list, got {_show(metrics)}")
    names = []
    for i, metric in enumerate(metrics):
        if isinstance(metric, dict):
            metric_cls, metric_cfg = _keras_object(metric, f"{where}.metrics[{i}]")
            metric = metric_cfg.get("name", _snake(metric_cls)) if metric_cls == "MeanMetricWrapper" else _snake(metric_cls)
        if not isinstance(metric, str) or metric not in _KERAS_METRICS:
            raise ModelFileError(f"{where}.metrics[{i}] is {_show(metric)}; logitnet reads the metrics "
                                 f"{sorted(_KERAS_METRICS)} (load with compile=False to skip them)")
        if _KERAS_METRICS[metric] not in names:
            names.append(_KERAS_METRICS[metric])
    return {"loss": loss, "optimizer": {"class_name": _OPTIMIZER_CLASSES[cls.lower()], "config": opt_cfg}, "metrics": names}


# --- writing ----------------------------------------------------------------------------------
def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _object(module: str, cls: str, config: dict) -> dict:
    return {"module": module, "class_name": cls, "config": config, "registered_name": None}


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))  # glorot_uniform -> GlorotUniform


def _keras_layer(layer: Any, dtype: str) -> dict:
    cls = type(layer).__name__
    cfg = layer.get_config()
    out: dict[str, Any] = {"name": cfg.pop("name") or layer.name, "trainable": cfg.pop("trainable"),
                           "dtype": _policy(dtype)}
    if cls == "Dense":
        reg = cfg["kernel_regularizer"]

        def initializer(name: str) -> dict:  # the random ones take a seed; zeros and ones nothing
            return _object("keras.initializers", _camel(name), {} if name in ("zeros", "ones") else {"seed": None})

        out.update(units=cfg["units"], activation=cfg["activation"], use_bias=cfg["use_bias"],
                   kernel_initializer=initializer(cfg["kernel_initializer"]),
                   bias_initializer=initializer(cfg["bias_initializer"]),
                   kernel_regularizer=None if reg is None else _object("keras.regularizers", "L1L2",
                                                                       {"l1": reg["l1"], "l2": reg["l2"]}),
                   bias_regularizer=None, kernel_constraint=None, bias_constraint=None)
    else:
        out.update(cfg)
    entry = _object("keras.layers", cls, out)
    if layer.built and (cls in ("Dense", "Normalization")):
        entry["build_config"] = {"input_shape": [None, *layer.in_shape]}
    return entry


def to_keras(model: Any, metrics: list[str]) -> dict:
    """The Keras 3 config.json of a built logitnet Sequential (with its compile_config when compiled)."""
    dtype = model.dtype.name
    layers = [_object("keras.layers", "InputLayer", {"batch_shape": [None, *model.in_shape], "dtype": dtype,
                                                     "sparse": False, "ragged": False, "name": "input_layer"})]
    layers += [_keras_layer(layer, dtype) for layer in model.layers]
    config: dict[str, Any] = {
        "module": "keras", "class_name": "Sequential",
        "config": {"name": model.name, "trainable": model.trainable, "dtype": _policy(dtype), "layers": layers},
        "registered_name": None, "build_config": {"input_shape": [None, *model.in_shape]},
    }
    if model.head is not None:
        opt = model.optimizer.get_config()
        loss = model.loss.get_config()
        config["compile_config"] = {
            "optimizer": _object("keras.optimizers", type(model.optimizer).__name__,
                                 {**opt, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                                  "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                                  "gradient_accumulation_steps": None}),
            "loss": _object("keras.losses", type(model.loss).__name__, loss),
            "loss_weights": None, "metrics": metrics or None, "weighted_metrics": None, "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False,
        }
    return config


def keras_metric_names(names: list[str]) -> tuple[list[str], list[str]]:
    """The metric names Keras knows among logitnet's, and those it does not."""
    known = {"accuracy", "auc", "precision", "recall", "mse", "mae", "mean_squared_error", "mean_absolute_error"}
    return [n for n in names if n in known], [n for n in names if n not in known]


def slot_layout(optimizer_class: str, slots: tuple[str, ...], legacy: bool = False) -> list[tuple[str, ...]]:
    """How Keras orders an optimizer's variables after iterations (and learning_rate): blocks of
    slot names, each block going through the trainable variables in turn, its names interleaved.
    tf.keras' legacy optimizers (`legacy=True`) keep one slot after another, Adam's included."""
    if optimizer_class == "Adam" and legacy:
        blocks = [("momentum",), ("velocity",), ("velocity_hat",)]
    elif optimizer_class == "Adam":
        blocks = [("momentum", "velocity"), ("velocity_hat",)]
    else:  # SGD: momentum; RMSprop: velocity, then momentum, then average_gradient
        blocks = [(s,) for s in ("velocity", "momentum", "average_gradient")]
    return [tuple(s for s in block if s in slots) for block in blocks if any(s in slots for s in block)]


def layer_paths(class_names: list[str]) -> list[str]:
    """Where a Keras 3 weights file keeps each layer: layers/<class in snake case>[_k], counted per class."""
    used: dict[str, int] = {}
    out = []
    for cls in class_names:
        snake = _snake(cls)
        used[snake] = used.get(snake, -1) + 1
        out.append(f"layers/{snake}" + (f"_{used[snake]}" if used[snake] else ""))
    return out

