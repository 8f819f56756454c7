"""Optimizers: hand-worked Keras 3 steps, dtypes, state and config round trips, validation,
and (when installed) agreement with PyTorch and Keras."""

import json
import math
import tracemalloc

import numpy as np
import pytest
from fast_paths import both_paths  # noqa: F401 - the fixture
from frameworks import need

from logitnet import optimizers
from logitnet.optimizers import SGD, Adam, RMSprop

pytestmark = pytest.mark.usefixtures("both_paths")  # every test on the compiled and the NumPy path

W0 = [0.5, -1.5]
GRADS = [[0.5, -1.0], [0.25, 2.0], [-0.75, 0.5]]  # three steps, two parameters


# Plain-Python scalar references, written from the Keras 3 update rules.
def ref_sgd(w, gs, learning_rate=0.01, momentum=0.0, nesterov=False):
    m = 0.0
    for g in gs:
        if momentum == 0:
            w -= learning_rate * g
            continue
        m = momentum * m - learning_rate * g
        w += momentum * m - learning_rate * g if nesterov else m
    return w


def ref_adam(w, gs, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    m = v = v_hat = 0.0
    for t, g in enumerate(gs, start=1):
        alpha = learning_rate * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)
        v += (g * g - v) * (1 - beta_2)
        v_hat = max(v_hat, v)
        w -= m * alpha / (math.sqrt(v_hat if amsgrad else v) + epsilon)
    return w


def ref_rmsprop(w, gs, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    v = avg = buf = 0.0
    for g in gs:
        v = rho * v + (1 - rho) * g * g
        avg = rho * avg + (1 - rho) * g
        increment = learning_rate * g / math.sqrt((v - avg * avg if centered else v) + epsilon)
        buf = momentum * buf + increment
        w -= buf if momentum > 0 else increment
    return w


CASES = [
    (SGD, ref_sgd, {"learning_rate": 0.1}),
    (SGD, ref_sgd, {"learning_rate": 0.1, "momentum": 0.9}),
    (SGD, ref_sgd, {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    (Adam, ref_adam, {"learning_rate": 0.01}),
    # beta_2 = 0.5: v falls at step 2 for one parameter and at step 3 for the other, so v_hat acts
    (Adam, ref_adam, {"learning_rate": 0.01, "beta_2": 0.5, "amsgrad": True}),
    (RMSprop, ref_rmsprop, {"learning_rate": 0.01}),
    (RMSprop, ref_rmsprop, {"learning_rate": 0.01, "centered": True}),
    (RMSprop, ref_rmsprop, {"learning_rate": 0.01, "momentum": 0.5}),
    (RMSprop, ref_rmsprop, {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, _, kw in CASES]


def run(opt, dtype, steps=GRADS, w0=W0):
    w = np.array(w0, dtype=dtype)
    for g in steps:
        assert opt.apply(w, np.array(g, dtype=dtype)) is None
    return w


@pytest.mark.parametrize("cls, ref, kw", CASES, ids=IDS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-14), (np.float32, 2e-6)])
def test_matches_hand_reference(cls, ref, kw, dtype, rtol):
    opt = cls(**kw)
    w = run(opt, dtype)
    expected = [ref(W0[i], [g[i] for g in GRADS], **kw) for i in range(len(W0))]
    assert w.dtype == dtype
    assert all(s.dtype == dtype for k, s in opt.get_state().items() if k != "iterations")
    np.testing.assert_allclose(w, expected, rtol=rtol)
    assert opt.iterations == 3


def test_worked_numbers():
    """Values worked out by hand (w0 = 1, g = 1 unless said)."""
    one = [[1.0]] * 3
    # momentum: m = -0.1, -0.19, -0.271; w = 0.9, 0.71, 0.439
    assert run(SGD(0.1, momentum=0.9), np.float64, one, [1.0])[0] == pytest.approx(0.439)
    # Nesterov: w += 0.9 m - 0.1: 1 - 0.09 - 0.1 = 0.81; - 0.171 - 0.1 = 0.539; - 0.2439 - 0.1
    assert run(SGD(0.1, 0.9, True), np.float64, one, [1.0])[0] == pytest.approx(0.1951)
    # Adam, epsilon 0, constant g: m = 1 - b1^t and v = 1 - b2^t cancel alpha: each step is lr
    assert run(Adam(0.25, epsilon=0.0), np.float64, one, [1.0])[0] == pytest.approx(0.25)
    # RMSprop rho 0.75, g = 2, lr 0.5, eps 0: v = 1 -> step 1; v = 1.75 -> step 1/sqrt(1.75)
    w = run(RMSprop(0.5, rho=0.75, epsilon=0.0), np.float64, [[2.0]] * 2, [3.0])[0]
    assert w == pytest.approx(3.0 - 1.0 - 1.0 / math.sqrt(1.75))
    # centered, rho 0.5, g = 2, lr 0.25: v = 2, avg = 1, den 1 -> 0.5; v = 3, avg = 1.5, den 0.75
    w = run(RMSprop(0.25, rho=0.5, epsilon=0.0, centered=True), np.float64, [[2.0]] * 2, [0.0])[0]
    assert w == pytest.approx(-0.5 - 0.5 / math.sqrt(0.75))
    # RMSprop momentum 0.5 on the first case: increments 1, 1/sqrt(1.75); buf = 1, 0.5 + 0.7559
    w = run(RMSprop(0.5, rho=0.75, momentum=0.5, epsilon=0.0), np.float64, [[2.0]] * 2, [3.0])[0]
    assert w == pytest.approx(3.0 - 1.0 - (0.5 + 1.0 / math.sqrt(1.75)))


def test_apply_is_in_place_and_builds_itself():
    opt, w = Adam(), np.zeros(4, np.float32)
    address = w.__array_interface__["data"][0]
    opt.apply(w, np.ones(4, np.float32))
    assert w.__array_interface__["data"][0] == address and np.all(w < 0)
    assert set(opt.get_state()) == {"momentum", "velocity", "iterations"}
    sgd = SGD(0.5)  # the learning rate can be changed between steps (as Keras callbacks do)
    sgd.learning_rate = 0.25
    assert run(sgd, np.float64, [[1.0]], [1.0])[0] == 0.75


@pytest.mark.parametrize("cls, ref, kw", CASES, ids=IDS)
def test_apply_allocates_no_large_temporaries(cls, ref, kw):
    opt, w, g = cls(**kw), np.zeros(100_000), np.ones(100_000)
    opt.apply(w, g)  # the first step builds the slots and scratch
    tracemalloc.start()
    opt.apply(w, g)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10_000  # bytes; one temporary array would be 800_000


def test_build_keeps_or_resets_state():
    opt = SGD(0.1, momentum=0.9)
    run(opt, np.float64)
    before = opt.get_state()
    before["momentum"][:] = 99.0  # get_state returns copies
    opt.build(2, np.float64)  # same size and dtype: state kept
    # m = 0.9 m - 0.1 g: -0.05, -0.07, 0.012 and 0.1, -0.11, -0.149
    assert opt.iterations == 3
    np.testing.assert_allclose(opt.get_state()["momentum"], [0.012, -0.149], rtol=1e-14)
    opt.build(5, "float64")  # new size: fresh zeros
    assert opt.iterations == 0 and np.array_equal(opt.get_state()["momentum"], np.zeros(5))
    opt.build(5, np.float32)  # new dtype
    assert opt.get_state()["momentum"].dtype == np.float32


@pytest.mark.parametrize("cls, ref, kw", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_round_trip_is_bit_identical(cls, ref, kw, dtype):
    rng = np.random.default_rng(7)
    grads = rng.standard_normal((5, 10)).astype(dtype)
    opt = cls(**kw)
    w = run(opt, dtype, grads[:3], rng.standard_normal(10))
    snapshot, w_snapshot = opt.get_state(), w.copy()
    assert snapshot["iterations"].shape == () and snapshot["iterations"].dtype == np.int64
    fresh, w2 = cls(**kw), w_snapshot.copy()
    fresh.set_state(snapshot)
    for g in grads[3:]:
        opt.apply(w, g)
        fresh.apply(w2, g)
    assert w2.tobytes() == w.tobytes() and fresh.iterations == opt.iterations == 5


def _adam_state(m=None, v=None, it=1, **extra):
    m, v = np.zeros(2) if m is None else m, np.zeros(2) if v is None else v
    return {"momentum": m, "velocity": v, "iterations": np.asarray(it), **extra}


@pytest.mark.parametrize("state, match", [
    ({"iterations": np.array(1)}, "keys"), (_adam_state(extra=np.zeros(2)), "keys"),
    (_adam_state(np.zeros(3), np.zeros(3)), "shape"),
    (_adam_state(np.zeros(2, np.float32)), "dtype"),
    (_adam_state(it=[1]), "0-d"), (_adam_state(it=1.5), "integer"), (_adam_state(it=-1), ">= 0"),
])
def test_set_state_validates(state, match):
    opt = Adam()
    opt.build(2, np.float64)
    with pytest.raises(ValueError, match=match):
        opt.set_state(state)
    assert opt.iterations == 0 and not opt.get_state()["momentum"].any()


def test_set_state_on_unbuilt_optimizer():
    opt = Adam()  # builds itself from the slots
    opt.set_state(_adam_state(np.ones(3, np.float32), np.ones(3, np.float32), 4))
    assert opt.iterations == 4 and opt.get_state()["velocity"].dtype == np.float32
    for bad in [_adam_state(np.zeros(2), np.zeros(3)), _adam_state(np.zeros((2, 2)), np.zeros(4)),
                _adam_state(np.zeros(2, int), np.zeros(2, int)),
                _adam_state(np.zeros(2, np.float32))]:
        with pytest.raises(ValueError, match="state"):
            Adam().set_state(bad)
    sgd = SGD()  # no slots: the count survives the first, implicit build
    sgd.set_state({"iterations": np.array(7)})
    sgd.apply(np.zeros(2), np.ones(2))
    assert sgd.iterations == 8


@pytest.mark.parametrize("cls, ref, kw", CASES, ids=IDS)
def test_config_round_trip(cls, ref, kw):
    opt = cls(**kw, name="mine")
    config = json.loads(json.dumps(opt.get_config()))
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == opt.get_config() and clone.name == "mine"
    via_get = optimizers.get({"class_name": cls.__name__, "config": config})
    assert via_get.get_config() == config


def test_from_config_accepts_inert_keras_keys_only():
    keras_like = {"name": "adam", "learning_rate": 0.002, "weight_decay": None, "clipnorm": None,
                  "global_clipnorm": None, "clipvalue": None, "use_ema": False,
                  "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None, "beta_1": 0.8, "beta_2": 0.99,
                  "epsilon": 1e-7, "amsgrad": False}
    assert Adam.from_config(keras_like).beta_1 == 0.8
    with pytest.raises(ValueError, match="clipnorm"):
        Adam.from_config({**keras_like, "clipnorm": 1.0})
    with pytest.raises(ValueError, match="bogus"):
        Adam.from_config({"bogus": 1})


def test_get():
    for name, cls in [("sgd", SGD), ("SGD", SGD), ("Adam", Adam), ("RMSprop", RMSprop)]:
        opt = optimizers.get(name)
        assert type(opt) is cls and opt.get_config() == cls().get_config()
    assert optimizers.get("adam") is not optimizers.get("adam")
    opt = RMSprop()
    assert optimizers.get(opt) is opt
    assert SGD().name == "SGD" and Adam().name == "adam" and RMSprop().name == "rmsprop"
    for bad in ["adagrad", {"class_name": "Nadam", "config": {}}, 3, None]:
        with pytest.raises(ValueError, match="adam.*rmsprop.*sgd"):
            optimizers.get(bad)


@pytest.mark.parametrize("make, match", [
    *[(lambda v=v: SGD(v), "learning_rate") for v in [0.0, -0.1, math.nan, math.inf, "0.1", True]],
    *[(lambda v=v: SGD(momentum=v), "momentum") for v in [-0.1, 1.0, math.nan]],
    (lambda: SGD(nesterov=1), "nesterov"),
    (lambda: Adam(beta_1=1.0), "beta_1"), (lambda: Adam(beta_1=-0.5), "beta_1"),
    (lambda: Adam(beta_2=1.5), "beta_2"), (lambda: Adam(beta_2=math.nan), "beta_2"),
    *[(lambda v=v: Adam(epsilon=v), "epsilon") for v in [-1e-7, math.inf, math.nan]],
    (lambda: Adam(amsgrad="yes"), "amsgrad"),
    (lambda: RMSprop(rho=1.0), "rho"), (lambda: RMSprop(rho=-0.1), "rho"),
    (lambda: RMSprop(momentum=1.0), "momentum"), (lambda: RMSprop(epsilon=-1.0), "epsilon"),
    (lambda: RMSprop(centered=None), "centered"), (lambda: RMSprop(name=""), "name"),
    (lambda: setattr(SGD(), "learning_rate", -1), "learning_rate.*-1"),
    (lambda: SGD().build(-1, "float64"), "n_params"), (lambda: SGD().build(2.0, "f8"), "n_params"),
    (lambda: SGD().build(3, np.int32), "int32"), (lambda: SGD().build(3, "f9"), "f9"),
])
def test_constructor_and_build_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("params, grads, match", [
    (np.zeros((2, 2)), np.zeros((2, 2)), "1-D"),
    (np.zeros(2, np.int64), np.zeros(2, np.int64), "float"),
    ([0.0, 0.0], np.zeros(2), "1-D"),
    (np.zeros(2), np.zeros(3), r"shape \(2,\)"),
    (np.zeros(2), np.zeros(2, np.float32), "float64"),
    (np.zeros(2, np.float32), np.zeros(2, np.float32), "built for"),
    (np.zeros(3), np.zeros(3), "built for"),
])
def test_apply_validates(params, grads, match):
    opt = Adam()
    opt.build(2, np.float64)
    with pytest.raises(ValueError, match=match):
        opt.apply(params, grads)
    assert opt.iterations == 0


def _trajectory(dtype=np.float64, n=20, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype), rng.standard_normal((steps, n)).astype(dtype)


# torch's SGD momentum buffer b = μb + g, w -= ηb is Keras' m = -ηb for a constant η; Nesterov and
# RMSprop's momentum likewise; torch's epsilon goes outside the sqrt and after bias correction, so
# epsilon = 0 makes the rules identical.
TORCH_CASES = [("SGD", {}), ("SGD", {"momentum": 0.9}),
               ("SGD", {"momentum": 0.9, "nesterov": True}),
               ("Adam", {"eps": 0.0}), ("Adam", {"eps": 0.0, "amsgrad": True}),
               ("RMSprop", {"alpha": 0.9, "eps": 0.0}),
               ("RMSprop", {"alpha": 0.9, "eps": 0.0, "momentum": 0.5, "centered": True})]
TORCH_TO_KERAS = {"eps": "epsilon", "alpha": "rho"}


@pytest.mark.compare
@pytest.mark.parametrize("name, torch_kw", TORCH_CASES)
def test_matches_torch(name, torch_kw):
    torch = need("torch")
    w0, grads = _trajectory()
    w, p = w0.copy(), torch.nn.Parameter(torch.tensor(w0))
    topt = getattr(torch.optim, name)([p], lr=0.01, **torch_kw)
    keras_kw = {TORCH_TO_KERAS.get(k, k): v for k, v in torch_kw.items()}
    opt = getattr(optimizers, name)(0.01, **keras_kw)
    for g in grads:
        opt.apply(w, g)
        p.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-12, atol=1e-15)


# Dyadic hyperparameters: Keras' TensorFlow backend rounds momentum, beta_1, beta_2 (and the
# learning rate, stored in floatx) to float32 before casting them to float64.
KERAS_CASES = [
    ("SGD", {"learning_rate": 0.125}),
    ("SGD", {"learning_rate": 0.125, "momentum": 0.875}),
    ("SGD", {"learning_rate": 0.125, "momentum": 0.875, "nesterov": True}),
    ("Adam", {"learning_rate": 0.0625, "beta_1": 0.875, "beta_2": 0.9990234375}),
    ("Adam", {"learning_rate": 0.0625, "beta_1": 0.875, "beta_2": 0.75, "amsgrad": True}),
    ("RMSprop", {"learning_rate": 0.0625, "rho": 0.875}),
    ("RMSprop", {"learning_rate": 0.0625, "rho": 0.875, "momentum": 0.5, "centered": True}),
]


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras under NumPy 2
@pytest.mark.parametrize("name, kw", KERAS_CASES)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_matches_keras(name, kw, dtype, rtol):
    keras = need("keras")
    w0, grads = _trajectory(dtype)
    w, var = w0.copy(), keras.Variable(w0.copy(), dtype=np.dtype(dtype).name)
    kopt = getattr(keras.optimizers, name)(**kw)
    mine = optimizers.get(keras.optimizers.serialize(kopt))
    assert type(mine).__name__ == name
    for g in grads:
        kopt.apply([keras.ops.convert_to_tensor(g)], [var])
        mine.apply(w, g)
    np.testing.assert_allclose(w, keras.ops.convert_to_numpy(var.value), rtol=rtol, atol=rtol / 10)
    assert mine.iterations == int(keras.ops.convert_to_numpy(kopt.iterations)) == len(grads)


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9, nesterov=True), lambda: Adam(0.01, amsgrad=True),
                                  lambda: RMSprop(0.01, momentum=0.5, centered=True)])
def test_chunked_parallel_updates_equal_whole_vector_updates(make, monkeypatch):
    # Large models update in cache-sized chunks over the ops' threads; the result must not change.
    import logitnet.optimizers as optimizers_module
    from logitnet import ops

    rng = np.random.default_rng(0)
    n = 3 * (1 << 17) + 12345
    start = rng.normal(size=n).astype(np.float32)
    grads = [rng.normal(size=n).astype(np.float32) for _ in range(3)]

    def run(chunk: int, threads: int) -> np.ndarray:
        monkeypatch.setattr(optimizers_module, "_CHUNK", chunk)
        ops.set_num_threads(threads)
        w, opt = start.copy(), make()
        for g in grads:
            opt.apply(w, g)
        return w

    try:
        whole = run(1 << 30, 1)
        np.testing.assert_array_equal(run(1 << 17, 1), whole)
        np.testing.assert_array_equal(run(1 << 17, 2), whole)
        np.testing.assert_array_equal(run(1 << 12, 2), whole)
    finally:
        ops.set_num_threads(None)


@pytest.mark.parametrize("chunk", [1 << 30, 1 << 12])
def test_apply_backup_holds_the_parameters_from_before_the_step(chunk, monkeypatch):
    # The model undoes a diverged step from this copy, taken chunk by chunk during the update.
    import logitnet.optimizers as optimizers_module

    monkeypatch.setattr(optimizers_module, "_CHUNK", chunk)
    rng = np.random.default_rng(1)
    w = rng.normal(size=10_000).astype(np.float32)
    before, backup, opt = w.copy(), np.full_like(w, np.nan), Adam(0.01)
    opt.apply(w, rng.normal(size=w.size).astype(np.float32), backup=backup)
    np.testing.assert_array_equal(backup, before)
    assert not np.array_equal(w, before)
    with pytest.raises(ValueError, match="backup must have the shape"):
        opt.apply(w, w.copy(), backup=np.empty(3, np.float32))
    with pytest.raises(ValueError, match="backup must have the shape"):
        opt.apply(w, w.copy(), backup=np.empty(w.size, np.float64))


@pytest.mark.parametrize("chunk", [1 << 30, 1 << 11])
@pytest.mark.parametrize("cls, ref, kw", CASES, ids=IDS)
def test_step_with_grads_as_scratch_equals_apply(cls, ref, kw, chunk, monkeypatch):
    # The model lets the update reuse the gradient array as scratch; the result must not change.
    import logitnet.optimizers as optimizers_module

    monkeypatch.setattr(optimizers_module, "_CHUNK", chunk)
    rng = np.random.default_rng(3)
    n = 5000
    start = rng.normal(size=n).astype(np.float32)
    grads = [rng.normal(size=n).astype(np.float32) for _ in range(3)]
    w_apply, w_step = start.copy(), start.copy()
    a, b = cls(**kw), cls(**kw)
    b.build(n, np.float32)
    for g in grads:
        a.apply(w_apply, g.copy())
        b._step(w_step, g.copy(), grads_as_scratch=True)
    np.testing.assert_array_equal(w_step, w_apply)


@pytest.mark.parametrize("value", [10**400, 10**5000], ids=["10**400", "10**5000"])
def test_an_integer_beyond_float_range_is_refused_by_name(value):
    with pytest.raises(ValueError, match="learning_rate must be a finite real number"):
        Adam(learning_rate=value)
    with pytest.raises(ValueError, match="momentum must be a finite real number"):
        SGD(0.1, momentum=value)
