"""fit's thread counts on a busy machine: other processes' CPU use read from /proc/stat less this
process's own, the cores they leave free, and BLAS and the ops capped at those while fit trains
(never raised above what they were), chosen again at each epoch's start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import logitnet as ln
from logitnet import training
from logitnet.ops import _core


class _Clock:
    """A fake machine: busy jiffies, this process's CPU seconds and the time, moved by hand."""

    def __init__(self, monkeypatch):
        self.t, self.busy, self.own = 100.0, 10_000, 5.0
        monkeypatch.setattr(_core.CpuWatch, "_machine_busy_jiffies", staticmethod(lambda: self.busy))

    def watch(self) -> _core.CpuWatch:
        return _core.CpuWatch(lambda: self.t, lambda: os.times_result((self.own, 0.0, 0.0, 0.0, self.t)))

    def advance(self, seconds: float, machine_cores: float, own_cores: float) -> None:
        self.t += seconds
        self.busy += round(machine_cores * seconds * 100)
        self.own += own_cores * seconds


def test_other_processes_use_is_the_machine_s_less_our_own(monkeypatch):
    clock = _Clock(monkeypatch)
    monkeypatch.setattr(_core.os, "sysconf", lambda name: 100)
    watch = clock.watch()
    clock.advance(0.05, machine_cores=0.9, own_cores=0.0)
    assert watch.others() is None  # no estimate yet: the interval goes on
    clock.advance(2.0, machine_cores=1.9, own_cores=1.0)  # we used one core, something else 0.9
    assert watch.others() == pytest.approx(0.9, abs=0.01)
    clock.advance(1.0, machine_cores=1.0, own_cores=1.0)
    assert watch.others() == pytest.approx(0.0)
    clock.advance(0.05, machine_cores=2.0, own_cores=0.0)
    assert watch.others() == pytest.approx(0.0)  # too soon to tell: the last estimate, the interval goes on
    clock.advance(0.45, machine_cores=2.0, own_cores=0.0)
    assert watch.others() == pytest.approx(2.0, abs=0.03)  # over the whole 0.5 s


@pytest.mark.parametrize(("others", "cores", "free"), [(0.0, 2, 2), (0.55, 2, 2), (0.6, 2, 1), (0.9, 2, 1),
                                                       (1.8, 2, 1), (3.2, 8, 5)])
def test_a_core_counts_as_busy_when_others_use_most_of_it(monkeypatch, others, cores, free):
    clock = _Clock(monkeypatch)
    monkeypatch.setattr(_core.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(_core, "_CPUS", cores)
    monkeypatch.setattr(_core, "_watch", clock.watch())
    clock.advance(10.0, machine_cores=others, own_cores=0.0)
    assert _core.free_cores() == free


def test_without_proc_stat_nothing_is_capped(monkeypatch):
    monkeypatch.setattr(_core.CpuWatch, "_machine_busy_jiffies", staticmethod(lambda: None))
    monkeypatch.setattr(_core, "_watch", None)
    assert _core.free_cores(probe_s=0.0) is None


def _recorder(seen: list):
    from threadpoolctl import threadpool_info

    class Record(ln.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            seen.append((ln.ops.num_threads(), max(blas)))

    return Record()


def _fit(model, seen, epochs=3, batch_size=64):
    x = np.random.default_rng(0).standard_normal((256, 20))
    model.fit(x, (x[:, 0] > 0).astype(int), epochs=epochs, batch_size=batch_size, verbose=0,
              callbacks=[_recorder(seen)])


def _model(width):
    model = ln.Sequential([ln.layers.Dense(width, "relu"), ln.layers.Dense(2)], seed=0)
    model.compile("adam", ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fit_caps_blas_and_the_ops_at_the_free_cores_epoch_by_epoch(monkeypatch):
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.setattr(training.os, "cpu_count", lambda: 4)
    free = iter([4, 1, 3, 3])
    monkeypatch.setattr(training, "free_cores", lambda: next(free))
    monkeypatch.setattr(training, "_SMALL_STEP_FLOPS", 0)  # every step is large here
    ln.ops.set_num_threads(4)
    try:
        with threadpool_limits(4, user_api="blas"):
            seen: list = []
            _fit(_model(64), seen, epochs=4)
            assert seen == [(4, 4), (1, 1), (3, 3), (3, 3)]
            # Afterwards both are as they were.
            assert ln.ops.num_threads() == 4
            assert max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas") == 4
            # A cap never raises a count: BLAS at 2 stays at 2 with 3 cores free.
            with threadpool_limits(2, user_api="blas"):
                free = iter([3])
                seen = []
                _fit(_model(64), seen, epochs=1)
                assert seen == [(3, 2)]
    finally:
        ln.ops.set_num_threads(None)


def test_small_steps_keep_one_blas_thread_and_the_ops_only_the_free_cores(monkeypatch):
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(training.os, "cpu_count", lambda: 2)
    free = iter([2, 1])
    monkeypatch.setattr(training, "free_cores", lambda: next(free))
    ln.ops.set_num_threads(2)
    try:
        with threadpool_limits(2, user_api="blas"):
            seen: list = []
            _fit(_model(8), seen, epochs=2)
        assert seen == [(2, 1), (1, 1)]
    finally:
        ln.ops.set_num_threads(None)


@pytest.mark.skipif(not os.path.exists("/proc/stat") or (os.cpu_count() or 1) < 2, reason="Linux, 2+ cores")
def test_a_busy_loop_in_another_process_takes_a_core_away():
    _core.free_cores(probe_s=0.0)  # start an interval
    hog = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.2)
        _core.free_cores()  # the interval while it started
        time.sleep(0.5)
        assert _core.free_cores() <= (os.cpu_count() or 1) - 1
    finally:
        hog.kill()
        hog.wait()


def test_large_inference_takes_the_free_cores_too_and_small_inference_is_left_alone(monkeypatch):
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info, threadpool_limits

    monkeypatch.setattr(training.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(training, "free_cores", lambda: 1)
    model = _model(64)
    model.build((None, 20))
    seen = []
    real = model._logits

    def spy(x, training=True):
        seen.append((len(x), ln.ops.num_threads(),
                     max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")))
        return real(x, training)

    monkeypatch.setattr(model, "_logits", spy)
    ln.ops.set_num_threads(4)
    try:
        with threadpool_limits(4, user_api="blas"):
            big = np.zeros((40_000, 20))  # 2 x 1,474 parameters x 40,000 rows: over 5e7 FLOPs
            model.predict(big, batch_size=40_000, verbose=0)
            model.predict_on_batch(np.zeros((2, 20)))
            assert seen == [(40_000, 1, 1), (2, 4, 4)]
    finally:
        ln.ops.set_num_threads(None)
