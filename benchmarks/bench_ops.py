"""Cost of the exact fused softmax cross-entropy (loss + gradient) relative to one np.exp.

Run:  python benchmarks/bench_ops.py [--rows 4096] [--classes 1000] [--repeats 15]

Each workload runs interleaved with np.exp over the same float32 array (A B A B ...), so machine
noise hits both alike; the figure reported is the median of the per-pair ratios. Threads: the ops
use LOGITNET_NUM_THREADS (default min(2, cores)); np.exp is always one thread, so both the
one-thread and the default ratios are shown.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from logitnet import ops
from logitnet.ops import naive


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_ratio(fn, baseline, repeats: int) -> tuple[float, float, float]:
    """(median ratio, median seconds of fn, median seconds of baseline) over interleaved pairs."""
    fn(), baseline()  # warm up: page faults, thread pool start
    ratios, a, b = [], [], []
    for _ in range(repeats):
        ta, tb = _time(fn), _time(baseline)
        ratios.append(ta / tb)
        a.append(ta)
        b.append(tb)
    return statistics.median(ratios), statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (args.rows, args.classes)).astype(np.float32)
    labels = rng.integers(0, args.classes, args.rows)
    onehot = np.eye(args.classes, dtype=np.float32)[labels]
    soft = rng.dirichlet(np.ones(args.classes), args.rows).astype(np.float32)
    z64 = z.astype(np.float64)

    def exp32():
        return np.exp(z)

    workloads = [
        ("softmax_cross_entropy, int labels", lambda: ops.softmax_cross_entropy(z, labels)),
        ("softmax_cross_entropy, one-hot", lambda: ops.softmax_cross_entropy(z, onehot)),
        ("softmax_cross_entropy, soft labels", lambda: ops.softmax_cross_entropy(z, soft)),
        ("softmax", lambda: ops.softmax(z)),
        ("naive twin (softmax, then log)", lambda: naive.naive_softmax_cross_entropy(z, labels)),
        ("softmax_cross_entropy, float64 in", lambda: ops.softmax_cross_entropy(z64, labels)),
    ]
    print(f"shape ({args.rows}, {args.classes}) float32, {args.repeats} interleaved pairs, "
          f"median of ratios to one np.exp over the same array")
    print(f"{'workload':40s} {'threads':>7s} {'ms':>8s} {'np.exp ms':>9s} {'ratio':>6s}")
    for threads in (1, None):
        ops.set_num_threads(threads)
        label = str(ops.num_threads())
        for name, fn in workloads:
            ratio, ta, tb = paired_ratio(fn, exp32, args.repeats)
            print(f"{name:40s} {label:>7s} {ta * 1e3:8.2f} {tb * 1e3:9.2f} {ratio:6.2f}")
    ops.set_num_threads(None)


if __name__ == "__main__":
    main()
