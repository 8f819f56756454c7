"""How logitnet's training cost grows: seconds per epoch as rows grow and as width grows, beside
the FLOP floor, so that a reader sees where overhead ends and GEMM begins.

Run:  python benchmarks/bench_growth.py [--threads 1] [--plot benchmarks/growth.png] [--quick]

1. Rows: 784-128-64-10, batch 256, at 4k, 40k and 400k rows (--quick: 4k and 40k).
2. Width: 784-h-h-10 at 4,000 rows, batch 256, for h = 32, 128, 512, 1024, 2048, 4096
   (--quick: up to 1024).
Data: random float32 features in [0, 1) and 10 random classes (speed does not depend on what is
learned), Adam(1e-3), softmax cross-entropy from logits. Each point: the median of 3 epochs after
a warm-up epoch, timed from on_epoch_begin to on_epoch_end. The FLOP floor is 6 × parameters ×
rows ÷ NumPy's float32 GEMM rate, measured in the same run on the point's own first-layer product
(256, 784) × (784, h): below about 10⁸ FLOPs a step, per-call overhead dominates; above it, GEMM.
The log-log plot (matplotlib) shows both against FLOPs per epoch. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are unset for this run; the CPU model and BLAS kernel head the output.
"""

from __future__ import annotations

import os

_BLAS_OVERRIDES = {var: os.environ.pop(var) for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if var in os.environ}

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_training import CpuMeter, _log, _markdown, machine_facts  # noqa: E402

BATCH = 256
EPOCHS = 3


def _model(hidden: tuple[int, ...], threads: int | None) -> Any:
    import logitnet as ln

    model = ln.Sequential([*(ln.layers.Dense(h, "relu") for h in hidden), ln.layers.Dense(10)], seed=0,
                          dtype="float32")
    model.compile(ln.optimizers.Adam(1e-3), ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _epoch_seconds(model: Any, x: np.ndarray, y: np.ndarray) -> list[float]:
    import logitnet as ln

    times: list[float] = []

    class Timer(ln.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS + 1, verbose=0, callbacks=[Timer()])
    return times[1:]  # the first epoch warms up


def _gemm_rate(h: int, rounds: int = 5) -> float:
    """NumPy's float32 GFLOP/s on (256, 784) × (784, h), the median of `rounds` timings."""
    rng = np.random.default_rng(1)
    a, b = rng.random((BATCH, 784), dtype=np.float32), rng.random((784, h), dtype=np.float32)
    calls = max(3, int(2e9 / (2 * BATCH * 784 * h)))
    rates = []
    a @ b
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            a @ b
        rates.append(2 * BATCH * 784 * h * calls / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def point(hidden: tuple[int, ...], rows: int, threads: int | None) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.random((rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, rows)
    model = _model(hidden, threads)
    seconds = statistics.median(_epoch_seconds(model, x, y))
    params = model.count_params()
    rate = _gemm_rate(hidden[0])
    floor = 6 * params * rows / (rate * 1e9)
    return {"net": "-".join(str(u) for u in (784, *hidden, 10)), "rows": rows, "params": params,
            "flops": 6 * params * rows, "flops_per_step": 6 * params * BATCH, "s": seconds, "gflops": rate,
            "floor": floor}


def table(points: list[dict[str, Any]]) -> str:
    head = ["net", "rows", "parameters", "FLOPs a step", "s/epoch", "µs/row", "NumPy GEMM GFLOP/s",
            "FLOP floor s", "s/epoch ÷ floor"]
    rows = [[p["net"], f"{p['rows']:,}", f"{p['params']:,}", f"{p['flops_per_step']:.1e}", f"{p['s']:.4g}",
             f"{p['s'] / p['rows'] * 1e6:.3g}", f"{p['gflops']:.0f}", f"{p['floor']:.4g}",
             f"{p['s'] / p['floor']:.2f}"] for p in points]
    return _markdown(head, rows)


def plot(by_rows: list[dict[str, Any]], by_width: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for points, label, marker in ((by_rows, "rows grow (784-128-64-10)", "o"),
                                  (by_width, "width grows (784-h-h-10, 4k rows)", "s")):
        flops = [p["flops"] for p in points]
        ax.plot(flops, [p["s"] for p in points], marker=marker, label=f"logitnet, {label}")
        ax.plot(flops, [p["floor"] for p in points], marker=marker, linestyle="--", alpha=0.6,
                label=f"FLOP floor, {label}")
    for p in by_width:
        ax.annotate(f"h={p['net'].split('-')[1]}", (p["flops"], p["s"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOPs per epoch (6 × parameters × rows)")
    ax.set_ylabel("seconds per epoch")
    ax.set_title("logitnet: cost per epoch against its FLOP floor")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and logitnet threads (default: logitnet's own choice)")
    parser.add_argument("--plot", default="benchmarks/growth.png", help="where to write the log-log plot PNG")
    parser.add_argument("--quick", action="store_true", help="4k and 40k rows, widths up to 1024")
    args = parser.parse_args()
    if args.threads is not None:
        import logitnet as ln
        from threadpoolctl import threadpool_limits

        ln.ops.set_num_threads(args.threads)
        threadpool_limits(args.threads, user_api="blas")
    from logitnet.ops import fast

    start = time.perf_counter()
    meter = CpuMeter()
    rows_list = [4_000, 40_000] if args.quick else [4_000, 40_000, 400_000]
    widths = [32, 128, 512, 1024] if args.quick else [32, 128, 512, 1024, 2048, 4096]
    by_rows, by_width = [], []
    for rows in rows_list:
        _log(f"[rows] 784-128-64-10, {rows:,} rows")
        by_rows.append(point((128, 64), rows, args.threads))
    for h in widths:
        _log(f"[width] 784-{h}-{h}-10, 4,000 rows")
        by_width.append(point((h, h), 4_000, args.threads))
    unset = ", ".join(f"{k}={v}" for k, v in _BLAS_OVERRIDES.items()) or "neither was set"
    print(f"## How training cost grows ({time.strftime('%Y-%m-%d')})\n\n{machine_facts()}\n")
    print(f"OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this run ({unset}). Threads: "
          f"{args.threads or 'logitnet default'}; compiled kernels (logitnet[fast]): {fast.status()}.\n")
    print("### 1. As rows grow\n\n" + table(by_rows))
    print("\n### 2. As width grows\n\n" + table(by_width))
    try:
        plot(by_rows, by_width, args.plot)
        print(f"\nLog-log plot: `{args.plot}`.")
    except ImportError:
        print("\n(no plot: matplotlib is not installed)")
    sentence, _ = meter.summary()
    print(f"\nBatch {BATCH}, float32, Adam; median of {EPOCHS} epochs after a warm-up. While this ran, "
          f"{sentence}. Command: python benchmarks/bench_growth.py{' --quick' if args.quick else ''}"
          f"{f' --threads {args.threads}' if args.threads else ''}; it took {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
