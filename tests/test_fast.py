"""The compiled path (logitnet[fast], numba): every kernel against the NumPy reference, bit for bit;
LOGITNET_FAST switches it off; float16 stays on NumPy; numba is imported on first use only, and a
second process takes the kernels from the disk cache instead of compiling them again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import logitnet as ln
from logitnet import optimizers
from logitnet.ops import fast

numba = pytest.importorskip("numba")


@pytest.fixture
def path(monkeypatch):
    """Switch between the paths: path("1") compiled, path("0") NumPy."""

    def switch(setting: str) -> None:
        monkeypatch.setenv(fast.ENV, setting)
        fast.reset()

    yield switch
    monkeypatch.delenv(fast.ENV, raising=False)
    fast.reset()


OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.05),
    "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(0.01),
    "amsgrad": lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4, amsgrad=True),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop_momentum": lambda: optimizers.RMSprop(0.01, rho=0.8, momentum=0.5),
    "rmsprop_centered": lambda: optimizers.RMSprop(0.01, centered=True),
    "rmsprop_centered_momentum": lambda: optimizers.RMSprop(0.01, momentum=0.3, centered=True, epsilon=1e-3),
}


def _gradients(n: int, dtype: type, steps: int) -> list[np.ndarray]:
    """Gradients over many magnitudes, with zeros, subnormals, huge values, and inf and NaN in the
    last but one (so that the last step starts from NaN slots)."""
    rng = np.random.default_rng(7)
    finfo = np.finfo(dtype)
    out = []
    for step in range(steps):
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-8, 4, n)).astype(dtype)
        g[rng.integers(0, n, 20)] = 0
        g[rng.integers(0, n, 5)] = finfo.tiny / 4  # subnormal
        g[rng.integers(0, n, 5)] = finfo.max / 8
        if step == steps - 2:
            g[:3] = [np.inf, -np.inf, np.nan]
        out.append(g)
    return out


def _run(make, n: int, dtype: type, with_backup: bool, steps: int = 6) -> tuple:
    opt = make()
    w = np.random.default_rng(3).standard_normal(n).astype(dtype)
    backup = np.full(n, -1, dtype) if with_backup else None
    trace = []
    with np.errstate(all="ignore"):  # the huge gradients overflow v on purpose
        for g in _gradients(n, dtype, steps):
            opt.apply(w, g.copy(), backup)
            trace.append(w.copy())
    return trace, opt.get_state(), backup


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1_000, 300_001])  # one call; chunks shared among threads
def test_each_optimizer_kernel_is_bit_identical_to_numpy(path, name, dtype, n):
    results = {}
    for setting in ("1", "0"):
        path(setting)
        results[setting] = _run(OPTIMIZERS[name], n, dtype, with_backup=n > 1_000)
    assert fast.status().startswith("off")
    (fast_trace, fast_state, fast_backup), (ref_trace, ref_state, ref_backup) = results["1"], results["0"]
    for a, b in zip(fast_trace, ref_trace):
        np.testing.assert_array_equal(a, b)  # NaN in the same places too
    assert sorted(fast_state) == sorted(ref_state)
    for key in ref_state:
        np.testing.assert_array_equal(fast_state[key], ref_state[key])
    if ref_backup is not None:
        np.testing.assert_array_equal(fast_backup, ref_backup)
        np.testing.assert_array_equal(ref_backup, ref_trace[-2])  # the weights before the last step


def test_the_kernels_do_run_when_on_and_not_when_off(path, monkeypatch):
    calls = []
    path("1")
    kernels = fast.kernels()
    assert kernels is not None and fast.status().startswith("on (numba ")
    real = kernels.adam
    monkeypatch.setattr(kernels, "adam", lambda *a: (calls.append(1), real(*a)))
    opt = optimizers.Adam()
    opt.apply(np.zeros(4, np.float32), np.ones(4, np.float32))
    assert calls == [1]
    path("0")
    opt.apply(np.zeros(4, np.float32), np.ones(4, np.float32))
    assert calls == [1] and fast.kernels() is None and fast.status() == f"off ({fast.ENV}=0)"


def test_float16_and_rules_without_a_kernel_stay_on_numpy(path, monkeypatch):
    path("1")
    assert fast.for_dtype(np.dtype(np.float16)) is None and fast.for_dtype(np.dtype(np.float32)) is not None
    monkeypatch.setattr(fast.kernels(), "adam", None)  # a call would fail
    w16 = np.ones(5, np.float16)
    optimizers.Adam(0.1).apply(w16, np.ones(5, np.float16))
    assert w16.dtype == np.float16 and np.all(w16 < 1)

    class Halving(optimizers.Optimizer):  # a rule given only as NumPy code
        def _update(self, w, g, f, slots, scratch):
            w -= g / f(2)

    w = np.ones(3, np.float32)
    Halving(0.1, "halving").apply(w, np.ones(3, np.float32))
    np.testing.assert_array_equal(w, 0.5)


def test_a_bad_setting_is_named(path):
    path("sometimes")
    with pytest.raises(ValueError, match="LOGITNET_FAST must be 0 or 1 .*'sometimes'"):
        fast.kernels()


def test_training_gives_the_same_weights_and_history_on_both_paths(path):
    x = np.random.default_rng(0).standard_normal((300, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    runs = {}
    for setting in ("1", "0"):
        path(setting)
        model = ln.Sequential([ln.layers.Dense(16, "relu"), ln.layers.Dense(3)], seed=1, dtype="float32")
        model.compile(optimizer="adam", loss=ln.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        history = model.fit(x, y, batch_size=32, epochs=4, verbose=0)
        runs[setting] = (model.params.copy(), history.history)
    np.testing.assert_array_equal(runs["1"][0], runs["0"][0])
    assert runs["1"][1] == runs["0"][1]


_CHILD = """
import json, sys, numpy as np, logitnet as ln
from logitnet.ops import fast
before = 'numba' in sys.modules
opt = ln.optimizers.Adam()
opt.apply(np.zeros(8, np.float32), np.ones(8, np.float32))
k = fast.kernels()
stats = k.adam.stats
print(json.dumps({"numba_at_import": before, "status": fast.status(),
                  "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def test_numba_loads_on_first_use_and_a_second_process_reads_the_disk_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop(fast.ENV, None)
    runs = [json.loads(subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                                      check=True, timeout=120).stdout) for _ in range(2)]
    assert not runs[0]["numba_at_import"] and runs[0]["status"].startswith("on")
    assert (runs[0]["hits"], runs[0]["misses"]) == (0, 1)  # compiled, and written to the cache
    assert (runs[1]["hits"], runs[1]["misses"]) == (1, 0)  # loaded from it
    assert any((tmp_path / "cache").rglob("*.nbi"))


def test_the_command_line_says_which_path_runs(path, capsys, tmp_path):
    from logitnet.cli import main

    path("0")
    assert main(["numerics"]) == 0
    assert "Compiled kernels (logitnet[fast]): off (LOGITNET_FAST=0)" in capsys.readouterr().out
    path("1")
    assert main(["numerics"]) == 0
    assert f"on (numba {numba.__version__})" in capsys.readouterr().out
    model = _stack((3,))
    model.save(str(tmp_path / "m.logitnet"))
    assert main(["info", str(tmp_path / "m.logitnet")]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        f"Compiled kernels (logitnet[fast]): on (numba {numba.__version__}); LOGITNET_FAST=0 turns them off")


def test_amsgrad_keeps_a_nan_maximum_as_numpy_does(path):
    """np.maximum lets NaN win from either side; a restored state may hold NaN in velocity_hat only."""
    results = []
    for setting in ("1", "0"):
        path(setting)
        opt = optimizers.Adam(0.1, amsgrad=True)
        opt.set_state({"iterations": np.array(3), "momentum": np.full(3, 0.5, np.float32),
                       "velocity": np.ones(3, np.float32),
                       "velocity_hat": np.array([np.nan, 4.0, 0.25], np.float32)})
        w = np.zeros(3, np.float32)
        opt.apply(w, np.ones(3, np.float32))
        results.append((w, opt.get_state()["velocity_hat"]))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(results[1][0][0]) and results[1][1][1] == 4.0


def test_the_training_loss_kernel_matches_numpy_to_the_last_bit_almost_always(path):
    """The compiled sparse cross-entropy sums the other classes' float64 terms in order, NumPy in
    SIMD lanes: float32 results may differ only where a float64 value sits on a rounding boundary.
    On 2,000 batches none differs by more than 1 ulp, and fewer than 1 in 10⁵ values differ at all."""
    from logitnet.ops.softmax_xent import sparse_batch_in_range

    rng = np.random.default_rng(11)
    out = {"1": [], "0": []}
    batches = []
    for _ in range(2_000):
        n, c = int(rng.integers(1, 70)), int(rng.integers(2, 40))
        z = (rng.standard_normal((n, c)) * rng.choice([0.01, 1, 10, 60])).astype(np.float32)
        z = np.clip(z, -399, 87.9)
        batches.append((z, rng.integers(0, c, n), 1.0 / n if rng.random() < 0.8 else 1.0))
    for setting in out:
        path(setting)
        for z, y, scale in batches:
            loss, grad = np.empty(len(z), np.float32), np.empty(z.shape, np.float32)
            assert sparse_batch_in_range(z, y, scale, loss, grad)
            out[setting].append(np.concatenate([loss, grad.ravel()]))
    compiled, reference = np.concatenate(out["1"]), np.concatenate(out["0"])
    np.testing.assert_array_max_ulp(compiled, reference, maxulp=1)
    assert np.count_nonzero(compiled != reference) < len(reference) / 100_000


def _stack(hidden, activation="relu", dtype="float32", use_bias=True, dropout=False, head="linear"):
    layers = []
    for units in hidden:
        layers.append(ln.layers.Dense(units, activation, use_bias=use_bias))
        if dropout:
            layers.append(ln.layers.Dropout(0.5))
    layers.append(ln.layers.Dense(4, head))
    model = ln.Sequential(layers, seed=2, dtype=dtype)
    model.compile("adam", "sparse_categorical_crossentropy" if head == "softmax" else
                  ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.build((None, 30))
    return model


def _reference_logits(model, x):
    """float64 products and sums, each layer's outputs rounded to the model's dtype (then ReLU)."""
    a = x
    for layer in [la for la in model.layers if isinstance(la, ln.layers.Dense)]:
        z = a.astype(np.float64) @ layer.kernel.astype(np.float64)
        if layer.use_bias:
            z = z + layer.bias.astype(np.float64)
        a = z.astype(model.dtype)
        if layer is not model.layers[-1] and layer.activation_name == "relu":
            a = np.maximum(a, 0)
    return a


@pytest.mark.parametrize(("hidden", "kwargs"), [
    ((7, 5), {}), ((16,), {"use_bias": False}), ((9, 3), {"dropout": True}), ((6,), {"activation": "linear"}),
    ((8, 8), {"head": "softmax"}), ((5,), {"dtype": "float64"}),
])
def test_inference_on_a_few_rows_runs_the_dense_stack_in_one_call(path, monkeypatch, hidden, kwargs):
    path("1")
    model = _stack(hidden, **kwargs)
    x = np.random.default_rng(4).standard_normal((3, 30)).astype(model.dtype)
    calls = []
    kernels = fast.kernels()
    real = kernels.dense_stack
    monkeypatch.setattr(kernels, "dense_stack", lambda *a: (calls.append(len(a[0])), real(*a)))
    got = model.predict_logits(x)
    assert calls == [3]
    want = _reference_logits(model, x)
    if model.dtype == np.float32:
        np.testing.assert_array_max_ulp(got, want, maxulp=1)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    path("0")
    np.testing.assert_allclose(model.predict_logits(x), got, rtol=1e-5, atol=1e-6)
    path("1")
    out = model(x)  # the output activation still applies (softmax here, or none)
    np.testing.assert_allclose(np.asarray(out), model.outputs_from_logits(got), rtol=1e-6)


def test_other_networks_and_many_rows_run_layer_by_layer(path, monkeypatch):
    path("1")
    kernels = fast.kernels()
    monkeypatch.setattr(kernels, "dense_stack", None)  # a call would fail
    x = np.random.default_rng(5).standard_normal((2, 30)).astype(np.float32)
    assert _stack((6,), activation="tanh")._dense_stack is None
    norm = ln.Sequential([ln.layers.Normalization(), ln.layers.Dense(3)], seed=0)
    norm.compile("adam", ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    norm.build((None, 30))
    assert norm._dense_stack is None
    many = _stack((64,))
    assert many._dense_stack is not None
    many.predict_logits(np.zeros((1_000, 30), np.float32), batch_size=1_000)  # too many multiply-adds for one call
    changed = _stack((6,))
    changed.layers[0].activation = "sigmoid"  # after the plan was made: layer by layer again
    z = changed.predict_logits(x)
    a = 1 / (1 + np.exp(-(x.astype(np.float64) @ changed.layers[0].kernel + changed.layers[0].bias)))
    np.testing.assert_allclose(z, a @ changed.layers[1].kernel + changed.layers[1].bias, rtol=1e-5)


def test_the_dense_stack_kernel_lets_nan_through_as_numpy_does(path):
    model = _stack((5,))
    model.layers[0].kernel[3, 2] = np.nan
    x = np.random.default_rng(6).standard_normal((1, 30)).astype(np.float32)
    results = []
    for setting in ("1", "0"):
        path(setting)
        results.append(model.predict_logits(x))
    np.testing.assert_array_equal(np.isnan(results[0]), np.isnan(results[1]))
    assert np.isnan(results[0]).all()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("n", [1_000, 300_001])
@pytest.mark.parametrize("at", [0, -1])
def test_a_compiled_step_says_whether_every_new_weight_is_finite(path, name, n, at):
    """fit skips its separate finiteness pass over the weights when the kernel has checked them."""
    path("1")
    opt = OPTIMIZERS[name]()
    w, g = np.ones(n, np.float32), np.full(n, 0.5, np.float32)
    opt.build(n, np.float32)
    assert opt._step(w, g.copy(), np.empty_like(w)) is True
    g[at] = np.inf
    with np.errstate(all="ignore"):
        assert opt._step(w, g, np.empty_like(w)) is False
    assert not np.isfinite(w[at]) and np.isfinite(np.delete(w, at if at >= 0 else n - 1)).all()
    path("0")
    assert opt._step(np.ones(n, np.float32), np.ones(n, np.float32)) is None  # NumPy's step: not checked


def test_the_small_softmax_kernel_matches_numpy_and_hands_odd_rows_back(path, monkeypatch):
    """The compiled softmax of a few float32 rows sums in order (NumPy in SIMD lanes): within 1 ulp
    of NumPy's, nearly always equal; a row NumPy's fast path cannot do exactly goes to the exact path."""
    rng = np.random.default_rng(12)
    batches = [(rng.standard_normal((int(rng.integers(1, 9)), int(rng.integers(2, 30))))
                * rng.choice([0.01, 1, 10, 60])).astype(np.float32) for _ in range(2_000)]
    out = {}
    for setting in ("1", "0"):
        path(setting)
        out[setting] = np.concatenate([ln.ops.softmax(z).ravel() for z in batches])
    np.testing.assert_array_max_ulp(out["1"], out["0"], maxulp=1)
    assert np.count_nonzero(out["1"] != out["0"]) < len(out["0"]) / 100_000
    path("1")
    calls = []
    real = fast.kernels().softmax_rows
    monkeypatch.setattr(fast.kernels(), "softmax_rows", lambda *a: (calls.append(1), real(*a))[1])
    odd = np.array([[0.0, 1.0], [np.inf, 0.0], [-800.0, -801.0]], np.float32)
    np.testing.assert_array_equal(ln.ops.softmax(odd)[1], [1.0, 0.0])
    np.testing.assert_allclose(ln.ops.softmax(odd)[2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))],
                               rtol=1e-6)
    assert calls == [1, 1]  # tried, then handed back
    ln.ops.softmax(np.zeros((1, 5_000), np.float32))  # too large for one call
    assert calls == [1, 1]


def _relu_net(dtype: type, use_bias: bool) -> ln.Sequential:
    model = ln.Sequential([ln.layers.Dense(6, "relu", use_bias=use_bias), ln.layers.Dense(5, "relu"),
                           ln.layers.Dense(3)], seed=4, dtype=dtype)
    model.build((None, 4))
    return model


def _with_specials(a: np.ndarray) -> np.ndarray:
    """a with −0, 0, NaN (both signs), ±inf and subnormals in its first entries."""
    tiny = np.finfo(a.dtype).tiny
    a.flat[:9] = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, tiny / 8, -tiny / 8, -1.0]
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("folded", [False, True])  # x ends in a column of ones: the bias in the GEMM
@pytest.mark.parametrize("augment", [False, True])  # the output ends in one, for the next layer
def test_dense_relu_forward_and_backward_are_bit_identical_on_both_paths(path, monkeypatch, dtype, use_bias,
                                                                          folded, augment):
    rng = np.random.default_rng(5)
    x = _with_specials(rng.standard_normal((40, 4)).astype(dtype))
    x[20:] *= 1e3
    if folded:
        x = np.hstack([x, np.ones((40, 1), dtype)])
    grad_out = _with_specials(rng.standard_normal((40, 6)).astype(dtype))
    results, calls = {}, []
    for setting in ("1", "0"):
        path(setting)
        if setting == "1":
            kernels = fast.kernels()
            for name in ("bias_relu", "relu_backward"):
                real = getattr(kernels, name)
                monkeypatch.setattr(kernels, name, lambda *a, _real=real, _name=name: (calls.append(_name), _real(*a))[1])
        layer = _relu_net(dtype, use_bias).layers[0]
        if use_bias:  # not the initial zeros, which an extra or a missing bias add would not show
            layer.bias[...] = np.random.default_rng(8).standard_normal(6)
        with np.errstate(all="ignore"):
            out = layer.forward(x, True, augment=augment).copy()
            z = layer._cache[1].copy()
            dx = layer.backward(grad_out.copy(), need_input_grad=True).copy()
        results[setting] = [a.view(np.uint8) for a in (out, z, dx, layer._kernel_bias_grad.copy())]
    for compiled, reference in zip(results["1"], results["0"]):
        np.testing.assert_array_equal(compiled, reference)
    runs_bias_relu = (use_bias and not folded) or augment
    assert calls == ["bias_relu"] * runs_bias_relu + ["relu_backward"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_relu_kernels_treat_zeros_nan_and_inf_as_numpy_does(path, dtype):
    path("1")
    kernels = fast.kernels()
    rng = np.random.default_rng(6)
    z = _with_specials(rng.standard_normal((3, 40)).astype(dtype))
    z[1, :9] = z[0, :9]
    bias = _with_specials(rng.standard_normal(40).astype(dtype))[::-1].copy()
    bias[:9] = -0.0  # row 1: −0 + −0 stays −0, which ReLU must send to +0
    with np.errstate(all="ignore"):
        ref_z = z + bias
        ref_out = np.maximum(ref_z, np.zeros((), dtype))
        for add in (bias, np.empty(0, dtype)):
            zk, out = z.copy(), np.ones((3, 41), dtype)
            kernels.bias_relu(zk, add, out[:, :40])
            expect_z = ref_z if add.size else z
            np.testing.assert_array_equal(zk.view(np.uint8), expect_z.view(np.uint8))
            np.testing.assert_array_equal(out[:, :40].copy().view(np.uint8),
                                          np.maximum(expect_z, np.zeros((), dtype)).view(np.uint8))
            assert np.all(out[:, 40] == 1)
        assert np.signbit(zk[1, 0]) and not np.signbit(ref_out[1, 0])
        grad = _with_specials(rng.standard_normal((3, 40)).astype(dtype))
        grad[2] = -grad[2]
        expect = np.multiply(grad, np.greater(z, 0))
        kernels.relu_backward(grad, z)
    np.testing.assert_array_equal(grad.view(np.uint8), expect.view(np.uint8))
