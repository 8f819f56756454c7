"""ONNX export: a built model as an ONNX graph that takes features and gives plain tensors.

Input `input` (batch, *features) in the model's dtype. Outputs, never a ZipMap:
- `logits` (batch, k): the last layer's pre-activation outputs (`predict_logits`);
- `probabilities`: Softmax(logits) (batch, k) for a softmax model; for one sigmoid unit (binary)
  [σ(−z), σ(z)] (batch, 2), with no 1 − p; for k sigmoid units (multi-label) σ(z) (batch, k);
- `label`: the class index (int64) or the class label (from `class_labels`: strings stay strings)
  (batch,); for multi-label an int64 0/1 indicator (batch, k). Sigmoid labels compare the logits
  with the least logit whose probability reaches the threshold, as `metrics.multilabel_predict`.
A linear output that is not a compiled classifier (a regression) exports `logits` alone.

The graph is built with `onnx.helper` alone; `onnx` is imported inside these functions, so
importing logitnet never needs it (`pip install "logitnet[onnx]"`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from .atomic_file import atomic_write
from .layers import Dense, Dropout, Flatten, Normalization, output_activation
from .layers.core import ActivationLayer
from .metrics import _check_thresholds, _logit_cut

MIN_OPSET = 13  # Softmax, ArgMax, Squeeze and Gather as used here take this form from opset 13
DEFAULT_OPSET = 17
TASKS = ("binary", "multiclass", "multilabel")

# Φ(x) in float64 from elementary operations (onnxruntime has no float64 Erf): with t = |x|/√2,
# erf(t) = 2/√π · t·e^(−t²) · Σ (2t²)^n / (1·3···(2n+1)) for t <= _SERIES_END (positive terms),
# erfc(t) = e^(−t²)/√π / (t + (1/2)/(t + 1/(t + (3/2)/(t + ...)))) beyond. These term counts keep
# erf within 1e-15 absolute and erfc within 4e-15 relative (checked against mpmath).
_SERIES_END = 3.0
_SERIES_TERMS = 45
_FRACTION_DEPTH = 26
# logitnet computes these in float64 and rounds once (float32 models included); so does the graph.
_IN_FLOAT64 = ("sigmoid", "softplus", "gelu", "silu", "softmax", "log_softmax")


def _require_onnx() -> Any:
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as err:
        raise ImportError('ONNX export needs the onnx package: pip install "logitnet[onnx]"') from err
    return onnx


def _check_opset(opset: object) -> int:
    """`opset` as an int, or a ValueError saying the range this onnx supports."""
    onnx = _require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest the installed "
                         f"onnx {onnx.__version__} knows), got {opset!r}")
    return int(opset)


def export(model: Any, filepath: str | os.PathLike, *, opset: int = DEFAULT_OPSET, thresholds: object = 0.5,
           task: str | None = None, class_labels: object = None, standardize: dict | None = None,
           metadata: dict[str, str] | None = None) -> None:
    """Write a built `Sequential` to `filepath` as ONNX (atomically: a failed export leaves no file
    and keeps an existing one). The same model and arguments give the same bytes. See `to_onnx`."""
    proto = to_onnx(model, opset=opset, thresholds=thresholds, task=task, class_labels=class_labels,
                    standardize=standardize, metadata=metadata)
    data = proto.SerializeToString(deterministic=True)
    with atomic_write(filepath) as fh:
        fh.write(data)


def to_onnx(model: Any, *, opset: int = DEFAULT_OPSET, thresholds: object = 0.5, task: str | None = None,
            class_labels: object = None, standardize: dict | None = None,
            metadata: dict[str, str] | None = None) -> Any:
    """The ONNX ModelProto of a built `Sequential`: input (batch, *features) -> logits, probabilities, label.

    task: "binary", "multiclass" or "multilabel" (default: from the output activation, or from the
    compiled loss for a linear output; an uncompiled linear output exports its logits alone unless
    a task is given). thresholds: a probability, or one per label (L,), for sigmoid outputs' labels. class_labels: the label of each class (binary: 2), output instead of the index.
    standardize: {"mean": (d,), "scale": (d,)}: the graph first takes (x − mean) / scale in float64,
    as the command line does. metadata: extra string pairs for the file's metadata_props.
    """
    onnx = _require_onnx()
    from . import __version__

    opset = _check_opset(opset)
    if not getattr(model, "layers", None):
        raise ValueError("the model has no layers: there is nothing to export")
    if not model.built:
        if model.in_shape is None:
            raise ValueError("the model is not built, so its input shape is unknown: call "
                             "build((None, n_features)) or fit/predict on data before exporting")
        model.build()
    dtype = np.dtype(model.dtype)
    name, params, n_body = output_activation(model.layers)
    body = model.layers[:n_body]
    logits_shape = body[-1].out_shape if body else model.in_shape
    task = _task(model, task, name, params, logits_shape)

    g = _Graph(onnx, dtype)
    x = "input"
    if standardize is not None:
        x = _standardize(g, x, standardize, model.in_shape)
    for layer in body:
        x = _layer(g, layer, x, activate=layer is not model.layers[-1])
    g.node("Identity", [x], out="logits")
    outputs = [g.value_info("logits", dtype, logits_shape)]
    props = {"task": task or "regression"}
    if task is not None:
        outputs += _head(g, task, logits_shape[0], thresholds, class_labels)
    elif class_labels is not None:
        raise ValueError("class_labels are for classifiers; this model has a linear output (a regression)")
    props.update(metadata or {})

    helper = onnx.helper
    graph = helper.make_graph(g.nodes, model.name, [g.value_info("input", dtype, model.in_shape)], outputs,
                              initializer=g.initializers, doc_string=_doc(task))
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="logitnet",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opset_ids))
    helper.set_model_props(proto, {str(k): str(v) for k, v in sorted(props.items())})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _doc(task: str | None) -> str:
    """The graph's doc_string: what each output holds."""
    if task is None:
        return "logits: the model's outputs (a regression: no probabilities or labels)"
    return {"binary": "logits (batch, 1); probabilities [P(class 0), P(class 1)] (batch, 2); label (batch,)",
            "multiclass": "logits (batch, k); probabilities Softmax(logits) (batch, k); label ArgMax (batch,)",
            "multilabel": "logits (batch, k); probabilities Sigmoid(logits) (batch, k); label 0/1 (batch, k)",
            }[task]


def _task(model: Any, task: str | None, name: str, params: dict, logits_shape: tuple) -> str | None:
    """The classifier task the outputs serve, checked against the output; None for a regression."""
    head = getattr(model, "head", None)
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")
    if name in ("softmax", "log_softmax"):
        if params.get("axis", -1) not in (-1, len(logits_shape)):
            raise ValueError(f"the output softmax runs over axis {params['axis']}; a classifier's runs over the "
                             "last axis (axis=-1)")
        inferred = "multiclass"
    elif name == "sigmoid":
        inferred = "binary" if logits_shape == (1,) else "multilabel"
    elif name == "linear":
        compiled = head is not None and head.family in ("softmax", "sigmoid")
        inferred = head.task if compiled else None
        if task is None and inferred is None:
            return None
    else:
        raise ValueError(f"the model ends in a {name!r} output: logitnet exports classifiers (softmax, "
                         "log_softmax or sigmoid outputs) and linear outputs (logits only)")
    task = task or inferred
    fits = {"multiclass": name in ("softmax", "log_softmax", "linear"),
            "binary": name in ("sigmoid", "linear") and logits_shape == (1,),
            "multilabel": name in ("sigmoid", "linear")}[task]
    if len(logits_shape) != 1:
        raise ValueError(f"a classifier's logits must be (batch, k), but this model's are (batch, *{logits_shape})")
    if not fits or (task == "multiclass" and logits_shape[0] < 2):
        raise ValueError(f"task={task!r} does not fit the model's {name!r} output over {logits_shape[0]} "
                         "unit(s): binary takes one sigmoid unit, multiclass a softmax over >= 2, "
                         "multilabel sigmoid units")
    return task


class _Graph:
    """Nodes and initializers under construction, with unique, repeatable names: a layer's tensors
    are "LAYER/kernel" and the like; every other name has no "/"."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0
        self._consts: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: object, dtype: object = None, name: str | None = None) -> str:
        """An initializer holding `value` (in the graph's dtype unless `dtype` is given); scalars shared."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = None
        if name is None and arr.ndim == 0 and arr.dtype.kind in "fiub":
            key = (arr.dtype.str, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        tensor_name = name or self.fresh("const")
        if arr.dtype.kind in "OUS":
            tensor = self.onnx.helper.make_tensor(tensor_name, self.onnx.TensorProto.STRING, arr.shape,
                                                  [str(v).encode("utf-8") for v in arr.ravel()])
        else:
            tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), tensor_name)
        self.initializers.append(tensor)
        if key is not None:
            self._consts[key] = tensor_name
        return tensor_name

    def node(self, op: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        out = out or self.fresh(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=f"{op}_{len(self.nodes)}", **attrs))
        return out

    def in_float64(self, build: Callable[[str], str], x: str) -> str:
        """build(x) computed in float64 (x cast up, the result cast back to the graph's dtype)."""
        if self.dtype == np.float64:
            return build(x)
        saved, self.dtype = self.dtype, np.dtype(np.float64)
        try:
            out = build(self.node("Cast", [x], to=self.onnx.TensorProto.DOUBLE))
        finally:
            self.dtype = saved
        return self.node("Cast", [out], to=self.elem)

    def value_info(self, name: str, dtype: object, shape: tuple) -> Any:
        elem = dtype if isinstance(dtype, int) else self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.onnx.helper.make_tensor_value_info(name, elem, ["batch", *shape])


# --- the layers -----------------------------------------------------------------------------------
def _layer(g: _Graph, layer: Any, x: str, activate: bool) -> str:
    """The ONNX form of one body layer, at inference; `activate` False for a Dense whose activation
    the head takes."""
    if isinstance(layer, Dense):
        kernel = g.const(layer.kernel, name=f"{layer.name}/kernel")
        if layer.use_bias:
            z = g.node("Gemm", [x, kernel, g.const(layer.bias, name=f"{layer.name}/bias")])
        else:
            z = g.node("MatMul", [x, kernel])
        return _activation(g, layer.activation_name, {}, z) if activate else z
    if isinstance(layer, ActivationLayer):
        return _activation(g, layer.activation_name, layer.activation_params, x)
    if isinstance(layer, Dropout):
        return x
    if isinstance(layer, Flatten):
        return g.node("Flatten", [x], axis=1)
    if isinstance(layer, Normalization):
        shift = g.const(layer._shift, name=f"{layer.name}/shift")
        scale = g.const(layer._scale, name=f"{layer.name}/scale")  # max(√variance, ε), as the layer uses
        if layer.invert:
            return g.node("Add", [g.node("Mul", [x, scale]), shift])
        return g.node("Div", [g.node("Sub", [x, shift]), scale])
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX form in logitnet's exporter")


def _standardize(g: _Graph, x: str, standardize: dict, in_shape: tuple) -> str:
    """(x − mean) / scale in float64, as the command line standardises, then back to the model's dtype."""
    try:
        mean = np.asarray(standardize["mean"], np.float64)
        scale = np.asarray(standardize["scale"], np.float64)
    except (KeyError, TypeError, ValueError):
        raise ValueError("standardize must be {'mean': [...], 'scale': [...]} with one number per feature") from None
    if mean.shape != in_shape or scale.shape != in_shape:
        raise ValueError(f"standardize mean and scale must have the shape of a sample {in_shape}, got "
                         f"{mean.shape} and {scale.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError("standardize mean must be finite and scale finite and > 0")
    double = g.onnx.TensorProto.DOUBLE
    wide = x if g.dtype == np.float64 else g.node("Cast", [x], to=double)
    out = g.node("Div", [g.node("Sub", [wide, g.const(mean, np.float64, "standardize.mean")]),
                         g.const(scale, np.float64, "standardize.scale")])
    return out if g.dtype == np.float64 else g.node("Cast", [out], to=g.elem)


# --- the activations ------------------------------------------------------------------------------
def _activation(g: _Graph, name: str, params: dict, x: str) -> str:
    """The ONNX nodes of activation `name` (a REGISTRY name, with its params) applied to tensor x."""
    if name in _IN_FLOAT64:
        return g.in_float64(lambda wide: _formula(g, name, params, wide), x)
    return _formula(g, name, params, x)


def _formula(g: _Graph, name: str, params: dict, x: str) -> str:
    if name == "linear":
        return x
    if name == "relu":
        return _relu(g, x, **params)
    if name == "leaky_relu":
        slope = g.const(params.get("negative_slope", 0.2))
        return g.node("Where", [g.node("GreaterOrEqual", [x, g.const(0)]), x, g.node("Mul", [x, slope])])
    if name == "elu":
        negative = g.node("Mul", [g.const(params.get("alpha", 1.0)), _expm1(g, g.node("Min", [x, g.const(0)]))])
        return g.node("Where", [g.node("Greater", [x, g.const(0)]), x, negative])
    if name == "gelu":
        return _gelu(g, x, bool(params.get("approximate", False)))
    if name == "sigmoid":
        return _sigmoid(g, x)
    if name == "softplus":  # max(z, 0) + log1p(exp(−|z|)): never overflows
        t = g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])])
        return g.node("Add", [g.node("Max", [x, g.const(0)]), _log1p(g, t)])
    if name == "silu":
        return g.node("Mul", [x, _sigmoid(g, x)])
    if name == "tanh":
        return g.node("Tanh", [x])
    if name == "softmax":
        return g.node("Softmax", [x], axis=int(params.get("axis", -1)))
    if name == "log_softmax":
        return g.node("LogSoftmax", [x], axis=int(params.get("axis", -1)))
    raise ValueError(f"activation {name!r} has no ONNX form in logitnet's exporter")


def _sigmoid(g: _Graph, x: str) -> str:
    """σ(x) as logitnet.ops.sigmoid: 1/(1 + t) for x >= 0, t/(1 + t) below, t = exp(−|x|). Small
    probabilities keep their digits (onnxruntime's Sigmoid returns 0 for σ(−40) in float64)."""
    t = g.node("Exp", [g.node("Neg", [g.node("Abs", [x])])])
    one_plus_t = g.node("Add", [g.const(1), t])
    return g.node("Where", [g.node("GreaterOrEqual", [x, g.const(0)]), g.node("Div", [g.const(1), one_plus_t]),
                            g.node("Div", [t, one_plus_t])])


def _relu(g: _Graph, x: str, negative_slope: float = 0.0, max_value: float | None = None,
          threshold: float = 0.0) -> str:
    if negative_slope == 0 and max_value is None and threshold == 0:
        return g.node("Relu", [x])
    # Keras: above the threshold x (clipped to [0, max_value] when there is one); below it slope·(x − threshold).
    above = x if max_value is None else g.node("Min", [g.node("Max", [x, g.const(0)]), g.const(max_value)])
    below = g.node("Mul", [g.const(negative_slope), g.node("Sub", [x, g.const(threshold)])])
    return g.node("Where", [g.node("Greater", [x, g.const(threshold)]), above, below])


def _log1p(g: _Graph, t: str) -> str:
    """log(1 + t) to a few ulp without a log1p op: log(w)·t/(w − 1) with w = 1 + t (Kahan), t where w == 1."""
    w = g.node("Add", [g.const(1), t])
    ratio = g.node("Div", [g.node("Mul", [g.node("Log", [w]), t]), g.node("Sub", [w, g.const(1)])])
    return g.node("Where", [g.node("Equal", [w, g.const(1)]), t, ratio])


def _expm1(g: _Graph, x: str) -> str:
    """exp(x) − 1 for x <= 0 to a few ulp: (u − 1)·x/log(u) with u = exp(x) (Kahan); x where u == 1,
    and −1 where u − 1 rounds to −1 (there u may be subnormal, and log(u) too far from x)."""
    u = g.node("Exp", [x])
    u_minus_1 = g.node("Sub", [u, g.const(1)])
    ratio = g.node("Mul", [u_minus_1, g.node("Div", [x, g.node("Log", [u])])])
    inner = g.node("Where", [g.node("Equal", [u_minus_1, g.const(-1)]), g.const(-1), ratio])
    return g.node("Where", [g.node("Equal", [u, g.const(1)]), x, inner])


def _gelu(g: _Graph, x: str, approximate: bool) -> str:
    if approximate:  # x·σ(2u), u = √(2/π)·(x + 0.044715x³): Keras' tanh form without its cancellation
        cube = g.node("Pow", [x, g.const(3)])  # as NumPy's x**3 (one pow, not two roundings of x·x·x)
        inner = g.node("Add", [x, g.node("Mul", [g.const(0.044715), cube])])
        v = g.node("Mul", [g.const(2.0 * math.sqrt(2.0 / math.pi)), inner])
        return g.node("Mul", [x, _sigmoid(g, v)])
    return g.node("Mul", [x, _normal_cdf64(g, x)])


def _normal_cdf64(g: _Graph, x: str) -> str:
    """Φ(x) for float64 x: erfc(|x|/√2)/2 below 0, 1 − that above (see _SERIES_END)."""
    t = g.node("Mul", [g.node("Abs", [x]), g.const(math.sqrt(0.5))])
    end = g.const(_SERIES_END)
    near = g.node("Min", [t, end])  # each branch sees only its own range: no overflow to mask
    square = g.node("Mul", [near, near])
    # Σ c_n·(2t²)^n as Σ (c_n·16^n)·(t²/8)^n: scaling by powers of 2 changes no rounding, and keeps
    # the coefficients above 1e-38, which onnxruntime's optimizer would take for 0 (it drops an Add
    # of a float64 constant whose float32 value is 0).
    w = g.node("Mul", [square, g.const(0.125)])
    coefficients, c = [], Fraction(1)
    for n in range(_SERIES_TERMS + 1):
        c /= 2 * n + 1
        coefficients.append(float(c * 16**n))  # 16^n / (1·3···(2n+1)), correctly rounded
    acc = g.const(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc = g.node("Add", [g.node("Mul", [acc, w]), g.const(c)])
    erf = g.node("Mul", [g.node("Mul", [near, g.node("Exp", [g.node("Neg", [square])])]),
                         g.node("Mul", [acc, g.const(2.0 / math.sqrt(math.pi))])])
    erfc_near = g.node("Sub", [g.const(1), erf])
    far = g.node("Max", [t, end])
    acc = far
    for k in range(_FRACTION_DEPTH, 0, -1):
        acc = g.node("Add", [far, g.node("Div", [g.const(k / 2), acc])])
    tail = g.node("Mul", [g.node("Exp", [g.node("Neg", [g.node("Mul", [far, far])])]), g.const(1 / math.sqrt(math.pi))])
    erfc_far = g.node("Div", [tail, acc])
    lower = g.node("Mul", [g.node("Where", [g.node("Greater", [t, end]), erfc_far, erfc_near]), g.const(0.5)])
    return g.node("Where", [g.node("Less", [x, g.const(0)]), lower, g.node("Sub", [g.const(1), lower])])


# --- the outputs ----------------------------------------------------------------------------------
def _head(g: _Graph, task: str, units: int, thresholds: object, class_labels: object) -> list:
    """Nodes and value infos of `probabilities` and `label` from `logits` (batch, units)."""
    z, dtype, int64 = "logits", g.dtype, g.onnx.TensorProto.INT64
    if task == "multilabel" and class_labels is not None:
        raise ValueError("class_labels are for single-label tasks; a multi-label model's label output is a "
                         "0/1 indicator per label")
    if task == "multiclass":
        probs = g.in_float64(lambda wide: g.node("Softmax", [wide], axis=-1), z)
        index = g.node("ArgMax", [z], axis=1, keepdims=0)  # the first of tied maxima, as NumPy's argmax
    else:
        cut = g.const(_cuts(thresholds, units, dtype), name="label_cut")
        positive = g.node("Cast", [g.node("GreaterOrEqual", [z, cut])], to=int64)
        if task == "binary":  # [σ(−z), σ(z)]: P(class 0) keeps its digits where 1 − σ(z) would not
            probs = g.in_float64(lambda wide: g.node("Concat", [_sigmoid(g, g.node("Neg", [wide])),
                                                                _sigmoid(g, wide)], axis=1), z)
            index = g.node("Squeeze", [positive, g.const([1], np.int64, "label_axis")])
        else:
            probs = g.in_float64(lambda wide: _sigmoid(g, wide), z)
            index = positive
    g.node("Identity", [probs], out="probabilities")
    outputs = [g.value_info("probabilities", dtype, (2 if task == "binary" else units,))]
    if class_labels is None:
        g.node("Identity", [index], out="label")
        return [*outputs, g.value_info("label", int64, (units,) if task == "multilabel" else ())]
    labels = _class_labels(class_labels, 2 if task == "binary" else units)
    g.node("Gather", [g.const(labels, labels.dtype, "class_labels"), index], out="label", axis=0)
    elem = g.onnx.TensorProto.STRING if labels.dtype.kind == "O" else \
        g.onnx.helper.np_dtype_to_tensor_dtype(labels.dtype)
    return [*outputs, g.value_info("label", elem, ())]


def _cuts(thresholds: object, units: int, dtype: np.dtype) -> np.ndarray:
    """Per threshold the least logit of `dtype` whose sigmoid reaches it: z >= cut exactly when
    multilabel_predict calls z positive (it compares z in float64 with the float64 cut; its own
    helpers check the thresholds and find that cut, so the rule lives in one place)."""
    t = _check_thresholds(thresholds, units)
    cuts = np.array([_logit_cut(float(v)) for v in t.ravel()]).reshape(t.shape)
    narrow = cuts.astype(dtype)
    # The least float32 at or above the float64 cut: for float32 z, z >= it iff float64(z) >= the cut.
    return np.where(narrow.astype(np.float64) < cuts, np.nextafter(narrow, dtype.type(np.inf)), narrow)


def _class_labels(class_labels: object, n_classes: int) -> np.ndarray:
    """The labels as an array Gather can take: int64, float64, bool, or object (strings)."""
    labels = np.asarray(class_labels)
    if labels.shape != (n_classes,):
        raise ValueError(f"class_labels must hold one label per class ({n_classes}), got shape {labels.shape}")
    kind = labels.dtype.kind
    if kind == "O":
        if all(isinstance(v, str) for v in labels):
            kind = "U"
        elif all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in labels):
            labels, kind = labels.astype(np.int64), "i"
        else:
            raise ValueError(f"class_labels must be all strings or all integers, got {list(labels)!r}")
    if kind in "US":
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in labels], dtype=object)
    if kind in "iu":
        if labels.dtype.kind == "u" and (labels > np.iinfo(np.int64).max).any():
            raise ValueError("class_labels must fit in int64")
        return labels.astype(np.int64)
    if kind in "fb":
        return labels.astype(np.float64 if kind == "f" else np.bool_)
    raise ValueError(f"class_labels must be strings, integers, floats or booleans, got dtype {labels.dtype}")
