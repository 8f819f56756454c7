"""The layers: Keras' Layer protocol for each of them (build, call, weights, set_weights, config,
names, shapes), Normalization's statistics, Dropout's masks, Flatten, final activation layers fused
with the loss, hidden activation layers under finite differences, freezing, and Sequential's
structure (get_layer, add, pop, build, dtype)."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest
from frameworks import need

import logitnet
from logitnet import Sequential, activations, backend, losses, optimizers
from logitnet.layers import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    LeakyReLU,
    Normalization,
    ReLU,
    Softmax,
)
from logitnet.tensor import Tensor


@pytest.fixture(autouse=True)
def _restore_backend():
    """Every test leaves floatx at 'float32' and no global seed, whatever it set."""
    yield
    backend.set_floatx("float32")
    backend.set_global_seed(None)


D = 4  # features of the protocol tests' samples


def _x(n=6, d=D, seed=0, scale=2.0, dtype=np.float32):
    return (np.random.default_rng(seed).normal(size=(n, d)) * scale).astype(dtype)


def _softmax_rows(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- the Keras protocol, layer by layer ---------------------------------------------------------
# (id, factory, expected output of the built layer for x (float64 reference), output features,
#  shapes of the weights after build for samples (D,), default name)
CASES = [
    ("input_layer", lambda: InputLayer(shape=(D,)), lambda x, w: x, (D,), [], "input_layer"),
    ("dense", lambda: Dense(3, activation="tanh"), lambda x, w: np.tanh(x @ w[0] + w[1]), (3,),
     [(D, 3), (3,)], "dense"),
    ("dense_no_bias", lambda: Dense(3, use_bias=False), lambda x, w: x @ w[0], (3,), [(D, 3)], "dense"),
    ("activation", lambda: Activation("tanh"), lambda x, w: np.tanh(x), (D,), [], "activation"),
    ("activation_fn", lambda: Activation(activations.elu), lambda x, w: np.where(x > 0, x, np.expm1(x)),
     (D,), [], "activation"),
    ("relu", lambda: ReLU(), lambda x, w: np.maximum(x, 0), (D,), [], "re_lu"),
    ("relu_max", lambda: ReLU(max_value=1.5), lambda x, w: np.clip(x, 0, 1.5), (D,), [], "re_lu"),
    ("relu_slope", lambda: ReLU(negative_slope=0.1), lambda x, w: np.where(x > 0, x, 0.1 * x), (D,), [], "re_lu"),
    ("relu_threshold", lambda: ReLU(threshold=0.5), lambda x, w: np.where(x > 0.5, x, 0.0), (D,), [], "re_lu"),
    ("relu_all", lambda: ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5),
     lambda x, w: np.where(x > 0.5, np.minimum(x, 1.5), 0.1 * (x - 0.5)), (D,), [], "re_lu"),
    ("leaky_relu", lambda: LeakyReLU(), lambda x, w: np.where(x >= 0, x, 0.3 * x), (D,), [], "leaky_re_lu"),
    ("leaky_relu_slope", lambda: LeakyReLU(negative_slope=0.1), lambda x, w: np.where(x >= 0, x, 0.1 * x),
     (D,), [], "leaky_re_lu"),
    ("softmax", lambda: Softmax(), lambda x, w: _softmax_rows(x), (D,), [], "softmax"),
    ("dropout", lambda: Dropout(0.5), lambda x, w: x, (D,), [], "dropout"),
    ("normalization", lambda: Normalization(), lambda x, w: (x - w[0]) / np.sqrt(w[1]), (D,),
     [(D,), (D,), ()], "normalization"),
    ("flatten", lambda: Flatten(), lambda x, w: x, (D,), [], "flatten"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(None, D), (32, D), (D,)], ids=["none_batch", "batch_32", "features"])
def test_build_gives_keras_shapes(case, shape):
    _, make, _, out, weight_shapes, _ = case
    layer = make()
    layer.build(shape)
    assert layer.built
    assert layer.input.shape.as_list() == [None, D]
    assert layer.output.shape.as_list() == [None, *out]
    assert layer.input_shape == (None, D) and layer.output_shape == (None, *out)
    assert layer.compute_output_shape((None, D)) == (None, *out)
    assert layer.compute_output_shape((32, D)) == (32, *out)
    assert [w.shape for w in layer.weights] == weight_shapes
    assert layer.count_params() == sum(int(np.prod(s)) for s in weight_shapes)
    with pytest.raises(ValueError, match="was built for inputs of shape"):
        layer.build((None, D + 1))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_call_builds_on_first_call_and_computes(case):
    _, make, reference, out, weight_shapes, _ = case
    layer = make()
    x = _x()
    if not isinstance(layer, InputLayer):
        assert not layer.built
        assert layer.weights == [] and layer.get_weights() == []  # as Keras: nothing before build
        with pytest.raises(ValueError, match="not built"):  # as Keras
            layer.count_params()
        with pytest.raises(AttributeError, match="not built"):
            layer.input  # noqa: B018
    y = layer(x)
    assert layer.built and isinstance(y, Tensor) and y.shape == (len(x), *out) and y.dtype == np.float32
    assert [w.shape for w in layer.get_weights()] == weight_shapes
    w64 = [np.asarray(w, np.float64) for w in layer.get_weights()]
    np.testing.assert_allclose(y.numpy(), reference(x.astype(np.float64), w64), rtol=2e-6, atol=1e-6)
    assert not np.shares_memory(y, x)  # a fresh result, never the caller's array
    with pytest.raises(ValueError, match="expects inputs of shape"):
        layer(_x(d=D + 1))


def test_relu_options_on_exact_numbers():
    x = np.array([[-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0]])
    expected = {
        (): [0, 0, 0.25, 0.5, 1, 1.5, 2],
        (("max_value", 1.5),): [0, 0, 0.25, 0.5, 1, 1.5, 1.5],
        (("negative_slope", 0.1),): [-0.1, 0, 0.25, 0.5, 1, 1.5, 2],
        (("threshold", 0.5),): [0, 0, 0, 0, 1, 1.5, 2],
        (("max_value", 1.5), ("negative_slope", 0.1), ("threshold", 0.5)):
            [-0.15, -0.05, -0.025, 0, 1, 1.5, 1.5],
    }
    for options, want in expected.items():
        got = ReLU(**dict(options), dtype="float64")(x).numpy()
        np.testing.assert_allclose(got, [want], rtol=1e-15, atol=1e-17, err_msg=str(options))
    np.testing.assert_array_equal(LeakyReLU(dtype="float64")(x).numpy(), [[-0.3, 0, 0.25, 0.5, 1, 1.5, 2]])


def test_relu_refuses_a_negative_threshold_and_bad_options():
    with pytest.raises(ValueError, match="threshold"):
        ReLU(threshold=-0.5)  # as Keras' ReLU layer
    with pytest.raises(ValueError, match="max_value"):
        ReLU(max_value=-1.0)
    with pytest.raises(ValueError, match="negative_slope"):
        ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(negative_slope=float("nan"))


def test_leaky_relu_accepts_tf_keras_2_alpha():
    layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1
    assert layer.get_config()["negative_slope"] == 0.1
    np.testing.assert_array_equal(layer(np.array([[-2.0, 3.0]], np.float32)).numpy(),
                                  np.array([[-0.2, 3.0]], np.float32))
    assert LeakyReLU().negative_slope == 0.3  # Keras' layer default (the function's is 0.2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_default_names_are_keras(case):
    *_, name = case
    assert case[1]().name == name


def test_names_in_a_model_are_numbered_as_keras():
    model = Sequential([Input((D,)), Dense(5), ReLU(), Dense(5), LeakyReLU(), ReLU(), Dense(3, name="out")])
    assert [layer.name for layer in model.layers] == ["dense", "re_lu", "dense_1", "leaky_re_lu", "re_lu_1", "out"]
    with pytest.raises(ValueError, match="unique"):
        model.add(Dense(2, name="out"))
    with pytest.raises(ValueError, match="non-empty string"):
        Dense(2, name="")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_round_trip_gives_identical_outputs(case):
    _, make, *_ = case
    layer = make()
    x = _x()
    y = layer(x).numpy()
    config = json.loads(json.dumps(layer.get_config()))  # JSON-friendly, as Keras' configs
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    if not clone.built:
        clone.build((None, D))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), y)
    assert clone.name == layer.name


def test_config_round_trip_keeps_options():
    relu = ReLU.from_config(ReLU(max_value=6, negative_slope=0.1, threshold=0.5, name="r").get_config())
    assert (relu.max_value, relu.negative_slope, relu.threshold, relu.name) == (6.0, 0.1, 0.5, "r")
    dense = Dense.from_config(Dense(7, "gelu", use_bias=False, trainable=False).get_config())
    assert (dense.units, dense.activation_name, dense.use_bias, dense.trainable) == (7, "gelu", False, False)
    drop = Dropout.from_config(Dropout(0.25, noise_shape=(None, 1), seed=3).get_config())
    assert (drop.rate, drop.noise_shape, drop.seed) == (0.25, (None, 1), 3)
    x = np.ones((50, D), np.float32)
    a, b = Dropout(0.5, seed=9), Dropout.from_config(Dropout(0.5, seed=9).get_config())
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))  # same seed, same mask
    norm = Normalization.from_config(Normalization(axis=(1, 2), invert=True).get_config())
    assert (norm.axis, norm.invert) == ((1, 2), True)
    assert Softmax.from_config(Softmax(axis=1).get_config()).axis == 1


# --- set_weights ----------------------------------------------------------------------------------
WEIGHTED = [
    ("dense", lambda: Dense(3)),
    ("dense_no_bias", lambda: Dense(3, use_bias=False)),
    ("normalization", lambda: Normalization()),
]


@pytest.mark.parametrize("make", [m for _, m in WEIGHTED], ids=[i for i, _ in WEIGHTED])
def test_set_weights_refuses_bad_arrays_and_changes_nothing(make):
    layer = make()
    with pytest.raises(ValueError, match="not built"):
        layer.set_weights([np.zeros((D, 3))])
    layer.build((None, D))
    if isinstance(layer, Normalization):
        layer.adapt(_x(50))
    before = layer.get_weights()
    good = [w.copy() + 0.5 for w in before]
    if isinstance(layer, Normalization):
        good[2] = np.int64(7)
    bad = {
        "too few": (good[:-1], "expected"),
        "too many": (good + [good[-1]], "expected"),
        "transposed kernel": ([good[0].reshape(-1)[:3], *good[1:]] if isinstance(layer, Normalization)
                              else [good[0].T, *good[1:]], "has shape"),
        "nan": ([np.where(np.arange(good[0].size).reshape(good[0].shape) == 1, np.nan, good[0]), *good[1:]],
                "finite"),
        "inf": ([*good[:-1], np.full_like(good[-1], np.inf, dtype=np.float64)], "finite"),
        "-inf": ([np.full_like(good[0], -np.inf), *good[1:]], "finite"),
        "strings": ([np.full(good[0].shape, "a"), *good[1:]], "finite"),
    }
    for what, (weights, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            layer.set_weights(weights)
        for got, want in zip(layer.get_weights(), before):
            np.testing.assert_array_equal(got, want, err_msg=f"changed by a refused set_weights ({what})")
    layer.set_weights(good)
    for got, want in zip(layer.get_weights(), good):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [c for c in CASES if not c[4]], ids=[c[0] for c in CASES if not c[4]])
def test_weightless_layers_take_only_an_empty_list(case):
    layer = case[1]()
    layer.build((None, D))
    layer.set_weights([])
    with pytest.raises(ValueError, match="expected 0 weight arrays"):
        layer.set_weights([np.zeros(D)])
    assert layer.weights == [] and layer.count_params() == 0
    assert layer.trainable_weights == [] and layer.non_trainable_weights == []


def test_dense_kernel_layout_is_keras():
    layer = Dense(3, dtype="float64")
    layer.build((None, D))
    assert layer.kernel.shape == (D, 3) and layer.bias.shape == (3,)  # (in, units), as Keras
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(D, 3)), rng.normal(size=3)
    layer.set_weights([w, b])
    x = rng.normal(size=(5, D))
    np.testing.assert_allclose(layer(x).numpy(), x @ w + b, rtol=1e-14)
    assert layer.input_dim == D and layer.trainable_weights[0] is layer.weights[0]
    np.testing.assert_array_equal(layer.get_weights()[0], w)
    assert layer.get_weights()[0] is not layer.kernel  # copies


@pytest.mark.parametrize("declare", [{"input_dim": D}, {"input_shape": (D,)}, {"batch_input_shape": (None, D)}],
                         ids=["input_dim", "input_shape", "batch_input_shape"])
def test_declared_input_builds_the_model_at_once(declare):
    model = Sequential([Dense(5, activation="relu", **declare), Dense(3, activation="softmax")], seed=0)
    assert model.built  # as Keras: the input shape is known, so the weights exist now
    assert model.input_shape == (None, D) and model.output_shape == (None, 3)
    assert model.input.shape.as_list() == [None, D] and model.output.shape.as_list() == [None, 3]
    assert [w.shape for w in model.get_weights()] == [(D, 5), (5,), (5, 3), (3,)]
    assert model.count_params() == D * 5 + 5 + 5 * 3 + 3
    assert model.layers[0].input_dim == D
    assert model.predict(_x(), verbose=0).shape == (6, 3)


def test_input_layer_forms():
    for layer in (InputLayer(shape=(D,)), InputLayer(input_shape=(D,)), InputLayer(batch_shape=(None, D)),
                  InputLayer(shape=D), Input(shape=(D,)).layer):
        assert layer.built and layer.shape == (D,) and layer.output.shape.as_list() == [None, D]
    with pytest.raises(ValueError, match="shape"):
        InputLayer()
    with pytest.raises(ValueError, match="positive feature sizes"):
        InputLayer(shape=(0,))
    model = Sequential([InputLayer(shape=(D,)), Dense(2)])
    assert model.built and model.input_shape == (None, D)
    with pytest.raises(ValueError, match="first entry"):
        model.add(InputLayer(shape=(D,)))


def test_unknown_keyword_arguments_are_refused():
    with pytest.raises(TypeError, match="unexpected keyword"):
        Dense(3, activaton="relu")
    with pytest.raises(TypeError, match="unexpected keyword"):
        Dropout(0.5, rat=0.1)


# --- Normalization --------------------------------------------------------------------------------
def _exact_variance(column):
    values = [Fraction(float(v)) for v in column]
    mean = sum(values) / len(values)
    return mean, sum((v - mean) ** 2 for v in values) / len(values)


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-6), ("float64", 1e-12)])
def test_normalization_adapt_far_from_zero_is_exact(dtype, rtol):
    rng = np.random.default_rng(0)
    x = 1e8 + rng.standard_normal((3000, 2))
    layer = Normalization(dtype=dtype)
    layer.adapt(x)
    mean, variance, count = layer.get_weights()
    assert mean.dtype == np.dtype(dtype) and variance.dtype == np.dtype(dtype)
    assert count.dtype == np.int64 and int(count) == 3000
    for j in range(2):
        exact_mean, exact_var = _exact_variance(x[:, j])
        assert abs(float(variance[j]) - float(exact_var)) <= rtol * float(exact_var)
        assert abs(float(mean[j]) - float(exact_mean)) <= 1e-7 * float(exact_mean)
        # The test can fail: the one-pass E[x²] − E[x]² (in float64) is far off on this data.
        one_pass = np.mean(x[:, j] ** 2) - np.mean(x[:, j]) ** 2
        assert abs(one_pass - float(exact_var)) > 1e-2 * float(exact_var)
    # and the layer normalizes with these statistics (float64: exact differences from 1e8)
    out = layer(x[:5]).numpy()
    if dtype == "float64":
        np.testing.assert_allclose(out, (x[:5] - mean) / np.sqrt(variance), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("axis,kept", [(-1, (2,)), (2, (2,)), (1, (1,)), ((1, 2), (1, 2)), (None, ())],
                         ids=["minus1", "2", "1", "1_2", "none"])
def test_normalization_axes_on_3d_inputs_match_numpy(axis, kept):
    rng = np.random.default_rng(1)
    x = rng.normal(loc=[[1.0, -2.0, 3.0, 0.5]], scale=[[[0.5], [2.0], [1.0]]], size=(200, 3, 4))
    layer = Normalization(axis=axis, dtype="float64")
    layer.adapt(x)
    reduce = tuple(d for d in range(3) if d not in kept)
    want_mean, want_var = x.mean(axis=reduce), x.var(axis=reduce)
    mean, variance, count = layer.get_weights()
    assert mean.shape == tuple(x.shape[k] for k in kept)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(variance, want_var, rtol=1e-12)
    assert int(count) == int(np.prod([x.shape[d] for d in reduce]))
    out = layer(x).numpy()
    want = (x - x.mean(axis=reduce, keepdims=True)) / x.std(axis=reduce, keepdims=True)
    np.testing.assert_allclose(out, want, rtol=1e-11, atol=1e-12)
    assert out.shape == x.shape
    assert layer.output.shape.as_list() == [None, 3, 4]


def test_normalization_refuses_the_batch_axis_and_out_of_range_axes():
    with pytest.raises(ValueError, match="batch axis"):
        Normalization(axis=0).build((None, 3, 4))
    with pytest.raises(ValueError, match="out of range"):
        Normalization(axis=3).build((None, 3, 4))
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)


def test_normalization_with_given_mean_and_variance():
    x = np.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]])
    scalar = Normalization(mean=2.0, variance=4.0, dtype="float64")
    np.testing.assert_allclose(scalar(x).numpy(), (x - 2.0) / 2.0, rtol=1e-15)
    per_feature = Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0], dtype="float64")
    np.testing.assert_allclose(per_feature(x).numpy(), (x - [1, 2, 3]) / np.array([1.0, 2.0, 3.0]), rtol=1e-15)
    assert per_feature.get_weights() == [] and per_feature.count_params() == 0  # fixed statistics, as Keras
    with pytest.raises(ValueError, match="adapt"):
        per_feature.adapt(x)
    with pytest.raises(ValueError, match="do not fit"):
        Normalization(mean=[1.0, 2.0], variance=[1.0, 1.0])(x)
    with pytest.raises(ValueError, match=">= 0"):
        Normalization(mean=[0.0], variance=[-1.0])
    with pytest.raises(ValueError, match="same shape"):
        Normalization(mean=[0.0, 1.0], variance=[1.0])


def test_normalization_invert_round_trip():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=5.0, scale=3.0, size=(100, 3))
    forward = Normalization(dtype="float64")
    forward.adapt(x)
    back = Normalization(invert=True, dtype="float64")
    back.adapt(x)
    z = forward(x).numpy()
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-13)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-13)
    np.testing.assert_allclose(back(z).numpy(), x, rtol=1e-13, atol=1e-13)
    mean, variance = x.mean(axis=0), x.var(axis=0)
    given = Normalization(mean=mean, variance=variance, invert=True, dtype="float64")
    np.testing.assert_allclose(given(np.ones((1, 3))).numpy(), [np.sqrt(variance) + mean], rtol=1e-14)


def test_normalization_epsilon_floor_for_zero_variance():
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    layer = Normalization(dtype="float64")
    layer.adapt(x)
    assert layer.get_weights()[1][0] == 0.0
    out = layer(np.array([[3.0 + 1e-3, 4.5]])).numpy()
    assert out[0, 0] == pytest.approx(1e-3 / 1e-7, rel=1e-9)  # divided by epsilon, not by 0
    assert np.isfinite(layer(x).numpy()).all() and (layer(x).numpy()[:, 0] == 0).all()
    fixed = Normalization(mean=0.0, variance=0.0, dtype="float64")
    assert fixed(np.array([[2e-7]])).numpy()[0, 0] == pytest.approx(2.0, rel=1e-12)


def test_normalization_weights_are_non_trainable_and_unchanged_by_fit():
    rng = np.random.default_rng(3)
    x = rng.normal(loc=10.0, scale=4.0, size=(64, D))
    y = rng.integers(0, 3, 64)
    norm = Normalization()
    norm.adapt(x)
    model = Sequential([Input((D,)), norm, Dense(3, activation="softmax")], seed=0)
    stats = norm.get_weights()
    assert [w.dtype for w in stats] == [np.float32, np.float32, np.int64]
    assert len(model.weights) == 5 and len(model.trainable_weights) == 2
    assert len(model.non_trainable_weights) == 3
    assert all(any(w is v for v in model.non_trainable_weights) for w in norm.weights)
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 3
    dense_before = model.layers[1].get_weights()
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for got, want in zip(norm.get_weights(), stats):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert all(not np.array_equal(a, b) for a, b in zip(model.layers[1].get_weights(), dense_before))
    lines = []
    model.summary(print_fn=lines.append)
    assert "Non-trainable params: 9 " in lines[0]  # mean (4) + variance (4) + count


def test_normalization_set_weights_refuses_negative_variance_or_count():
    norm = Normalization()
    norm.adapt(_x(20))
    before = norm.get_weights()
    mean, variance, count = before
    for bad in ([mean, -variance - 1, count], [mean, variance, np.int64(-1)]):
        with pytest.raises(ValueError, match=">= 0"):
            norm.set_weights(bad)
        for got, want in zip(norm.get_weights(), before):
            np.testing.assert_array_equal(got, want)
    model = Sequential([Input((D,)), norm, Dense(2)])
    weights = model.get_weights()
    weights[1] = -np.ones(D)
    with pytest.raises(ValueError, match=">= 0"):
        model.set_weights(weights)
    np.testing.assert_array_equal(norm.variance, variance)
    norm.set_weights([mean + 1, variance * 4, np.int64(5)])  # the divisor follows new weights
    x = _x(3)
    np.testing.assert_allclose(norm(x).numpy(), (x - (mean + 1)) / (2 * np.sqrt(variance)), rtol=1e-6)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own __array__ calls
def test_normalization_matches_keras():
    keras = need("keras")
    rng = np.random.default_rng(4)
    x = rng.normal(loc=[5.0, -3.0, 0.5], scale=[2.0, 0.1, 7.0], size=(500, 3)).astype(np.float32)
    ours, theirs = Normalization(), keras.layers.Normalization()
    ours.adapt(x)
    theirs.adapt(x)
    for got, want in zip(ours.get_weights()[:2], theirs.get_weights()[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    assert int(ours.get_weights()[2]) == 500  # Keras 3 leaves its count at 0
    assert int(theirs.get_weights()[2]) in (0, 500)
    # Keras reduces in float32; logitnet's statistics are those of float64 (to the float32 rounding)
    np.testing.assert_allclose(ours.get_weights()[1], x.astype(np.float64).var(axis=0), rtol=1e-6)
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-4, atol=1e-4)
    x3 = rng.normal(size=(40, 3, 4)).astype(np.float32) * 3 + 1
    for axis in (1, (1, 2), None):
        ours, theirs = Normalization(axis=axis), keras.layers.Normalization(axis=axis)
        ours.adapt(x3)
        theirs.adapt(x3)
        np.testing.assert_allclose(ours(x3).numpy(), keras.ops.convert_to_numpy(theirs(x3)), rtol=1e-4, atol=1e-4)
    ours = Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25], invert=True)
    theirs = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25], invert=True)
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6)


# --- Dropout --------------------------------------------------------------------------------------
def _dropped_within_5_sigma(dropped, total, rate):
    return abs(dropped - rate * total) <= 5 * math.sqrt(total * rate * (1 - rate))


def test_dropout_is_the_identity_at_inference():
    rng = np.random.default_rng(5)
    model = Sequential([Input((6,)), Dense(8, activation="relu"), Dropout(0.5), Dense(3, activation="softmax")],
                       seed=0, dtype="float64")
    x = rng.normal(size=(40, 6))
    w1, b1, w2, b2 = model.get_weights()
    want = _softmax_rows(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-12)
    np.testing.assert_array_equal(model(x).numpy(), model.predict(x, verbose=0))
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not np.allclose(model(x, training=True).numpy(), want)  # in training it drops
    layer = Dropout(0.5, dtype="float64")
    np.testing.assert_array_equal(layer(x).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.8])
def test_dropout_in_training_drops_the_rate_and_scales_the_rest(rate):
    x = np.ones((400, 50), np.float32)
    y = Dropout(rate, seed=1)(x, training=True).numpy()
    dropped = int((y == 0).sum())
    assert _dropped_within_5_sigma(dropped, x.size, rate), (dropped, x.size * rate)
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
    x2 = np.random.default_rng(0).uniform(1, 2, size=(100, 20))
    y2 = Dropout(rate, seed=2, dtype="float64")(x2, training=True).numpy()
    np.testing.assert_allclose(y2[y2 != 0], x2[y2 != 0] / (1 - rate), rtol=1e-15)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True).numpy(), x)


def test_dropout_inside_fit_drops_the_rate_and_scales_the_rest():
    # One sample of ones, Dense(1) after the Dropout, SGD(1): the kernel's row i moves by
    # −mask_i·g and the bias by −g, so the rows that did not move are the dropped inputs and the
    # others moved by 1/(1 − rate) times the bias' step.
    d, rate = 4000, 0.3
    model = Sequential([Input((d,)), Dropout(rate), Dense(1, activation="sigmoid")], seed=3, dtype="float64")
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="binary_crossentropy")
    w, b = model.get_weights()
    model.fit(np.ones((1, d)), np.ones((1, 1)), batch_size=1, epochs=1, verbose=0)
    w2, b2 = model.get_weights()
    step_w, step_b = (w2 - w)[:, 0], float((b2 - b)[0])
    assert step_b > 0
    moved = step_w != 0
    assert _dropped_within_5_sigma(int((~moved).sum()), d, rate)
    np.testing.assert_allclose(step_w[moved] / step_b, 1 / (1 - rate), rtol=1e-9)

    # A Dropout between two Dense layers: its mask reaches the first one's gradient too. The
    # hidden units dropped for the one sample are those whose bias and outgoing weights stay.
    model = Sequential([Input((3,)), Dense(2000), Dropout(rate), Dense(1, activation="sigmoid")], seed=4,
                       dtype="float64")
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="binary_crossentropy")
    w1, b1, w2, b2 = model.get_weights()
    model.fit(np.ones((1, 3)), np.ones((1, 1)), batch_size=1, epochs=1, verbose=0)
    v1, c1, v2, _ = model.get_weights()
    kept_hidden = c1 != b1
    assert _dropped_within_5_sigma(int((~kept_hidden).sum()), 2000, rate)
    np.testing.assert_array_equal(kept_hidden, v2[:, 0] != w2[:, 0])
    np.testing.assert_array_equal(v1[:, ~kept_hidden], w1[:, ~kept_hidden])
    layer = Dropout(0.5, seed=0, dtype="float64")  # the protocol: backward applies the forward's mask
    layer.build((None, 10))
    x = np.random.default_rng(1).uniform(1, 2, (20, 10))
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), out / x, rtol=1e-15)
    assert 0 < (out == 0).sum() < x.size


def test_dropout_seeds():
    x = np.ones((100, 10), np.float32)
    a = Dropout(0.5, seed=7)(x, training=True).numpy()
    b = Dropout(0.5, seed=7)(x, training=True).numpy()
    c = Dropout(0.5, seed=8)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    layer = Dropout(0.5, seed=7)
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # the stream goes on
    backend.set_global_seed(11)
    d = Dropout(0.5)(x, training=True).numpy()
    backend.set_global_seed(11)
    np.testing.assert_array_equal(Dropout(0.5)(x, training=True).numpy(), d)
    with pytest.raises(ValueError, match="seed"):
        Dropout(0.5, seed=-1)


def test_dropout_noise_shape():
    x = np.ones((300, 8), np.float32)
    rows = Dropout(0.5, noise_shape=(None, 1), seed=1)(x, training=True).numpy()
    assert ((rows == 0).all(axis=1) | (rows == 2).all(axis=1)).all()  # one draw per sample
    assert _dropped_within_5_sigma(int((rows[:, 0] == 0).sum()), 300, 0.5)
    cols = Dropout(0.5, noise_shape=(1, 8), seed=2)(x, training=True).numpy()
    assert (cols == cols[:1]).all()  # one draw per feature, shared by every sample
    assert 0 < (cols[0] == 0).sum() < 8
    for bad in [(None, 3), (None,), (None, 8, 1), (2, 8)]:
        with pytest.raises(ValueError, match="noise_shape"):
            Dropout(0.5, noise_shape=bad)(x, training=True)
    with pytest.raises(ValueError, match="noise_shape"):
        Sequential([Input((8,)), Dropout(0.5, noise_shape=(None, 3))])


def test_a_seeded_model_with_dropout_trains_reproducibly():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)

    def trained(seed, rate=0.5):
        model = Sequential([Input((5,)), Dense(16, activation="relu"), Dropout(rate), Dense(3, activation="softmax")],
                           seed=seed)
        model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return model.get_weights()

    first, second = trained(1), trained(1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, trained(1, rate=0.0)))  # the masks mattered


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_dropout_rate_validation(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


# --- Flatten ------------------------------------------------------------------------------------
def test_flatten_then_dense_trains_as_the_reshaped_network():
    rng = np.random.default_rng(7)
    n = 48
    x, y = rng.normal(size=(n, 2, 3)).astype(np.float32), rng.integers(0, 3, n)
    flat = Sequential([Input((2, 3)), Flatten(), Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=4)
    plain = Sequential([Input((6,)), Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=5)
    plain.set_weights(flat.get_weights())
    assert flat.layers[0].output_shape == (None, 6) and flat.count_params() == plain.count_params()
    for model in (flat, plain):
        model.shuffle_rng = np.random.default_rng(0)
        model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    h1 = flat.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]
    h2 = plain.fit(x.reshape(n, 6), y, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert h1 == h2
    for a, b in zip(flat.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(flat.predict(x, verbose=0), plain.predict(x.reshape(n, 6), verbose=0))
    np.testing.assert_array_equal(Flatten()(x).numpy(), x.reshape(n, 6))
    layer = Flatten()
    layer.build((None, 2, 3))
    layer.forward(x, training=True)
    g = rng.normal(size=(n, 6))
    np.testing.assert_array_equal(layer.backward(g), g.reshape(n, 2, 3))  # the gradient goes back unflattened
    # between two Dense layers, Flatten passes the gradient on unchanged
    middle = Sequential([Input((6,)), Dense(5, activation="relu"), Flatten(), Dense(3, activation="softmax")], seed=6)
    direct = Sequential([Input((6,)), Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=7)
    direct.set_weights(middle.get_weights())
    for model in (middle, direct):
        model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
        model.train_on_batch(x.reshape(n, 6), y)
    for a, b in zip(middle.get_weights(), direct.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Flatten"):
        Sequential([Input((2, 3)), Dense(3)])


# --- final activation layers fused with the loss ---------------------------------------------
FINAL = [
    ("activation_softmax", lambda: Activation("softmax"), "softmax", 3, "sparse_categorical_crossentropy"),
    ("activation_softmax_fn", lambda: Activation(logitnet.activations.softmax), "softmax", 3,
     "sparse_categorical_crossentropy"),
    ("softmax_layer", lambda: Softmax(), "softmax", 3, "sparse_categorical_crossentropy"),
    ("sigmoid_1", lambda: Activation("sigmoid"), "sigmoid", 1, "binary_crossentropy"),
    ("sigmoid_3", lambda: Activation("sigmoid"), "sigmoid", 3, "binary_crossentropy"),
]


@pytest.mark.parametrize("make,activation,units,loss", [c[1:] for c in FINAL], ids=[c[0] for c in FINAL])
def test_final_activation_layer_is_bit_identical_to_the_dense_activation(make, activation, units, loss):
    rng = np.random.default_rng(8)
    layered = Sequential([Input((4,)), Dense(6, activation="tanh"), Dense(units), make()], seed=1)
    fused = Sequential([Input((4,)), Dense(6, activation="tanh"), Dense(units, activation=activation)], seed=2)
    fused.set_weights(layered.get_weights())

    def batch():
        x = rng.normal(size=(16, 4)) * 3
        y = rng.integers(0, 3, 16) if activation == "softmax" else rng.integers(0, 2, (16, units))
        return x, y

    for model in (layered, fused):
        model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss=loss)
    x, y = batch()
    assert layered.train_on_batch(x, y) == fused.train_on_batch(x, y)
    for a, b in zip(layered.get_weights(), fused.get_weights()):
        np.testing.assert_array_equal(a, b)  # the same gradient, to the bit
    for model in (layered, fused):
        model.compile(optimizer=optimizers.Adam(0.01), loss=loss)
    for _ in range(5):
        x, y = batch()
        assert layered.train_on_batch(x, y) == fused.train_on_batch(x, y)
    for a, b in zip(layered.get_weights(), fused.get_weights()):
        np.testing.assert_array_equal(a, b)
    x, y = batch()
    np.testing.assert_array_equal(layered.predict(x, verbose=0), fused.predict(x, verbose=0))
    assert layered.evaluate(x, y, verbose=0) == fused.evaluate(x, y, verbose=0)
    assert layered.output_shape == (None, units)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_final_softmax_layer_keeps_a_tiny_loss(dtype):
    model = Sequential([Input((1,)), Dense(2), Activation("softmax")], dtype=dtype)
    model.set_weights([np.array([[0.0, 60.0]]), np.zeros(2)])  # logits [0, 60]
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = model.evaluate(np.ones((1, 1)), np.array([1]), verbose=0)
    assert loss > 0  # the probabilities-first loss, −log(1.0), would be 0
    assert loss == pytest.approx(math.log1p(math.exp(-60.0)), rel=1e-6 if dtype == "float32" else 1e-13)


# --- hidden layers under finite differences ------------------------------------------------------
def _erf(v):
    return np.vectorize(math.erf)(v)


HIDDEN = [
    ("leaky_relu", lambda: [Dense(5), LeakyReLU(negative_slope=0.2)], lambda z: np.where(z > 0, z, 0.2 * z), [0.0]),
    ("relu6", lambda: [Dense(5), ReLU(max_value=6)], lambda z: np.clip(z, 0, 6), [0.0, 6.0]),
    ("relu_all_options", lambda: [Dense(5), ReLU(max_value=6, negative_slope=0.1, threshold=0.5)],
     lambda z: np.where(z > 0.5, np.minimum(z, 6), 0.1 * (z - 0.5)), [0.5, 6.0]),
    ("elu", lambda: [Dense(5, activation="elu")], lambda z: np.where(z > 0, z, np.expm1(z)), [0.0]),
    ("gelu", lambda: [Dense(5, activation="gelu")], lambda z: 0.5 * z * (1 + _erf(z / math.sqrt(2))), []),
    ("silu", lambda: [Dense(5, activation="silu")], lambda z: z / (1 + np.exp(-z)), []),
    ("softplus", lambda: [Dense(5, activation="softplus")], lambda z: np.logaddexp(0, z), []),
    ("tanh", lambda: [Dense(5, activation="tanh")], np.tanh, []),
    ("sigmoid", lambda: [Dense(5, activation="sigmoid")], lambda z: 1 / (1 + np.exp(-z)), []),
    ("normalization", lambda: [Dense(5), Normalization(mean=0.5, variance=4.0)], lambda z: (z - 0.5) / 2, []),
    ("normalization_invert", lambda: [Dense(5), Normalization(mean=0.5, variance=4.0, invert=True)],
     lambda z: 2 * z + 0.5, []),
    ("dropout_rate_0", lambda: [Dense(5), Dropout(0.0), Activation("tanh")], np.tanh, []),
]


def _loss(ws, x, y, f):
    z = f(x @ ws[0] + ws[1]) @ ws[2] + ws[3]
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float((lse - z[np.arange(len(y)), y]).mean())


def _inputs_around_kinks(w1, b1, kinks, n=10):
    """Inputs whose pre-activations keep 0.05 away from every kink, with at least two on each side."""
    for seed in range(200):
        x = np.random.default_rng(seed).normal(size=(n, w1.shape[0])) * 2.5
        z = x @ w1 + b1
        if all(np.abs(z - k).min() > 0.05 and (z < k).sum() >= 2 and (z > k).sum() >= 2 for k in kinks):
            return x, z
    raise AssertionError("no inputs found around the kinks")


@pytest.mark.parametrize("hidden,f,kinks", [c[1:] for c in HIDDEN], ids=[c[0] for c in HIDDEN])
def test_hidden_layers_gradients_match_finite_differences(hidden, f, kinks):
    rng = np.random.default_rng(9)
    model = Sequential([Input((3,)), *hidden(), Dense(3, activation="softmax")], seed=0, dtype="float64")
    w1, b1 = rng.normal(size=(3, 5)) * 1.5, rng.normal(size=5)
    w2, b2 = rng.normal(size=(5, 3)), rng.normal(size=3)
    model.set_weights([w1, b1, w2, b2])
    x, _ = _inputs_around_kinks(w1, b1, kinks + ([-2.0, 2.0] if not kinks else []))
    y = rng.integers(0, 3, len(x))
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    ws = model.get_weights()
    reported = model.train_on_batch(x, y)
    assert reported == pytest.approx(_loss(ws, x, y, f), rel=1e-12)  # the forward pass
    analytic = [before - after for before, after in zip(ws, model.get_weights())]
    h = 1e-6
    for w, got in zip(ws, analytic):
        numeric = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + h
            up = _loss(ws, x, y, f)
            w[idx] = keep - h
            down = _loss(ws, x, y, f)
            w[idx] = keep
            numeric[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(analytic[0]).max() > 1e-3  # the first layer's gradient went through the activation


# --- freezing -----------------------------------------------------------------------------------
def _summary_counts(model):
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    counts = {what: int(re.search(rf"^{what} params: ([\d,]+)", text, re.MULTILINE).group(1).replace(",", ""))
              for what in ("Total", "Trainable", "Non-trainable")}
    return counts["Total"], counts["Trainable"], counts["Non-trainable"]


@pytest.mark.parametrize("frozen", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_frozen_layer_keeps_its_weights_while_the_others_train(frozen):
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    model = Sequential([Input((4,)), Dense(5, activation="relu"), Dense(6, activation="relu"),
                        Dense(3, activation="softmax")], seed=0)
    sizes = [layer.count_params() for layer in model.layers]
    model.layers[frozen].trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2
    assert all(any(w is v for v in model.non_trainable_weights) for w in model.layers[frozen].weights)
    assert model.layers[frozen].trainable_weights == []
    assert _summary_counts(model) == (sum(sizes), sum(sizes) - sizes[frozen], sizes[frozen])
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    before = [layer.get_weights() for layer in model.layers]
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for i, layer in enumerate(model.layers):
        for a, b in zip(layer.get_weights(), before[i]):
            if i == frozen:
                np.testing.assert_array_equal(a, b)
            else:
                assert not np.array_equal(a, b), f"layer {i} did not train"
    model.layers[frozen].trainable = True
    assert len(model.trainable_weights) == 6 and model.non_trainable_weights == []
    assert _summary_counts(model) == (sum(sizes), sum(sizes), 0)
    still = model.layers[frozen].get_weights()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(model.layers[frozen].get_weights(), still))


@pytest.mark.parametrize("frozen", [0, 2], ids=["first", "last"])
def test_freezing_after_training_keeps_the_weights_whatever_adam_holds(frozen):
    # Adam's moments of the layer are non-zero by then: a zero gradient alone would still move it.
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    model = Sequential([Input((4,)), Dense(5, activation="relu"), Dense(6, activation="relu"),
                        Dense(3, activation="softmax")], seed=1)
    model.compile(optimizer=optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.layers[frozen].trainable = False
    before = model.layers[frozen].get_weights()
    others = model.layers[1].get_weights()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(model.layers[frozen].get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(model.layers[1].get_weights(), others))


def test_freezing_the_whole_model():
    model = Sequential([Input((4,)), Dense(3, activation="softmax")], seed=0)
    model.trainable = False
    assert not model.trainable and model.trainable_weights == [] and _summary_counts(model) == (15, 0, 15)
    model.compile(optimizer=optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(_x(8), np.arange(8) % 3, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# --- Sequential's structure -------------------------------------------------------------------------
def test_get_layer_by_name_and_index():
    model = Sequential([Input((4,)), Dense(5, name="hidden"), Dense(3, activation="softmax")])
    assert model.get_layer("hidden") is model.layers[0]
    assert model.get_layer(name="dense") is model.layers[1]
    assert model.get_layer(index=1) is model.layers[1] and model.get_layer(index=-2) is model.layers[0]
    with pytest.raises(ValueError, match=r"no layer named 'nope'.*\['hidden', 'dense'\]"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="not both"):
        model.get_layer(name="hidden", index=0)
    with pytest.raises(ValueError, match="out of range"):
        model.get_layer(index=2)
    with pytest.raises(ValueError, match="out of range"):
        model.get_layer(index=-3)
    with pytest.raises(ValueError, match="name or an index"):
        model.get_layer()


def test_add_after_build_keeps_the_weights():
    model = Sequential([Input((4,)), Dense(5, activation="relu")], seed=0)
    before = model.get_weights()
    model.add(Dropout(0.2))
    model.add(Dense(3, activation="softmax"))
    assert model.built and model.output_shape == (None, 3)
    for a, b in zip(model.get_weights()[:2], before):
        np.testing.assert_array_equal(a, b)
    assert model.count_params() == 4 * 5 + 5 + 5 * 3 + 3
    with pytest.raises(ValueError, match="Flatten|shape"):
        Sequential([Input((2, 3))]).add(Dense(2))


def test_pop_returns_the_layer_and_rebuilds():
    model = Sequential([Input((4,)), Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=0)
    before = model.get_weights()
    last = model.layers[-1]
    assert model.pop() is last
    assert model.output_shape == (None, 5) and model.output.shape.as_list() == [None, 5]
    assert model.count_params() == 25 and len(model.weights) == 2
    for a, b in zip(model.get_weights(), before[:2]):
        np.testing.assert_array_equal(a, b)
    model.pop()
    with pytest.raises(ValueError, match="no layers"):
        model.pop()


def test_pop_on_a_compiled_model_asks_to_compile_again():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    model = Sequential([Input((4,)), Dense(5, activation="relu"), Dense(3), Activation("softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.pop()  # now ends in a linear Dense: logits, which from_logits=False does not fit
    with pytest.raises(ValueError, match="compile the model again"):
        model.fit(x, y, verbose=0)
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(model.fit(x, y, verbose=0).history["loss"][0])
    model.add(Activation("softmax"))
    with pytest.raises(ValueError, match="compile the model again"):
        model.fit(x, y, verbose=0)


def test_model_input_output_and_count_params():
    model = Sequential([Input((4,)), Dense(5, activation="relu"), Dense(3, activation="softmax")])
    assert model.input.shape.as_list() == [None, 4] and model.output.shape.as_list() == [None, 3]
    assert model.input_shape == (None, 4) and model.output_shape == (None, 3)
    assert model.count_params() == 43 == sum(layer.count_params() for layer in model.layers)
    unbuilt = Sequential([Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        unbuilt.count_params()
    with pytest.raises(ValueError, match="not built"):
        unbuilt.input  # noqa: B018


def test_build_shapes_give_identical_weights_for_the_same_seed():
    weights = []
    for shape in [(None, 4), (32, 4), (4,)]:
        model = Sequential([Dense(5, activation="relu"), Dense(3, activation="softmax")], seed=12)
        assert not model.built
        model.build(shape)
        assert model.built and model.input_shape == (None, 4)
        weights.append(model.get_weights())
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_array_equal(a, b)
    other_seed = Sequential([Dense(5), Dense(3)], seed=13)
    other_seed.build((4,))
    assert not np.array_equal(other_seed.get_weights()[0], weights[0][0])
    with pytest.raises(ValueError, match="expects samples of shape"):
        model.build((None, 5))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_layer_built_standalone_keeps_its_weights_in_a_model(dtype):
    layer = Dense(3, activation="relu", dtype=dtype)
    x = _x(dtype=dtype)
    y = layer(x).numpy()
    before = layer.get_weights()
    model = Sequential([Input((D,)), layer, Dense(2, activation="softmax")], dtype=dtype)
    assert model.layers[0] is layer
    for a, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.dtype(dtype)
    assert np.shares_memory(layer.kernel, model.params)  # now a view of the model's buffer
    np.testing.assert_array_equal(layer(x).numpy(), y)
    with pytest.raises(ValueError, match="was built for inputs"):
        Sequential([Input((D + 1,))]).add(layer)


def test_a_float32_layer_in_a_float64_model_becomes_float64():
    layer = Dense(3)
    layer(_x())
    before = layer.get_weights()
    model = Sequential([Input((D,)), layer], dtype="float64")
    assert layer.dtype == np.float64 and layer.kernel.dtype == np.float64
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b.astype(np.float64))


def test_set_floatx_float64_makes_later_layers_and_models_float64():
    assert backend.floatx() == "float32"
    backend.set_floatx("float64")
    layer = Dense(3)
    assert layer.dtype == np.float64
    assert layer(_x()).dtype == np.float64 and layer.kernel.dtype == np.float64
    norm = Normalization()
    norm.adapt(_x())
    assert norm.get_weights()[0].dtype == np.float64
    model = Sequential([Input((D,)), Dense(5, activation="relu"), Dropout(0.1), Dense(3, activation="softmax")])
    assert model.dtype == np.float64
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model.predict(_x(), verbose=0).dtype == np.float64
    with pytest.raises(ValueError, match="floatx"):
        backend.set_floatx("float16")
    backend.set_floatx("float32")
    assert Dense(3).dtype == np.float32 and Sequential([Input((D,)), Dense(2)]).dtype == np.float32


def test_global_seed_makes_standalone_layers_repeatable():
    backend.set_global_seed(21)
    a = Dense(3)
    a.build((None, D))
    backend.set_global_seed(21)
    b = Dense(3)
    b.build((None, D))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


# --- side by side with Keras ------------------------------------------------------------------
@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own __array__ calls
def test_layers_matches_keras():
    keras = need("keras")
    x = np.array([[-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, -3.0]], np.float32)
    pairs = [
        (ReLU(), keras.layers.ReLU()),
        (ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5),
         keras.layers.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5)),
        (ReLU(max_value=6.0), keras.layers.ReLU(max_value=6.0)),
        (LeakyReLU(), keras.layers.LeakyReLU()),
        (Softmax(), keras.layers.Softmax()),
        (Activation("tanh"), keras.layers.Activation("tanh")),
        (Flatten(), keras.layers.Flatten()),
        (Dropout(0.5), keras.layers.Dropout(0.5)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-7,
                                   err_msg=type(ours).__name__)
        assert ours.name.split("_")[0] == theirs.name.split("_")[0]
    ours, theirs = Dense(3), keras.layers.Dense(3)
    theirs.build((None, 8))
    ours.build((None, 8))
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        keras.layers.ReLU(threshold=-0.5)


# --- Normalization's remaining corners (from mutation testing) -------------------------------------------
def test_normalization_given_statistics_align_with_the_kept_axes_from_the_right():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    per_last = Normalization(axis=-1, mean=np.arange(4.0), variance=np.full(4, 4.0), dtype="float64")
    np.testing.assert_array_equal(per_last(x).numpy(), (x - np.arange(4.0)) / 2.0)
    mean, var = np.arange(12.0).reshape(3, 4), np.full((3, 4), 9.0)
    per_cell = Normalization(axis=(1, 2), mean=mean, variance=var, dtype="float64")
    np.testing.assert_array_equal(per_cell(x).numpy(), (x - mean) / 3.0)
    # A (4,) mean with axis=(1, 2) lines up with the last kept axis, as Keras does.
    right = Normalization(axis=(1, 2), mean=np.arange(4.0), variance=np.ones(4), dtype="float64")
    np.testing.assert_array_equal(right(x).numpy(), x - np.arange(4.0))
    with pytest.raises(ValueError, match=r"^Normalization mean/variance have rank 2, more than the 1 kept axes \(-1,\)$"):
        Normalization(mean=np.zeros((3, 4)), variance=np.ones((3, 4)))(x)


def test_normalization_refuses_the_batch_axis_and_bad_data_with_messages_that_name_them():
    x = np.ones((5, 3))
    for axis in (0, -2):  # -2 is the batch axis of (n, 3) inputs too
        with pytest.raises(ValueError, match=r"^Normalization cannot keep statistics per sample \(axis 0, the batch axis\)$"):
            Normalization(axis=axis).adapt(x)
    with pytest.raises(ValueError, match=r"^Normalization axis must be an integer, a tuple of integers or None, got \(1, True\)$"):
        Normalization(axis=(1, True))
    with pytest.raises(ValueError, match=r"^Normalization needs both mean and variance, or neither \(then call adapt\)$"):
        Normalization(mean=[0.0])
    with pytest.raises(ValueError, match=r"^Normalization mean must be finite and variance finite and >= 0$"):
        Normalization(mean=[0.0], variance=[-1.0])
    with pytest.raises(ValueError, match=r"^this Normalization was given mean and variance; adapt\(\) would ignore them$"):
        Normalization(mean=[0.0], variance=[1.0]).adapt(x[:, :1])
    with pytest.raises(ValueError, match=r"^adapt\(\) takes a non-empty batch \(n_samples, \*features\), got shape \(5,\)$"):
        Normalization().adapt(np.ones(5))
    with pytest.raises(ValueError, match=r"^adapt\(\) takes a non-empty batch \(n_samples, \*features\), got shape \(0, 3\)$"):
        Normalization().adapt(np.ones((0, 3)))
    with pytest.raises(ValueError, match=r"^adapt\(\) takes numbers, got dtype <U1$"):
        Normalization().adapt(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"^adapt\(\) data must be finite$"):
        Normalization().adapt(np.array([[np.nan, 1.0]]))
    built = Normalization()
    built.adapt(x)
    with pytest.raises(ValueError, match=r"^adapt\(\) data has samples of shape \(4,\); the layer was built for \(3,\)$"):
        built.adapt(np.ones((5, 4)))


def test_normalization_adapt_on_one_sample_and_on_the_first_steps_only():
    one = Normalization(dtype="float64")
    one.adapt(np.array([[2.0, -3.0]]))
    mean, variance, count = one.get_weights()
    np.testing.assert_array_equal(mean, [2.0, -3.0])
    np.testing.assert_array_equal(variance, [0.0, 0.0])
    assert count == 1
    x = np.arange(100, dtype=np.float64).reshape(50, 2)
    steps = Normalization(dtype="float64")
    steps.adapt(x, batch_size=10, steps=2)  # the first 2 batches of 10 rows, as Keras' steps
    np.testing.assert_array_equal(steps.get_weights()[0], x[:20].mean(axis=0))
    assert steps.get_weights()[2] == 20
    default = Normalization(dtype="float64")
    default.adapt(x, steps=1)  # Keras' default batch of 32
    assert default.get_weights()[2] == 32


def test_a_checkpoint_resumes_dropout_masks_exactly(tmp_path):
    from logitnet import callbacks
    from logitnet.models import load_model

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)).astype(np.float32), rng.integers(0, 3, 200)

    def make():
        m = Sequential([Dense(16, "relu"), Dropout(0.3), Dense(3)], seed=4)
        m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    whole = make()
    whole.fit(x, y, epochs=4, verbose=0)
    path = str(tmp_path / "ck{epoch}.logitnet")
    make().fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(path, monitor="loss")])
    resumed = load_model(tmp_path / "ck2.logitnet")
    resumed.fit(x, y, epochs=4, initial_epoch=2, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_normalization_with_given_statistics_round_trips_through_its_config():
    x = np.random.default_rng(5).normal(3.0, 2.0, size=(7, 4))
    layer = Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[4.0, 1.0, 0.25, 9.0], invert=True, dtype="float64")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["mean"] == [1.0, 2.0, 3.0, 4.0] and config["variance"] == [4.0, 1.0, 0.25, 9.0]
    again = Normalization.from_config({**config, "dtype": "float64"})  # a layer's config leaves dtype to its model
    np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())
    np.testing.assert_array_equal(layer(x).numpy(), x * [2.0, 1.0, 0.5, 3.0] + [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"^Normalization mean/variance of shape \(3,\) do not fit inputs of "
                                         r"shape \(None, \*\(4,\)\) with axis=\(-1,\)$"):
        Normalization(mean=np.zeros(3), variance=np.ones(3))(x)


def test_normalization_takes_a_zero_variance_and_a_model_of_another_dtype():
    layer = Normalization()
    layer.adapt(np.array([[1.0, 2.0], [3.0, 2.0]], np.float32))
    mean, variance, count = layer.get_weights()
    layer.set_weights([mean, np.zeros_like(variance), count])  # zero is a variance; the output divides by 1e-7
    np.testing.assert_allclose(layer(np.array([[2.0, 2.0]], np.float32)).numpy(), [[0.0, 0.0]])
    layer.set_weights([mean, variance, count])
    model = Sequential([Input((2,)), layer, Dense(1)], dtype="float64", seed=0)
    assert layer.dtype == np.float64 and all(w.dtype == np.float64 for w in layer.get_weights()[:2])
    out = model.layers[0](np.array([[3.0, 2.0]])).numpy()
    np.testing.assert_array_equal(out, [[1.0, 0.0]])
    assert out.dtype == np.float64
