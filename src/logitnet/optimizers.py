"""Keras 3 optimizers (SGD, Adam, RMSprop) on one flat parameter vector, updated in place.

The model keeps all its parameters in one contiguous 1-D array; an optimizer keeps its slots
(momentum, velocity, ...) as arrays of the same length and dtype, and updates with a few vectorised
NumPy operations into preallocated scratch, in the order Keras 3 uses (keras/src/optimizers/*.py),
so float32 stays float32 and rounds as Keras does (bit for bit with its TensorFlow backend).
Hyperparameters, the learning rate included, are cast straight to the parameters' dtype. In
float64, Keras' TensorFlow backend first rounds the learning rate (a floatx variable), SGD's
momentum and Adam's beta_1, beta_2 to float32, so its steps differ from these by about 1e-7
relative (up to ~1e-5 after a few Adam steps); values exact in float32 agree to rounding.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np

from . import backend
from .ops import fast
from .ops._core import for_row_blocks

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_CHUNK = 1 << 17  # elements per chunk of the flat parameter vector (measured best on 2 cores)
# Base-optimizer keys of a Keras config that are harmless when at these values (features we lack).
_KERAS_INERT = {"weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
                "use_ema": False, "ema_overwrite_frequency": None, "loss_scale_factor": None,
                "gradient_accumulation_steps": None}
# The compiled kernels' "none" (no backup, no such slot), by dtype: they run for float32/64 only.
_NONE = {t: np.empty(0, t) for t in (np.float32, np.float64)}
# Every this many steps (from the first), the slots' subnormal values are set to 0; see _flush.
FLUSH_EVERY = 16
# Per float size: the unsigned view, its magnitude bits, and the largest subnormal's bits.
_SUBNORMAL_BITS = {2: (np.uint16, 0x7FFF, 0x03FF), 4: (np.uint32, 0x7FFF_FFFF, 0x007F_FFFF),
                   8: (np.uint64, 0x7FFF_FFFF_FFFF_FFFF, 0x000F_FFFF_FFFF_FFFF)}


def _flush(slot: np.ndarray, scratch: np.ndarray) -> None:
    """Set the slot's subnormal values to 0 (sign kept), in place, as TensorFlow's CPU kernels do.

    A slot whose gradient stays 0 (a dead ReLU unit's weights) decays into the subnormal range and
    stays there ((0 − m)·(1 − β) rounds to 0), and arithmetic on subnormals is many times slower
    (measured: an Adam step on 109,386 parameters, 79,386 of them subnormal, 780 µs against 57).
    The optimizers do this every FLUSH_EVERY steps, on both paths alike: a value is subnormal for
    at most that many steps, and the test (integer passes on the bits, about 30 µs for 10⁵
    float32) is paid once in that many. `scratch`, like slot, is overwritten.
    """
    if not slot.size:
        return
    kind, magnitude, largest = _SUBNORMAL_BITS[slot.itemsize]
    bits = scratch.view(kind)
    np.bitwise_and(slot.view(kind), kind(magnitude), out=bits)
    bits -= kind(1)  # 0 wraps round to the largest integer: zeros are not subnormal
    if bits.min() < largest:  # some 0 < |x| < tiny
        slot[bits < largest] *= 0


def _real(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range, e.g. 10**400
        raise ValueError(f"{name} must be a finite real number, got an integer of "
                         f"{int(value).bit_length()} bits") from None


def _positive(value: object, name: str) -> float:
    x = _real(value, name)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return x


def _unit(value: object, name: str) -> float:
    x = _real(value, name)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return x


def _nonneg(value: object, name: str) -> float:
    x = _real(value, name)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return x


def _accept_lr(init):
    """Wrap an optimizer's __init__ to take TF 2.x's `lr=` as the deprecated alias of learning_rate."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if "lr" in kwargs:
            lr = kwargs.pop("lr")
            given = signature.bind_partial(self, *args, **kwargs).arguments
            if "learning_rate" in given:
                raise ValueError(f"{type(self).__name__} got both lr={lr!r} and "
                                 f"learning_rate={given['learning_rate']!r}; lr is the deprecated "
                                 "name of learning_rate: pass learning_rate only")
            warnings.warn("the lr argument is deprecated; use learning_rate", DeprecationWarning,
                          stacklevel=2)
            kwargs["learning_rate"] = lr
        init(self, *args, **kwargs)

    return wrapper


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class Hyperparameter(float):
    """A hyperparameter's value: a float that also answers `.numpy()` (in `backend.floatx()`), as
    the Keras variable holding it does."""

    def numpy(self) -> np.floating:
        return np.dtype(backend.floatx()).type(self)


class Optimizer:
    """Base class: flat slots, `apply(params, grads)` in place, state and config round trips."""

    n_scratch = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each subclass's own __init__ takes `lr=` too (once here, not in every class).
        init = cls.__dict__.get("__init__")
        if init is not None:
            params = inspect.signature(init).parameters
            if "learning_rate" in params and "lr" not in params:
                cls.__init__ = _accept_lr(init)

    def __init__(self, learning_rate: float, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        self.learning_rate = learning_rate
        self.iterations = 0
        self._n: int | None = None
        self._dtype: np.dtype | None = None
        self._slots: dict[str, np.ndarray] = {}
        self._scratch: list[np.ndarray] = []

    @property
    def learning_rate(self) -> float:
        """The step size (settable, e.g. by a learning-rate callback); a float that also answers
        `.numpy()`, as Keras' learning-rate variable does."""
        return Hyperparameter(self._learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _positive(value, "learning_rate")

    @property
    def lr(self) -> float:
        """TF 2.x's old name of `learning_rate` (course code reads `model.optimizer.lr`)."""
        return self.learning_rate

    @lr.setter
    def lr(self, value: float) -> None:
        self.learning_rate = value

    def slot_names(self) -> tuple[str, ...]:
        """Names of the slot arrays this configuration keeps (Keras' variable names)."""
        return ()

    def build(self, n_params: int, dtype: np.dtype | str | type) -> None:
        """Allocate zeroed slots for a flat parameter vector (n_params,) of float `dtype`."""
        if isinstance(n_params, (bool, np.bool_)) or not isinstance(n_params, Integral) \
                or n_params < 0:
            raise ValueError(f"n_params must be an integer >= 0, got {n_params!r}")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be float16, float32 or float64, got {dtype!r}") from None
        if dt not in _FLOAT_DTYPES:
            raise ValueError(f"dtype must be float16, float32 or float64, got {dt}")
        n = int(n_params)
        if n == self._n and dt == self._dtype:
            return
        if self._n is not None:  # a re-build starts afresh; a first build keeps set_state's count
            self.iterations = 0
        self._n, self._dtype = n, dt
        self._slots = {key: np.zeros(n, dt) for key in self.slot_names()}
        self._scratch = [np.empty(n, dt) for _ in range(self.n_scratch)]

    def apply(self, params: np.ndarray, grads: np.ndarray, backup: np.ndarray | None = None) -> None:
        """One Keras update step in place on params (n_params,) given grads (n_params,).

        With `backup` (n_params,), the parameters are first copied there, chunk by chunk as the
        update reaches them (while in cache), so a caller can undo a step that diverged.
        """
        if not isinstance(params, np.ndarray) or params.ndim != 1 \
                or params.dtype not in _FLOAT_DTYPES:
            raise ValueError(
                "params must be a 1-D float16/32/64 NumPy array, got "
                f"{type(params).__name__} with shape {np.shape(params)} and dtype "
                f"{getattr(params, 'dtype', None)}"
            )
        if self._n is None:
            self.build(params.shape[0], params.dtype)
        if params.shape != (self._n,) or params.dtype != self._dtype:
            raise ValueError(
                f"params of shape {params.shape} and dtype {params.dtype} do not match the "
                f"optimizer, built for shape ({self._n},) and dtype {self._dtype}; "
                "call build() again"
            )
        if not isinstance(grads, np.ndarray) or grads.shape != params.shape \
                or grads.dtype != params.dtype:
            raise ValueError(
                f"grads must be a NumPy array of shape {params.shape} and dtype {params.dtype} "
                f"like params, got shape {np.shape(grads)} and dtype "
                f"{getattr(grads, 'dtype', None)}"
            )
        if backup is not None and (backup.shape != params.shape or backup.dtype != params.dtype):
            raise ValueError(f"backup must have the shape {params.shape} and dtype {params.dtype} of params")
        self._step(params, grads, backup)

    def _step(self, params: np.ndarray, grads: np.ndarray, backup: np.ndarray | None = None,
              grads_as_scratch: bool = False) -> bool | None:
        """apply() without its checks, for a caller that built the optimizer for these arrays.
        Returns whether every new parameter is finite when the compiled path saw it (else None).

        grads_as_scratch=True lets the update overwrite grads once it has read them (each rule
        reads g before it writes its last scratch array): one array less passes through the cache.
        """
        f = self._dtype.type
        n = self._n
        kernels = fast.for_dtype(self._dtype)
        update = None if kernels is None else self._fused(kernels, f)
        if update is not None:
            finite = self._fused_step(update, params, grads, backup)
            self.iterations += 1
            return finite
        if n <= _CHUNK:
            if backup is not None:
                np.copyto(backup, params)
            scratch = self._scratch[:-1] + [grads] if grads_as_scratch else self._scratch
            self._update(params, grads, f, self._slots, scratch)
        else:
            # Chunks of the flat vector go through every operation while in cache, spread over the
            # ops' threads; each element sees the same operations, so results do not change.
            def work(lo: int, hi: int) -> None:
                a, b = lo * _CHUNK, min(hi * _CHUNK, n)
                if backup is not None:
                    np.copyto(backup[a:b], params[a:b])
                scratch = [t[a:b] for t in self._scratch]
                if grads_as_scratch:
                    scratch[-1] = grads[a:b]
                self._update(params[a:b], grads[a:b], f, {k: v[a:b] for k, v in self._slots.items()}, scratch)

            for_row_blocks(-(-n // _CHUNK), _CHUNK, work, _CHUNK, parallel_min=2 * _CHUNK)
        self.iterations += 1
        return None

    def _fused_step(self, update: Any, params: np.ndarray, grads: np.ndarray, backup: np.ndarray | None) -> bool:
        """`_step` on the compiled path: one pass per chunk, chunks shared among the ops' threads;
        whether every new parameter is finite."""
        n, none = self._n, _NONE[self._dtype.type]
        if n <= _CHUNK:
            return not update(params, grads, self._slots, none if backup is None else backup)
        bad = []

        def work(lo: int, hi: int) -> None:
            a, b = lo * _CHUNK, min(hi * _CHUNK, n)
            bad.append(update(params[a:b], grads[a:b], {k: v[a:b] for k, v in self._slots.items()},
                              none if backup is None else backup[a:b]))

        for_row_blocks(-(-n // _CHUNK), _CHUNK, work, _CHUNK, parallel_min=2 * _CHUNK)
        return not any(bad)

    def _fused(self, kernels: Any, f: type) -> Any:
        """This rule's compiled kernel as update(w, g, slots, backup), its scalars bound (see
        _kernels); None where there is none (a rule defined only by `_update` runs in NumPy)."""
        return None

    def _flushing(self) -> bool:
        """Whether this step sets the slots' subnormal values to 0 (see _flush)."""
        return self.iterations % FLUSH_EVERY == 0

    def _flush_below(self, f: type) -> Any:
        """The compiled kernels' threshold: slot values below it in magnitude become 0 (the
        smallest normal number on a flushing step, else 0: nothing)."""
        return f(np.finfo(f).tiny) if self._flushing() else f(0)

    def _update(self, w: np.ndarray, g: np.ndarray, f: type, slots: dict[str, np.ndarray],
                scratch: list[np.ndarray]) -> None:
        """The update on aligned slices of params, grads, slots and scratch."""
        raise TypeError(f"{type(self).__name__} does not define its update rule")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-friendly dict."""
        return {"name": self.name, "learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer from `get_config()`'s dict (or a Keras 3 optimizer config)."""
        config = dict(config)
        config.pop("ema_momentum", None)  # meaningless without use_ema, which must be False
        for key, inert in _KERAS_INERT.items():
            if key in config:
                if config[key] != inert:
                    raise ValueError(f"{key}={config[key]!r} is not supported; expected {inert!r}")
                del config[key]
        try:
            return cls(**config)
        except TypeError as err:
            raise ValueError(f"bad config for {cls.__name__}: {err}") from None

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the slot arrays (n_params,) and "iterations" as a 0-d int64 array."""
        state = {key: value.copy() for key, value in self._slots.items()}
        state["iterations"] = np.array(self.iterations, dtype=np.int64)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore `get_state()`'s dict (builds the optimizer from the slots if need be)."""
        expected = set(self.slot_names()) | {"iterations"}
        if set(state) != expected:
            raise ValueError(f"state must have the keys {sorted(expected)}, got {sorted(state)}")
        it = np.asarray(state["iterations"])
        if it.shape != () or it.dtype.kind not in "iu" or it < 0:
            raise ValueError(
                f"state['iterations'] must be a 0-d integer array >= 0, got {state['iterations']!r}"
            )
        slots = {key: np.asarray(state[key]) for key in self.slot_names()}
        n, dt = self._n, self._dtype
        if slots and n is None:  # unbuilt: take the size and dtype from the slots
            first = next(iter(slots.values()))
            n, dt = first.shape[0] if first.ndim == 1 else -1, first.dtype
        for key, value in slots.items():
            if value.shape != (n,) or value.dtype != dt or dt not in _FLOAT_DTYPES:
                raise ValueError(
                    f"state[{key!r}] has shape {value.shape} and dtype {value.dtype}; expected "
                    f"shape ({'n_params' if n in (None, -1) else n},) and dtype "
                    f"{dt if dt in _FLOAT_DTYPES else 'float16/32/64'}, the same for every slot"
                )
        if slots and self._n is None:
            self.build(n, dt)
        for key, value in slots.items():
            np.copyto(self._slots[key], value)
        self.iterations = int(it)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras' rule: m = μm − ηg; w += m."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 name: str = "SGD") -> None:
        super().__init__(learning_rate, name)
        self.momentum = _unit(momentum, "momentum")
        self.nesterov = _flag(nesterov, "nesterov")

    @property
    def n_scratch(self) -> int:  # type: ignore[override]
        """Scratch arrays needed: a second one only for Nesterov's look-ahead."""
        return 2 if self.nesterov and self.momentum != 0 else 1

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum != 0 else ()

    def _update(self, w: np.ndarray, g: np.ndarray, f: type, slots: dict[str, np.ndarray],
                scratch: list[np.ndarray]) -> None:
        lr_g, tmp = scratch[0], scratch[-1]
        np.multiply(g, f(self.learning_rate), out=lr_g)
        if self.momentum == 0:
            w -= lr_g
            return
        mu, m = f(self.momentum), slots["momentum"]
        np.multiply(m, mu, out=m)
        m -= lr_g
        if self._flushing():
            _flush(m, tmp if self.nesterov else lr_g)  # lr_g is not read again without Nesterov
        if self.nesterov:  # w += μ·m_new − η·g
            np.multiply(m, mu, out=tmp)
            tmp -= lr_g
            w += tmp
        else:
            w += m

    def _fused(self, kernels: Any, f: type) -> Any:
        lr, mu, momentum, nesterov = f(self.learning_rate), f(self.momentum), self.momentum != 0, self.nesterov
        none, tiny = _NONE[f], self._flush_below(f)

        def update(w: np.ndarray, g: np.ndarray, slots: dict, backup: np.ndarray) -> bool:
            return kernels.sgd(w, g, slots.get("momentum", none), backup, lr, mu, momentum, nesterov, tiny)

        return update

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, Keras' rule: w −= α·m / (√v + ε) with α = η·√(1 − β₂ᵗ) / (1 − β₁ᵗ)."""

    n_scratch = 2

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, name: str = "adam") -> None:
        super().__init__(learning_rate, name)
        self.beta_1 = _unit(beta_1, "beta_1")
        self.beta_2 = _unit(beta_2, "beta_2")
        self.epsilon = _nonneg(epsilon, "epsilon")
        self.amsgrad = _flag(amsgrad, "amsgrad")

    def slot_names(self) -> tuple[str, ...]:
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _update(self, w: np.ndarray, g: np.ndarray, f: type, slots: dict[str, np.ndarray],
                scratch: list[np.ndarray]) -> None:
        s, t = scratch
        m, v = slots["momentum"], slots["velocity"]
        alpha = self._alpha(f)
        np.subtract(g, m, out=s)  # m += (g − m)(1 − β₁)
        s *= f(1 - self.beta_1)
        m += s
        np.multiply(g, g, out=s)  # v += (g² − v)(1 − β₂)
        s -= v
        s *= f(1 - self.beta_2)
        v += s
        if self._flushing():
            _flush(m, s)
            _flush(v, s)
        if self.amsgrad:
            v = np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
        np.sqrt(v, out=s)
        s += f(self.epsilon)
        np.multiply(m, alpha, out=t)
        t /= s
        w -= t

    def _alpha(self, f: type) -> Any:
        """This step's α = η·√(1 − β₂ᵗ) / (1 − β₁ᵗ), in the parameters' dtype."""
        step = f(self.iterations + 1)
        beta_1_power, beta_2_power = f(self.beta_1) ** step, f(self.beta_2) ** step
        return f(self.learning_rate) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)

    def _fused(self, kernels: Any, f: type) -> Any:
        args = (f(1 - self.beta_1), f(1 - self.beta_2), self._alpha(f), f(self.epsilon), self.amsgrad,
                self._flush_below(f))
        none = _NONE[f]

        def update(w: np.ndarray, g: np.ndarray, slots: dict, backup: np.ndarray) -> bool:
            return kernels.adam(w, g, slots["momentum"], slots["velocity"], slots.get("velocity_hat", none), backup,
                                *args)

        return update

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """RMSprop, Keras' rule: v = ρv + (1 − ρ)g²; w −= ηg / √(v [− ḡ²] + ε), optional momentum."""

    n_scratch = 2

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, name: str = "rmsprop") -> None:
        super().__init__(learning_rate, name)
        self.rho = _unit(rho, "rho")
        self.momentum = _unit(momentum, "momentum")
        self.epsilon = _nonneg(epsilon, "epsilon")
        self.centered = _flag(centered, "centered")

    def slot_names(self) -> tuple[str, ...]:
        return (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                + (("average_gradient",) if self.centered else ()))

    def _update(self, w: np.ndarray, g: np.ndarray, f: type, slots: dict[str, np.ndarray],
                scratch: list[np.ndarray]) -> None:
        s, t = scratch
        rho, one_minus_rho, v = f(self.rho), f(1 - self.rho), slots["velocity"]
        v *= rho
        np.multiply(g, g, out=s)
        s *= one_minus_rho
        v += s
        flushing = self._flushing()
        if flushing:
            _flush(v, s)
        if self.centered:  # denominator v − ḡ² + ε, with ḡ the running mean of g
            avg = slots["average_gradient"]
            avg *= rho
            np.multiply(g, one_minus_rho, out=s)
            avg += s
            if flushing:
                _flush(avg, s)
            np.multiply(avg, avg, out=s)
            np.subtract(v, s, out=s)
            s += f(self.epsilon)
        else:
            np.add(v, f(self.epsilon), out=s)
        np.sqrt(s, out=s)
        np.multiply(g, f(self.learning_rate), out=t)
        t /= s  # the increment η·g / √denominator
        if self.momentum > 0:
            mom = slots["momentum"]
            mom *= f(self.momentum)
            mom += t
            if flushing:
                _flush(mom, s)  # s (the denominator) is not read again
            w -= mom
        else:
            w -= t

    def _fused(self, kernels: Any, f: type) -> Any:
        args = (f(self.rho), f(1 - self.rho), f(self.epsilon), f(self.learning_rate), f(self.momentum),
                self.momentum > 0, self.centered, self._flush_below(f))
        none = _NONE[f]

        def update(w: np.ndarray, g: np.ndarray, slots: dict, backup: np.ndarray) -> bool:
            return kernels.rmsprop(w, g, slots["velocity"], slots.get("momentum", none),
                                   slots.get("average_gradient", none), backup, *args)

        return update

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


# The one registry of optimizer names: the model, the CLI, the estimator and saving look them up here.
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier: str | Optimizer | dict[str, Any]) -> Optimizer:
    """An optimizer from a Keras name ("adam"), an instance (returned as is) or a config dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = OPTIMIZERS.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {sorted(OPTIMIZERS)}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        name = identifier["class_name"]
        cls = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(f"unknown optimizer class_name {name!r}; known: {sorted(OPTIMIZERS)}")
        return cls.from_config(identifier.get("config", {}))
    raise ValueError(
        f"cannot interpret {identifier!r} as an optimizer: expected one of {sorted(OPTIMIZERS)}, "
        'an Optimizer, or {"class_name": ..., "config": {...}}'
    )
