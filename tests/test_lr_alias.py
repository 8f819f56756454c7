"""TF 2.x's `lr=`: the deprecated alias of learning_rate, accepted by every optimizer."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from logitnet import optimizers
from logitnet.optimizers import Optimizer

ALL = sorted((cls for _, cls in inspect.getmembers(optimizers, inspect.isclass)
              if issubclass(cls, Optimizer) and cls is not Optimizer), key=lambda c: c.__name__)


def test_every_optimizer_is_covered():
    assert {c.__name__ for c in ALL} >= {"SGD", "Adam", "RMSprop"}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_lr_warns_at_the_callers_line_and_sets_learning_rate(cls):
    with pytest.warns(DeprecationWarning, match="the lr argument is deprecated; use learning_rate") as record:
        opt = cls(lr=0.0375)
    assert len(record) == 1 and record[0].filename == __file__  # stacklevel: this line, not the library
    assert opt.learning_rate == 0.0375
    config = opt.get_config()
    assert "lr" not in config and config["learning_rate"] == 0.0375
    assert config == cls(learning_rate=0.0375).get_config()
    with pytest.warns(DeprecationWarning):
        other = cls(lr=0.5, name="other")  # with the other arguments by keyword
    assert (other.learning_rate, other.name) == (0.5, "other")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_positional_and_keyword_learning_rate_do_not_warn(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cls(0.02).learning_rate == 0.02
        assert cls(learning_rate=0.03).learning_rate == 0.03
        assert "lr" not in inspect.signature(cls).parameters


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_lr_with_learning_rate_is_refused(cls):
    with pytest.raises(ValueError, match=r"got both lr=0\.5 and learning_rate=0\.01"):
        cls(0.01, lr=0.5)
    with pytest.raises(ValueError, match=r"got both lr=0\.5 and learning_rate=0\.01"):
        cls(learning_rate=0.01, lr=0.5)
    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"), \
            pytest.warns(DeprecationWarning):
        cls(lr=-1.0)
    with pytest.raises(TypeError):
        cls(lr=0.1, not_an_argument=1)


def test_lr_gives_the_same_steps_and_old_configs_load():
    params = [np.array([1.0, -2.0, 0.5], np.float32) for _ in range(2)]
    grads = np.array([0.3, -0.1, 2.0], np.float32)
    with pytest.warns(DeprecationWarning):
        old = optimizers.Adam(lr=0.01, amsgrad=True)
    new = optimizers.Adam(0.01, amsgrad=True)
    for _ in range(3):
        old.apply(params[0], grads)
        new.apply(params[1], grads)
    np.testing.assert_array_equal(params[0], params[1])
    with pytest.warns(DeprecationWarning):  # a Keras 2 config spelled lr
        opt = optimizers.get({"class_name": "SGD", "config": {"lr": 0.2, "momentum": 0.5}})
    assert (opt.learning_rate, opt.momentum) == (0.2, 0.5) and "lr" not in opt.get_config()


def test_subclasses_get_the_alias_unless_they_define_lr():
    class Slow(optimizers.SGD):
        def __init__(self, learning_rate: float = 0.001, name: str = "slow") -> None:
            super().__init__(learning_rate, name=name)

    class OwnLr(optimizers.SGD):
        def __init__(self, lr: float = 0.1, learning_rate: float = 0.01) -> None:
            super().__init__(learning_rate)
            self.own_lr = lr

    with pytest.warns(DeprecationWarning) as record:
        assert Slow(lr=0.25).learning_rate == 0.25
    assert len(record) == 1 and record[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        own = OwnLr(lr=0.5)
    assert (own.own_lr, own.learning_rate) == (0.5, 0.01)
