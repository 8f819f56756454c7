"""Training on Dask data: streaming against in memory, peak memory, and one against two workers.

Run:  python benchmarks/bench_dask.py [--rounds 5] [--big] [--only stream,memory,cluster]
                                      [--json PATH]

The default run takes about 2 minutes on the project's 2-core VM (--big: about 10). It prints
Markdown tables on stdout and its progress on stderr.

Data: x ~ N(0, 1) float32, generated lazily with dask.array.random.default_rng(seed), labels
y = argmax(x @ T) for a fixed random "teacher" T (100 x 10, or 784 x 10), so x and y come from
one graph and y's blocks match x's. Every net is Dense-ReLU layers and a 10-way softmax from
logits, Adam(1e-3), float32, logitnet's glorot init (seed 0).

1. Streaming (one process). Seconds per epoch of `model.fit` on the same rows, three ways:
   in memory (NumPy arrays: dask.compute(x, y) first); streamed from `da.from_array` of those
   NumPy arrays (logitnet's streaming alone: window assembly, shuffling, checks); streamed from
   the lazy arrays (what `fit(x_dask, y_dask)` costs when every epoch regenerates its blocks).
   Also the time to generate the blocks alone (dask.compute(x.sum(), y.sum())). 100-64-10 at
   4k, 40k, 400k rows (and 4M with --big), batch 256, blocks of 50k rows; then 784-128-64-10 at
   4k and 40k rows (and 400k with --big). The contenders alternate (A B C D, B C D A, ...)
   after an untimed warm-up epoch; ratios are medians of same-round ratios, so the noise of a
   shared VM hits all alike.
2. Peak memory. One epoch on about 1 GB of lazily generated float32 (4 GB with --big), each in
   a fresh process: its RSS sampled every 5 ms by a psutil thread, and VmHWM. For contrast
   the same data computed into memory first, then fitted.
3. Cluster. A distributed.LocalCluster(n_workers=1 and 2, threads_per_worker=1) with
   DataParallel(client) (sync_every=1) and DataParallel(client, sync_every=8), 40k x 100 rows in
   8 blocks of 5k (50k-row blocks would make one block, which one worker holds), batch 1024,
   the 100-64-10 net; one-process streaming of the same data as the reference. Also 2 workers
   with window=8: every step then has 8 gradient tasks instead of about 2, which prices a task.
   From these it estimates the communication (and scheduling) cost per step and projects the
   time per step to 8, 32 and 128 workers.

Seconds per epoch are timed by a callback from on_epoch_begin to on_epoch_end, so fit's set-up
(graph building, scattering the model to the workers) is left out. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are removed from the environment before NumPy loads, here and in every child
process and Dask worker, so OpenBLAS picks its kernel for this CPU by itself; the kernel it picked
is printed with the CPU model.
"""

from __future__ import annotations

import os

# Before NumPy (and OpenBLAS) loads: let OpenBLAS detect the CPU itself. Child processes and the
# LocalCluster's workers inherit the cleaned environment.
_BLAS_OVERRIDES = {var: os.environ.pop(var) for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if var in os.environ}

import argparse
import contextlib
import gc
import json
import logging
import math
import resource
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Shared with the training benchmark: the machine line (CPU model, BLAS kernel), the meter of
# other processes' CPU use, Markdown tables, paired ratios and progress lines.
from bench_training import (
    CpuMeter,
    _log,
    _markdown,
    _median,
    _paired_ratio,
    _version,
    machine_facts,
)

try:
    import dask
    import dask.array as da
except ImportError:  # pragma: no cover
    sys.exit('bench_dask.py needs Dask: pip install "logitnet[dask]"')

N_CLASSES = 10
SEED = 0
CHUNK_ROWS = 50_000  # blocks of the streaming and memory measurements
SAMPLE_MIN_S = 0.25  # a sample runs at least this long (small data: several epochs per sample)
MAX_EPOCHS_PER_SAMPLE = 50


# --- data and models ------------------------------------------------------------------------
def make_data(rows: int, features: int, chunk_rows: int, seed: int = SEED) -> tuple[Any, Any]:
    """Lazy x (rows, features) float32 ~ N(0, 1) and y = argmax(x @ teacher), in blocks of chunk_rows."""
    x = da.random.default_rng(seed).standard_normal((rows, features), chunks=(chunk_rows, features),
                                                    dtype=np.float32)
    teacher = np.random.default_rng(seed + 1).standard_normal((features, N_CLASSES)).astype(np.float32)
    y = (x @ teacher).argmax(axis=1)
    return x, y


def build_model(features: int, hidden: tuple[int, ...]) -> Any:
    from logitnet import Sequential
    from logitnet.layers import Dense
    from logitnet.losses import SparseCategoricalCrossentropy
    from logitnet.optimizers import Adam

    model = Sequential([Dense(h, activation="relu") for h in hidden] + [Dense(N_CLASSES)], seed=0,
                       dtype="float32")
    model.compile(optimizer=Adam(learning_rate=1e-3), loss=SparseCategoricalCrossentropy(from_logits=True))
    model.build((features,))
    return model


def arch(features: int, hidden: tuple[int, ...]) -> str:
    return "-".join(str(u) for u in (features, *hidden, N_CLASSES))


# --- timing ---------------------------------------------------------------------------------
def epoch_timer() -> Any:
    """A callback that records each epoch's seconds (fit's set-up before the first epoch is left out)."""
    from logitnet.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def fit_seconds(model: Any, x: Any, y: Any, batch_size: int, epochs: int = 1, **fit_kwargs: Any) -> float:
    """Mean seconds per epoch of model.fit(x, y, epochs=epochs)."""
    timer = epoch_timer()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer], **fit_kwargs)
    return sum(timer.seconds) / len(timer.seconds)


def interleave(contenders: dict[str, Callable[[], float]], rounds: int,
               warmup: bool = True) -> dict[str, list[float]]:
    """Each contender's samples (seconds), in rounds whose order rotates: A B C, B C A, C A B, ..."""
    names = list(contenders)
    if warmup:
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(contenders[name]())
        gc.collect()
    return times


def _ratio(peer: list[float], base: list[float]) -> str:
    """Median [min-max] of the same-round ratios peer / base."""
    ratios = [p / b for p, b in zip(peer, base)]
    return f"{_paired_ratio(peer, base):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def _per_row(samples: list[float], rows: int) -> str:
    """'median s (µs per row)'."""
    med = _median(samples)
    return f"{_s(med)} ({med / rows * 1e6:.2f})"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def _s(seconds: float) -> str:
    return f"{seconds:.3g}"


# --- 1. streaming against in memory ---------------------------------------------------------
def bench_streaming(rows_list: list[int], features: int, hidden: tuple[int, ...], batch_size: int,
                    rounds: int) -> list[dict[str, Any]]:
    """Per row count: s/epoch in memory, streamed from NumPy blocks, streamed from lazy blocks."""
    results = []
    for rows in rows_list:
        _log(f"[stream] {arch(features, hidden)}, {rows:,} rows")
        results.append(streaming_at(rows, features, hidden, batch_size, rounds))
        gc.collect()
    return results


def streaming_at(rows: int, features: int, hidden: tuple[int, ...], batch_size: int,
                 rounds: int) -> dict[str, Any]:
    x, y = make_data(rows, features, min(CHUNK_ROWS, rows))
    x_np, y_np = dask.compute(x, y)
    x_blocks = da.from_array(x_np, chunks=x.chunks)  # the same NumPy memory, as Dask blocks
    y_blocks = da.from_array(y_np, chunks=y.chunks)
    models = {name: build_model(features, hidden) for name in ("memory", "numpy_blocks", "generated")}
    probe = fit_seconds(models["memory"], x_np, y_np, batch_size)  # also warms up
    epochs = max(1, min(MAX_EPOCHS_PER_SAMPLE, math.ceil(SAMPLE_MIN_S / probe)))
    contenders = {
        "memory": lambda: fit_seconds(models["memory"], x_np, y_np, batch_size, epochs),
        "numpy_blocks": lambda: fit_seconds(models["numpy_blocks"], x_blocks, y_blocks, batch_size, epochs),
        "generated": lambda: fit_seconds(models["generated"], x, y, batch_size, epochs),
        "generate_only": lambda: _seconds_of(lambda: dask.compute(x.sum(), y.sum())),
    }
    big = rows >= 1_000_000  # one epoch is long: a warm-up round would not change it
    times = interleave(contenders, min(rounds, 3) if big else rounds, warmup=not big)
    return {"net": arch(features, hidden), "rows": rows, "blocks": len(x.chunks[0]),
            "epochs_per_sample": epochs, "times": times}


def _seconds_of(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def streaming_table(results: list[dict[str, Any]], batch_size: int, rounds: int) -> list[str]:
    head = ["net", "rows", "blocks", "in memory s/epoch (µs/row)",
            "streamed, NumPy blocks s/epoch (µs/row)",
            "streamed, generated s/epoch (µs/row)", "generating alone s", "NumPy blocks ÷ in memory",
            "generated ÷ in memory"]
    rows = []
    for res in results:
        t, n = res["times"], res["rows"]
        rows.append([res["net"], f"{n:,}", str(res["blocks"]), _per_row(t["memory"], n),
                     _per_row(t["numpy_blocks"], n), _per_row(t["generated"], n),
                     _s(_median(t["generate_only"])),
                     _ratio(t["numpy_blocks"], t["memory"]), _ratio(t["generated"], t["memory"])])
    note = (f"Batch {batch_size}, float32, blocks of up to {CHUNK_ROWS:,} rows, the default window of 2 "
            "blocks (the next window loads in a thread meanwhile). s/epoch: median of "
            f"{rounds} interleaved samples (up to 3 at 1M+ rows, and no warm-up there); a sample is "
            f"one fit of enough epochs to last {SAMPLE_MIN_S} s, timed from each epoch's start to its end. "
            "µs/row = s/epoch ÷ rows: flat when time grows linearly. Ratios: median [min-max] of "
            "same-round ratios. "
            "'NumPy blocks' streams da.from_array of the in-memory arrays (logitnet's streaming cost "
            "alone); 'generated' streams the lazy arrays, so each epoch also regenerates its data "
            "('generating alone' is dask.compute(x.sum(), y.sum()) on the threaded scheduler).")
    return [_markdown(head, rows), "", note]


# --- 2. peak memory -------------------------------------------------------------------------
def rss_child(rows: int, features: int, hidden: tuple[int, ...], batch_size: int,
              mode: str) -> dict[str, Any]:
    """In a fresh process: baseline RSS, then one epoch streamed (or computed into memory and fitted)
    while a thread samples the RSS; the peak, the kernel's peak (VmHWM) and the epoch's seconds."""
    import psutil

    proc = psutil.Process()
    x, y = make_data(rows, features, CHUNK_ROWS)
    model = build_model(features, hidden)
    model.fit(x[:CHUNK_ROWS], y[:CHUNK_ROWS], batch_size=batch_size, epochs=1, verbose=0)  # warm code paths
    gc.collect()
    baseline = proc.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    if mode == "memory":
        x_np, y_np = dask.compute(x, y)
        seconds = fit_seconds(model, x_np, y_np, batch_size)
    else:
        seconds = fit_seconds(model, x, y, batch_size)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return {"mode": mode, "rows": rows, "data_bytes": rows * features * 4 + rows * 8,
            "baseline": baseline, "peak": peak[0], "kernel_peak": kernel_peak_rss(),
            "epoch_s": seconds, "wall_s": wall, "blocks": len(x.chunks[0])}


def kernel_peak_rss() -> int:
    """This process's peak RSS as the kernel counts it: VmHWM, or else ru_maxrss. ru_maxrss survives
    fork and exec, so in a child it is at least the parent's RSS when it forked; VmHWM is this
    program's own."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def bench_memory(rows: int, features: int, hidden: tuple[int, ...], batch_size: int) -> list[dict[str, Any]]:
    results = []
    for mode in ("stream", "memory"):
        _log(f"[memory] {mode}: one epoch on {rows:,} x {features} float32 in a fresh process")
        cmd = [sys.executable, os.path.abspath(__file__), "--rss-child", mode, "--rss-rows", str(rows),
               "--batch-size", str(batch_size)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            _log(f"[memory] the {mode} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def memory_table(results: list[dict[str, Any]], features: int) -> list[str]:
    mib = 2 ** 20
    block_bytes = CHUNK_ROWS * (features * 4 + 8)
    head = ["fit on", "data (x float32 + y int64)", "blocks", "RSS before MiB", "peak RSS MiB (psutil)",
            "kernel's peak MiB (VmHWM)", "peak − before MiB", "(peak − before) ÷ data",
            "(peak − before) ÷ one block",
            "epoch s (fit only)"]
    labels = {"stream": "Dask arrays, streamed", "memory": "dask.compute(x, y), then NumPy"}
    rows = []
    for r in results:
        grew = r["peak"] - r["baseline"]
        rows.append([labels[r["mode"]], f"{r['data_bytes'] / 2 ** 30:.2f} GiB", str(r["blocks"]),
                     f"{r['baseline'] / mib:.0f}", f"{r['peak'] / mib:.0f}", f"{r['kernel_peak'] / mib:.0f}",
                     f"{grew / mib:.0f}", f"{grew / r['data_bytes']:.3f}", f"{grew / block_bytes:.1f}",
                     _s(r["epoch_s"])])
    note = (f"One epoch each, in a fresh process; one block = {CHUNK_ROWS:,} rows = "
            f"{block_bytes / mib:.0f} MiB. 'RSS before': after imports, the model and a warm-up fit on "
            "the first block. Peak: RSS sampled every 5 ms by a psutil thread while the data is read "
            "and trained on; VmHWM is the kernel's count of the process's lifetime peak, so it also holds "
            "the start-up (ru_maxrss is not used: a child inherits its parent's peak through fork). The "
            "in-memory row includes dask.compute's assembly of the whole array.")
    return [_markdown(head, rows), "", note]


# --- 3. one against two workers -------------------------------------------------------------
def task_stream_stats(client: Any, fit: Callable[[], float], prefix: str) -> tuple[int, float]:
    """Run fit once under the cluster's task stream: (tasks named prefix*, their compute seconds)."""
    from distributed import get_task_stream

    with get_task_stream(client=client) as stream:
        fit()
    tasks = [t for t in stream.data if str(t.get("key", "")).startswith(prefix)]
    compute = sum(s["stop"] - s["start"] for t in tasks for s in t.get("startstops", ())
                  if s.get("action") == "compute")
    return len(tasks), compute


def bench_cluster(rows: int, features: int, hidden: tuple[int, ...], batch_size: int, chunk_rows: int,
                  sync_every: int, rounds: int, epochs: int) -> dict[str, Any]:
    """Seconds per epoch: one-process streaming, and DataParallel on 1 and 2 workers."""
    from distributed import Client, LocalCluster

    from logitnet.distribution import DataParallel, Streaming

    x, y = make_data(rows, features, chunk_rows)
    steps = -(-rows // batch_size)
    blocks = len(x.chunks[0])
    result: dict[str, Any] = {"rows": rows, "blocks": blocks, "steps": steps, "batch_size": batch_size,
                              "sync_every": sync_every, "net": arch(features, hidden), "tasks": {}}
    with contextlib.ExitStack() as stack:
        clients = {}
        # dashboard_address=None still serves HTTP on 8787, so the second cluster moves to another port.
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        for n_workers in (1, 2):
            _log(f"[cluster] starting a LocalCluster with {n_workers} worker(s)")
            cluster = stack.enter_context(LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                                       dashboard_address=None, silence_logs=logging.ERROR))
            clients[n_workers] = stack.enter_context(Client(cluster, set_as_default=False))
        configs = {  # name: (workers, DataParallel keyword arguments); None: one process
            "one process": None,
            "1 worker, sync_every=1": (1, {}),
            f"1 worker, sync_every={sync_every}": (1, {"sync_every": sync_every}),
            "2 workers, sync_every=1": (2, {}),
            f"2 workers, sync_every={sync_every}": (2, {"sync_every": sync_every}),
            f"2 workers, sync_every=1, window={blocks}": (2, {"window": blocks}),
        }
        models = {name: build_model(features, hidden) for name in configs}

        def runner(name: str) -> Callable[[], float]:
            config = configs[name]
            if config is None:
                def one_process() -> float:
                    with dask.config.set(scheduler="threads"):
                        return fit_seconds(models[name], x, y, batch_size, epochs, distribution=Streaming())
                return one_process
            n_workers, kwargs = config
            return lambda: fit_seconds(models[name], x, y, batch_size, epochs,
                                       distribution=DataParallel(clients[n_workers], **kwargs))

        contenders = {name: runner(name) for name in configs}
        _log(f"[cluster] {len(configs)} contenders x {rounds} rounds of {epochs} epoch(s), "
             f"{rows:,} rows in {blocks} blocks, batch {batch_size} ({steps} steps per epoch)")
        result["times"] = interleave(contenders, rounds)
        for name, config in configs.items():  # untimed: how many tasks a step sends, and their compute
            if config is None:
                continue
            prefix = "_gradient" if "sync_every=1" in name else "_local_steps"
            n_tasks, compute = task_stream_stats(clients[config[0]], contenders[name], prefix)
            result["tasks"][name] = {"tasks": n_tasks / epochs, "compute_s": compute / epochs,
                                     "workers": config[0]}
        _log("[cluster] closing the clusters")
    return result


def cluster_tables(res: dict[str, Any], rounds: int) -> tuple[list[str], dict[str, float]]:
    """The measured table, and the per-step figures the projection uses."""
    steps, k, t = res["steps"], res["sync_every"], res["times"]
    c = _median(t["one process"]) / steps  # compute per step, one process (streamed)
    head = ["run", "s/epoch", "ms/step", "÷ one process (same-round ratios)", "gradient tasks per step",
            "worker compute ms/step (all tasks)", "estimated comm ms/step = ms/step − one process/N"]
    rows = [["one process, Streaming()", _s(_median(t["one process"])), _ms(c), "1.00", "-", "-", "-"]]
    comm: dict[str, float] = {}
    for name, stats in res["tasks"].items():
        per_step = _median(t[name]) / steps
        n = stats["workers"]
        comm[name] = per_step - c / n
        tasks = stats["tasks"] / steps if "sync_every=1" in name else stats["tasks"] / math.ceil(steps / k)
        task_cell = f"{tasks:.2f}" if "sync_every=1" in name else f"{tasks:.2f} per {k} steps"
        rows.append([name, _s(_median(t[name])), _ms(per_step), _ratio(t[name], t["one process"]),
                     task_cell, _ms(stats["compute_s"] / steps), _ms(comm[name])])
    note = (f"{res['net']}, {res['rows']:,} rows in {res['blocks']} blocks of "
            f"{res['rows'] // res['blocks']:,}, "
            f"batch {res['batch_size']} ({steps} steps per epoch), float32, Adam. LocalCluster(n_workers=N, "
            "threads_per_worker=1, dashboard_address=None); the 1- and 2-worker clusters are up together "
            "and the runs alternate. s/epoch: median of "
            f"{rounds} interleaved samples (one fit each, after a warm-up), from each epoch's start to its "
            "end "
            "(scattering the model is fit's set-up, left out). Tasks and worker compute: from one more, "
            "untimed, fit under distributed.get_task_stream. On this 2-core VM, the driver, the scheduler "
            "and the workers share the 2 cores.")
    tasks = {name: s["tasks"] / steps for name, s in res["tasks"].items()}
    return [_markdown(head, rows), "", note], {"c": c, "comm": comm, "tasks": tasks}


def projection(res: dict[str, Any], fig: dict[str, float]) -> list[str]:
    """A two-term model of ms/step for N workers, fitted to the measured runs, and the batch that
    keeps N workers at least 80% busy."""
    k, c, comm, tasks = res["sync_every"], fig["c"], fig["comm"], fig["tasks"]
    blocks, batch = res["blocks"], res["batch_size"]
    # sync_every=1: the driver pays a fixed part a per step and b per gradient task; a step has about
    # one task per block in its window (2 by default), so N workers need window >= N blocks.
    w2, w8 = "2 workers, sync_every=1", f"2 workers, sync_every=1, window={blocks}"
    b = max(0.0, (comm[w8] - comm[w2]) / (tasks[w8] - tasks[w2]))
    a = max(0.0, comm[w2] - b * tasks[w2])
    # sync_every=k: one task per worker per round of k steps; round overhead R(N) = a' + b' N.
    r1 = k * comm[f"1 worker, sync_every={k}"]
    r2 = k * comm[f"2 workers, sync_every={k}"]
    b_k = max(0.0, r2 - r1)
    a_k = max(0.0, r1 - b_k)
    per_row = c / batch

    def sync1(n: int) -> float:
        return a + b * n

    def sync_k(n: int) -> float:
        return (a_k + b_k * n) / k

    def batch_for(n: int, comm_per_step: float) -> int:  # c(B)/N >= 4 comm  <=>  80% of the step is compute
        return math.ceil(4 * n * comm_per_step / per_row)

    head = ["workers N", "sync_every=1 ms/step", "speed-up", f"sync_every={k} ms/step", "speed-up",
            "batch for 80% busy, sync_every=1 (rows/worker)",
            f"batch for 80% busy, sync_every={k} (rows/worker)"]
    rows = []
    for n in (1, 2, 8, 32, 128):
        t1, tk = c / n + sync1(n), c / n + sync_k(n)
        b1, bk = batch_for(n, sync1(n)), batch_for(n, sync_k(n))
        rows.append([str(n), _ms(t1), f"{c / t1:.2f}", _ms(tk), f"{c / tk:.2f}",
                     f"{b1:,} ({b1 // n:,})", f"{bk:,} ({bk // n:,})"])
    best = math.sqrt(c / b) if b > 0 else float("inf")
    # sync_every=k is faster per step than sync_every=1 when its round overhead / k < comm_1(N).
    break_even = ", ".join(f"N={n}: k > {(a_k + b_k * n) / sync1(n):.1f}" for n in (2, 8, 32, 128))
    return [
        (f"Model: ms/step(N) = compute/N + comm(N), compute = one-process ms/step = {_ms(c)} ms at batch "
         f"{batch} ({per_row * 1e6:.2f} µs/row)."),
        (f"- sync_every=1: comm(N) = a + b·N with a = {_ms(a)} ms per step and b = {_ms(b)} ms per gradient "
         f"task (from 2 workers with window 2, {tasks[w2]:.2f} tasks/step, against window {blocks}, "
         f"{tasks[w8]:.2f} tasks/step); N workers need a window of ≥ N blocks, so ≥ N tasks per step. "
         + (f"Fastest at N ≈ √(compute/b) = {best:.1f} workers for this batch"
            + (" (below 2: one worker, or one process, is fastest)." if best < 2 else ".") if b > 0 else "")),
        (f"- sync_every={k}: comm(N) = (a' + b'·N)/{k} with a' = {_ms(a_k)} ms and b' = {_ms(b_k)} ms per "
         f"round of {k} steps (from the 1- and 2-worker runs: round overhead {_ms(r1)} and {_ms(r2)} ms)."),
        (f"- sync_every=k takes less time per step than sync_every=1 when (a' + b'·N)/k < a + b·N: "
         f"{break_even} "
         "(time only; local SGD's effect on accuracy is not measured here)."),
        "- Batch for 80% busy: the global batch B with compute(B)/N ≥ 4·comm(N), compute linear in B.",
        "",
        _markdown(head, rows),
        "",
        ("A projection from two points on a 2-core VM (LocalCluster over local TCP): it leaves out "
         "bandwidth (the model here is small: weights and gradients are a few tens of KB), a scheduler "
         "that slows with many workers, stragglers, and sync_every>1's statistical cost (local SGD is "
         "another optimisation; it needs its own accuracy check)."),
    ]


# --- report ---------------------------------------------------------------------------------
def header(args: argparse.Namespace) -> list[str]:
    from threadpoolctl import threadpool_info

    pools = "; ".join(f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture')}, "
                      f"{i['num_threads']} threads ({os.path.basename(i['filepath'])})"
                      for i in threadpool_info())
    overrides = (", ".join(f"{k}={v}" for k, v in _BLAS_OVERRIDES.items()) + " removed from the environment"
                 if _BLAS_OVERRIDES else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set")
    versions = ", ".join(f"{d} {_version(d)}" for d in ("dask", "distributed", "psutil"))
    return [f"## logitnet on Dask ({time.strftime('%Y-%m-%d')})", "", machine_facts(), "",
            f"Thread pools (threadpoolctl): {pools or 'none found'}. {overrides}. {versions}.",
            f"Command: python benchmarks/bench_dask.py {' '.join(sys.argv[1:])}".rstrip(), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed samples per contender (default 5)")
    parser.add_argument("--big", action="store_true",
                        help="also 4M rows in the streaming table, and 4 GB (not 1 GB) for peak memory")
    parser.add_argument("--only", default="stream,memory,cluster",
                        help="a comma-separated subset of stream,memory,cluster")
    parser.add_argument("--batch-size", type=int, default=256, help="batch of the streaming and memory runs")
    parser.add_argument("--cluster-rows", type=int, default=40_000)
    parser.add_argument("--cluster-batch", type=int, default=1024)
    parser.add_argument("--cluster-chunk", type=int, default=5_000, help="rows per block on the cluster")
    parser.add_argument("--sync-every", type=int, default=8)
    parser.add_argument("--cluster-epochs", type=int, default=2, help="epochs per cluster sample")
    parser.add_argument("--json", default=None, help="also write the raw timings to this file")
    parser.add_argument("--rss-child", choices=("stream", "memory"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_rows, 100, (64,), args.batch_size, args.rss_child)))
        return
    parts = set(filter(None, args.only.split(",")))
    if bad := parts - {"stream", "memory", "cluster"}:
        parser.error(f"--only takes stream,memory,cluster, got {','.join(sorted(bad))}")
    if args.rounds < 1 or args.sync_every < 2:
        parser.error("--rounds must be at least 1 and --sync-every at least 2")

    start = time.perf_counter()
    out = header(args)
    raw: dict[str, Any] = {}
    if "stream" in parts:
        meter = CpuMeter()
        rows = [4_000, 40_000, 400_000] + ([4_000_000] if args.big else [])
        res = bench_streaming(rows, 100, (64,), args.batch_size, args.rounds)
        # 784 features: 4M rows would be 12.5 GB in memory, more than the contrast can hold here.
        res += bench_streaming([4_000, 40_000] + ([400_000] if args.big else []), 784, (128, 64), args.batch_size,
                               args.rounds)
        raw["stream"] = res
        out += ["### 1. Seconds per epoch, one process: in memory against streamed from Dask", "",
                *streaming_table(res, args.batch_size, args.rounds),
                f"While this ran, {meter.summary()[0]}.", ""]
    if "memory" in parts:
        meter = CpuMeter()
        rss_rows = 10_000_000 if args.big else 2_500_000
        res = bench_memory(rss_rows, 100, (64,), args.batch_size)
        raw["memory"] = res
        out += [f"### 2. Peak memory, one epoch on {rss_rows:,} x 100 (100-64-10, batch {args.batch_size})",
                "",
                *memory_table(res, 100), f"While this ran, {meter.summary()[0]}.", ""]
    if "cluster" in parts:
        meter = CpuMeter()
        res = bench_cluster(args.cluster_rows, 100, (64,), args.cluster_batch, args.cluster_chunk,
                            args.sync_every, args.rounds, args.cluster_epochs)
        raw["cluster"] = res
        table, fig = cluster_tables(res, args.rounds)
        out += ["### 3. One against two workers (DataParallel on a LocalCluster)", "", *table,
                f"While this ran, {meter.summary()[0]}.", "",
                "### Projection to more workers (from the figures above)", "", *projection(res, fig), ""]
    out.append(f"The whole run took {time.perf_counter() - start:.0f} s.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    print("\n".join(out))


if __name__ == "__main__":
    main()
