"""Edges of the optimizers that mutation testing found unguarded: Keras' defaults and slot names,
the slots' values (saved with a model), empty and unbuilt optimizers, state validation, lookups
and the messages that name the bad argument (values worked by hand from the Keras 3 rules)."""

from __future__ import annotations

import numpy as np
import pytest
from fast_paths import both_paths  # noqa: F401 - the fixture

from logitnet import optimizers
from logitnet.optimizers import SGD, Adam, Optimizer, RMSprop

pytestmark = pytest.mark.usefixtures("both_paths")  # every test on the compiled and the NumPy path


def test_keras_default_learning_rates():
    assert SGD().learning_rate == 0.01
    assert Adam().learning_rate == 0.001
    assert RMSprop().learning_rate == 0.001


@pytest.mark.parametrize("make, slots", [
    (lambda: RMSprop(), ["iterations", "velocity"]),
    (lambda: RMSprop(momentum=0.5), ["iterations", "momentum", "velocity"]),
    (lambda: RMSprop(centered=True), ["average_gradient", "iterations", "velocity"]),
    (lambda: SGD(), ["iterations"]),
    (lambda: SGD(momentum=0.9), ["iterations", "momentum"]),
    (lambda: Adam(), ["iterations", "momentum", "velocity"]),
    (lambda: Adam(amsgrad=True), ["iterations", "momentum", "velocity", "velocity_hat"]),
])
def test_slots_are_keras_variables(make, slots):
    opt = make()
    opt.apply(np.zeros(2), np.ones(2))
    assert sorted(opt.get_state()) == slots


def test_centered_rmsprop_keeps_the_running_mean_of_the_gradient():
    # Keras: average_gradient = ρ·avg + (1 − ρ)·g; with ρ = 0.5: 0.5·g1, then 0.25·g1 + 0.5·g2.
    opt = RMSprop(learning_rate=0.01, rho=0.5, centered=True)
    w = np.array([1.0, -1.0])
    opt.apply(w, np.array([2.0, -4.0]))
    np.testing.assert_array_equal(opt.get_state()["average_gradient"], [1.0, -2.0])
    np.testing.assert_array_equal(opt.get_state()["velocity"], [2.0, 8.0])  # 0.5·g²
    opt.apply(w, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(opt.get_state()["average_gradient"], [1.0, -0.5])


def test_unbuilt_and_empty_optimizers():
    assert {k: int(v) for k, v in SGD().get_state().items()} == {"iterations": 0}
    opt = Adam()
    opt.apply(np.zeros(0, np.float32), np.zeros(0, np.float32))  # a model with no parameters
    assert opt.iterations == 1 and opt.get_state()["momentum"].shape == (0,)
    # A fresh optimizer's state (iterations 0) restores into another fresh one.
    fresh = Adam()
    fresh.set_state(Adam().get_state() | {"momentum": np.zeros(3), "velocity": np.zeros(3)})
    assert fresh.iterations == 0 and fresh.get_state()["velocity"].shape == (3,)
    with pytest.raises(TypeError, match=r"^Optimizer does not define its update rule$"):
        Optimizer(0.1, "base").apply(np.zeros(2), np.zeros(2))


def test_apply_reports_what_it_was_given():
    opt = SGD()
    with pytest.raises(ValueError, match=r"params must be a 1-D float16/32/64 NumPy array, got list with "
                                         r"shape \(2,\) and dtype None"):
        opt.apply([1.0, 2.0], np.zeros(2))
    with pytest.raises(ValueError, match=r"got ndarray with shape \(2, 2\) and dtype float32"):
        opt.apply(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    opt.apply(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"like params, got shape \(2,\) and dtype float32"):
        opt.apply(np.zeros(3), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"like params, got shape \(3,\) and dtype None"):
        opt.apply(np.zeros(3), [0.0, 0.0, 0.0])


def test_set_state_says_which_shape_and_dtype_it_expects():
    built = Adam()
    built.build(3, np.float32)
    state = built.get_state()
    with pytest.raises(ValueError, match=r"state\['momentum'\] has shape \(2,\) and dtype float32; expected "
                                         r"shape \(3,\) and dtype float32, the same for every slot"):
        built.set_state(state | {"momentum": np.zeros(2, np.float32)})
    unbuilt = Adam()
    with pytest.raises(ValueError, match=r"has shape \(2, 2\) and dtype float64; expected shape \(n_params,\) "
                                         r"and dtype float64"):
        unbuilt.set_state(state | {"momentum": np.zeros((2, 2)), "velocity": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"has shape \(4,\) and dtype int64; expected shape \(4,\) and dtype "
                                         r"float16/32/64"):
        unbuilt.set_state(state | {"momentum": np.zeros(4, np.int64), "velocity": np.zeros(4, np.int64)})


def test_repr_and_lookups():
    assert repr(SGD(momentum=0.5)) == "SGD(name='SGD', learning_rate=0.01, momentum=0.5, nesterov=False)"
    adam = optimizers.get({"class_name": "Adam"})
    assert isinstance(adam, Adam) and adam.get_config() == Adam().get_config()
    with pytest.raises(ValueError, match=r"unknown optimizer class_name 3; known: \['adam', 'rmsprop', 'sgd'\]"):
        optimizers.get({"class_name": 3})


@pytest.mark.parametrize("make, name", [
    (lambda: SGD(nesterov=1), "nesterov"), (lambda: Adam(beta_1=1.0), "beta_1"),
    (lambda: Adam(beta_2=-0.1), "beta_2"), (lambda: Adam(epsilon=-1.0), "epsilon"),
    (lambda: Adam(epsilon="small"), "epsilon"), (lambda: Adam(amsgrad="yes"), "amsgrad"),
    (lambda: RMSprop(rho=2.0), "rho"), (lambda: RMSprop(momentum=1.0), "momentum"),
    (lambda: RMSprop(epsilon=float("inf")), "epsilon"), (lambda: RMSprop(centered=None), "centered"),
])
def test_a_bad_hyperparameter_is_named(make, name):
    with pytest.raises(ValueError, match=rf"^{name} must "):
        make()


@pytest.mark.parametrize(("make", "slot"), [
    (lambda: SGD(0.1, momentum=0.9), "momentum"),
    (lambda: Adam(0.1), "momentum"), (lambda: Adam(0.1), "velocity"),
    (lambda: RMSprop(0.1), "velocity"), (lambda: RMSprop(0.1, momentum=0.9), "momentum"),
    (lambda: RMSprop(0.1, centered=True), "average_gradient"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_slots_are_flushed_to_zero(make, slot, dtype):
    """A slot whose gradient stays 0 decays into the subnormal range, where (0 − m)·(1 − β) rounds
    to 0 and it would stay, slowing every later step: on the first step (and every FLUSH_EVERY) it
    becomes 0 (sign kept), as in TensorFlow's CPU kernels; normal values, inf and NaN are not."""
    opt = make()
    n = 7
    opt.build(n, dtype)
    state = opt.get_state()
    tiny = np.finfo(dtype).tiny
    values = np.array([tiny / 4, -tiny / 8, tiny * 4, -1.0, np.inf, np.nan, tiny * 0.999], dtype)
    if slot == "velocity":  # a velocity is never negative
        values = np.abs(values)
    state[slot] = values.copy()
    opt.set_state(state)
    with np.errstate(all="ignore"):
        opt.apply(np.zeros(n, dtype), np.zeros(n, dtype))
    got = opt.get_state()[slot]
    assert got[0] == 0 and got[1] == 0 and got[6] == 0  # just below the smallest normal: flushed too
    assert np.signbit(got[1]) == (slot != "velocity")  # -tiny/8 -> -0.0
    assert got[2] != 0 and abs(got[2]) >= tiny  # 4·tiny decays by at most 0.9 per step: still normal
    assert got[3] != 0 and not np.isfinite(got[4]) and np.isnan(got[5])  # (Adam's inf − inf is NaN)


@pytest.mark.parametrize("iterations, flushed", [(0, True), (1, False), (15, False), (16, True), (32, True)])
def test_slots_are_flushed_every_flush_every_steps(iterations, flushed):
    assert optimizers.FLUSH_EVERY == 16
    opt = SGD(0.1, momentum=0.9)
    opt.build(2, np.float32)
    tiny = np.finfo(np.float32).tiny
    opt.set_state({"iterations": np.array(iterations), "momentum": np.array([tiny / 4, 1.0], np.float32)})
    opt.apply(np.zeros(2, np.float32), np.zeros(2, np.float32))
    m = opt.get_state()["momentum"]
    assert (m[0] == 0) == flushed and m[1] == np.float32(0.9)
