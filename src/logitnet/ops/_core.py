"""Shared helpers for the exact ops: dtype rules, row layout, error-free differences, row blocks."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

SUPPORTED_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
F64 = np.dtype(np.float64)


def as_float_array(x: object, name: str) -> np.ndarray:
    """Return `x` as a float16/32/64 array; integers and bools become float64 (as NumPy's ufuncs do)."""
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        return a.astype(np.float64)
    if a.dtype not in SUPPORTED_FLOATS:
        raise TypeError(
            f"{name} must be a float16, float32 or float64 array, got dtype {a.dtype}"
        )
    return a


def to_rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """View `x` as C-contiguous rows (n, C) along `axis`; also return the inverse reshaping."""
    if x.ndim == 0:
        raise ValueError("expected an array with at least one dimension, got a scalar")
    axis = axis % x.ndim
    moved = np.moveaxis(x, axis, -1)
    shape = moved.shape
    rows = np.ascontiguousarray(moved.reshape(int(np.prod(shape[:-1])), shape[-1]))

    def back(r: np.ndarray) -> np.ndarray:
        return np.moveaxis(r.reshape(shape), -1, axis)

    return rows, back


def two_diff(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a − b as hi + lo exactly (Knuth's TwoSum); lo is 0 where hi is not finite."""
    hi = a - b
    with np.errstate(invalid="ignore"):
        bb = hi - a
        lo = (a - (hi - bb)) - (b + bb)
        lo[~np.isfinite(lo)] = 0.0
    return hi, lo


_SPLIT = 134217729.0  # 2**27 + 1: Dekker's splitter for float64


def two_prod(a: np.ndarray, b: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """a·b as hi + lo exactly (Dekker's product, float64, |a·b| far from overflow)."""
    hi = a * b
    ca, cb = _SPLIT * a, _SPLIT * np.asarray(b, np.float64)
    a_hi, b_hi = ca - (ca - a), cb - (cb - b)
    a_lo, b_lo = a - a_hi, b - b_hi
    lo = ((a_hi * b_hi - hi) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return hi, lo


# Below this many elements a single thread is faster than handing blocks to the pool.
_PARALLEL_MIN = 1 << 18
_BLOCK_ELEMENTS = 1 << 17  # float64 scratch of 1 MiB per block: stays in L2
# The exact float64 path makes a dozen temporaries per block; smaller blocks keep them in L2.
EXACT_BLOCK_ELEMENTS = 1 << 15
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None


_CPUS = os.cpu_count() or 1


_cap: int | None = None  # a temporary ceiling (fit's, when other processes keep cores busy)


def num_threads() -> int:
    """Threads used for large batches: LOGITNET_NUM_THREADS, else min(2, cpu count); never more
    than fit's ceiling while it trains on a machine whose other processes keep cores busy."""
    chosen = _chosen_threads()
    return chosen if _cap is None else min(chosen, _cap)


def _chosen_threads() -> int:
    if _threads is not None:
        return _threads
    env = os.environ.get("LOGITNET_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"LOGITNET_NUM_THREADS must be an integer, got {env!r}") from None
    return max(1, min(2, _CPUS))


def set_num_threads(n: int | None) -> None:
    """Set the threads used by the row-parallel ops (None: back to the default)."""
    global _threads, _pool
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    _threads = None if n is None else int(n)
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def block_size(dtype: np.dtype) -> int:
    """Row-block size in elements: large for the float16/32 fast paths, smaller for float64."""
    return EXACT_BLOCK_ELEMENTS if dtype == F64 else _BLOCK_ELEMENTS


def for_row_blocks(
    n: int, width: int, work: Callable[[int, int], None], block_elements: int = _BLOCK_ELEMENTS,
    parallel_min: int = _PARALLEL_MIN,
) -> None:
    """Call work(lo, hi) over row blocks of about `block_elements`, in parallel for large inputs.

    Each call must write only its own rows of preallocated outputs. Floating-point warnings are
    off inside: the kernels detect overflow, underflow and NaN themselves.
    """
    step = max(1, block_elements // max(width, 1))
    starts = range(0, n, step)

    def run(group: range | list[int]) -> None:
        with np.errstate(all="ignore"):
            for lo in group:
                work(lo, min(lo + step, n))

    threads = num_threads()
    if threads == 1 or n * width < parallel_min or len(starts) < 2:
        run(starts)
        return
    # Contiguous shares, one per thread; the calling thread takes the first itself, so exactly
    # `threads` threads work (a pool only starts a new worker when none is idle).
    share = -(-len(starts) // threads)
    groups = [list(starts[i : i + share]) for i in range(0, len(starts), share)]
    pool = _get_pool(threads - 1)
    futures = [pool.submit(run, g) for g in groups[1:]]
    try:
        run(groups[0])
    finally:
        wait(futures)  # never return (or raise) while another thread still writes
    for fut in futures:
        fut.result()


_pool_lock = threading.Lock()  # several threads may call the ops at once: one pool for them all


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers != workers:  # noqa: SLF001 - our own pool
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="logitnet")
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads: start afresh there.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


_local = threading.local()


def scratch(rows: int, width: int, slot: int = 0) -> np.ndarray:
    """Per-thread float64 work array number `slot` (rows, width), reused; contents undefined."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(slot)
    if buf is None or buf.size < rows * width:
        buf = bufs[slot] = np.empty(max(rows * width, _BLOCK_ELEMENTS))
    return buf[: rows * width].reshape(rows, width)


def row_sums(e: np.ndarray) -> np.ndarray:
    """Σ over each row of e (n, C) in float64: SIMD accumulation, no BLAS threads, relative
    error ~C·2**-53 (for float16/32 results; the float64 path sums exactly, see softmax)."""
    return np.einsum("ij->i", e)


def arange(n: int) -> np.ndarray:
    """0..n-1 as intp, cached per thread (row indices for gathers)."""
    r = getattr(_local, "arange", None)
    if r is None or r.size < n:
        r = _local.arange = np.arange(max(n, 1024))
    return r[:n]


def row_starts(n: int, width: int) -> np.ndarray:
    """0, width, 2·width, ... (n,) as intp: flat offsets of the rows of an (n, width) array, cached."""
    key = (n, width)
    cache = getattr(_local, "row_starts", None)
    if cache is None or cache[0] != key:
        cache = _local.row_starts = (key, np.arange(0, n * width, width, dtype=np.intp))
    return cache[1]


def all_finite(a: np.ndarray) -> bool:
    """True when every element of `a` is finite. NaN and ±inf reach a·a (one fast BLAS pass); only
    when that overflows are the elements checked one by one."""
    flat = a.reshape(-1)
    if flat.size <= 4096:  # a few rows: the plain test costs less than the dot's errstate
        return bool(np.isfinite(flat).all())
    with np.errstate(all="ignore"):  # the overflow and NaN are what we look for
        square = np.dot(flat, flat)
    return bool(np.isfinite(square)) or bool(np.isfinite(flat).all())


@contextlib.contextmanager
def threads_at_most(limit: int) -> Iterator[None]:
    """Cap the row-parallel ops' threads at `limit` inside the block (for the whole process)."""
    global _cap
    previous, _cap = _cap, limit if _cap is None else min(_cap, limit)
    try:
        yield
    finally:
        _cap = previous


class CpuWatch:
    """How many cores other processes kept busy since the last look: the machine's busy time
    (/proc/stat, hypervisor steal included) less this process's own CPU time. Linux only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 own_times: Callable[[], os.times_result] = os.times) -> None:
        self._clock, self._own_times = clock, own_times
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()
        self._estimate: float | None = None

    @staticmethod
    def _machine_busy_jiffies() -> int | None:
        try:
            with open("/proc/stat", "rb") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        if len(fields) < 8:
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        return user + nice + system + irq + softirq + steal

    def _sample(self) -> tuple[float, int | None, float]:
        own = self._own_times()
        return self._clock(), self._machine_busy_jiffies(), own.user + own.system

    def others(self, min_interval_s: float = 0.1) -> float | None:
        """Cores' worth of other processes' CPU use over the last interval of at least
        `min_interval_s` (shorter ones hold too few clock ticks to tell): a look that comes sooner
        returns the last estimate and lets the interval go on. None when unknown."""
        now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        if busy0 is None or busy1 is None:
            return None
        if t1 - t0 >= min_interval_s and t1 > t0:
            self._estimate = max(0.0, ((busy1 - busy0) / self._tick - (own1 - own0)) / (t1 - t0))
            self._last = now
        return self._estimate


_watch: CpuWatch | None = None


def free_cores(probe_s: float = 0.05) -> int | None:
    """Cores that other processes left free, by their CPU use over the last 0.1 s or more (the
    first call watches for `probe_s`); None where that cannot be told (no /proc/stat). A core
    counts as busy when others used at least 0.6 of one."""
    global _watch
    if _watch is None:
        _watch = CpuWatch()
        time.sleep(probe_s)
        others = _watch.others(min_interval_s=0.0)
    else:
        others = _watch.others()
    if others is None:
        return None
    return max(1, _CPUS - int(others + 0.4))


_blas_controller: object = None  # threadpoolctl's ThreadpoolController, made when first needed
_modules_seen = [0]


def _new_libraries_loaded() -> bool:
    """Whether modules were imported since the last look (cheap: a length); a new BLAS may have come."""
    import sys

    count = len(sys.modules)
    changed, _modules_seen[0] = count != _modules_seen[0], count
    return changed


@contextlib.contextmanager
def blas_threads_at_most(limit: int) -> Iterator[None]:
    """Cap the BLAS library's threads at `limit` inside the block, then restore them.

    Uses threadpoolctl when it is installed (scikit-learn brings it); without it, does nothing.
    Never raises the count above what the library has now (a user's own setting stays a ceiling).
    Small GEMMs gain little from a second BLAS thread, and its spinning between calls slows the
    NumPy work on the other core (measured: Adam on W2a's parameters 40% slower).
    """
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas_controller = False
        else:
            _blas_controller = ThreadpoolController()
    elif _blas_controller and _blas_controller.lib_controllers and _new_libraries_loaded():
        _blas_controller = _blas_controller.__class__()  # a BLAS loaded since (SciPy's, torch's): cap it too
    if not _blas_controller:
        yield
        return
    now = [lib.num_threads for lib in _blas_controller.lib_controllers if lib.user_api == "blas"]
    if not now or limit >= max(now):
        yield
        return
    with _blas_controller.limit(limits=limit, user_api="blas"):
        yield
