"""Inference from many threads gives what one thread gives; training from two threads is refused."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from logitnet import Sequential, callbacks, datasets, ops
from logitnet.layers import Dense
from logitnet.sklearn import LogitNetClassifier

THREADS, CALLS = 4, 300


def _digits_model(**kw) -> tuple[Sequential, np.ndarray, np.ndarray]:
    x, y = datasets.load_digits()
    x = (x / 16.0).astype(np.float32)
    model = Sequential([Dense(25, "relu"), Dense(15, "relu"), Dense(10, "softmax")], seed=0, **kw)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


def _in_threads(work, blocks: list) -> list:
    """Run work(block) for every block, spread over THREADS threads started together."""
    results: list = [None] * len(blocks)
    start = threading.Barrier(THREADS)
    errors: list = []

    def run(t: int) -> None:
        start.wait()
        try:
            for i in range(t, len(blocks), THREADS):
                results[i] = work(blocks[i])
        except BaseException as err:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    return results


def _blocks(x: np.ndarray, y: np.ndarray | None = None) -> list:
    # Blocks of differing sizes (1 to 40 rows), so that threads run different shapes at once.
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(x) - 40, CALLS)
    sizes = rng.integers(1, 41, CALLS)
    return [(x[s:s + k], None if y is None else y[s:s + k]) for s, k in zip(starts, sizes)]


@pytest.mark.parametrize("call", ["predict", "call", "predict_on_batch", "predict_logits", "evaluate"])
def test_model_inference_from_threads_equals_one_thread(call):
    model, x, y = _digits_model()
    work = {
        "predict": lambda b: model.predict(b[0], verbose=0),
        "call": lambda b: model(b[0]),
        "predict_on_batch": lambda b: model.predict_on_batch(b[0]),
        "predict_logits": lambda b: model.predict_logits(b[0]),
        "evaluate": lambda b: np.array(model.evaluate(b[0], b[1], verbose=0)),
    }[call]
    blocks = _blocks(x, y)
    alone = [work(b) for b in blocks]
    together = _in_threads(work, blocks)
    for one, many in zip(alone, together):
        np.testing.assert_array_equal(many, one)


def test_float64_model_and_wide_blocks_from_threads():
    # Blocks above predict's 1,024-row chunk and a float64 model take other paths through the layers.
    model, x, _ = _digits_model(dtype="float64")
    blocks = [(x[: 1000 + 60 * k],) for k in range(13)] * 4
    alone = [model.predict(b[0], verbose=0) for b in blocks]
    together = _in_threads(lambda b: model.predict(b[0], verbose=0), blocks)
    for one, many in zip(alone, together):
        np.testing.assert_array_equal(many, one)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba", "decision_function", "score"])
def test_estimator_methods_from_threads_equal_one_thread(method):
    x, y = datasets.load_digits()
    clf = LogitNetClassifier(hidden_layer_sizes=(25, 15), epochs=2, random_state=0).fit(x / 16.0, y)
    blocks = _blocks(x / 16.0, y)
    if method == "score":
        def work(b):
            return clf.score(*b)
    else:
        def work(b):
            return getattr(clf, method)(b[0])
    alone = [work(b) for b in blocks]
    together = _in_threads(work, blocks)
    for one, many in zip(alone, together):
        np.testing.assert_array_equal(many, one)


def test_predict_while_training_does_not_disturb_training():
    # A thread predicting during fit must not touch the training's work buffers: the trained
    # weights equal those of the same fit with nobody predicting.
    x, y = datasets.load_digits()
    x = (x / 16.0).astype(np.float32)

    def trained(predicting: bool) -> list[np.ndarray]:
        model = Sequential([Dense(25, "relu"), Dense(15, "relu"), Dense(10, "softmax")], seed=3)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.build((64,))
        stop = threading.Event()

        def predict_loop() -> None:
            while not stop.is_set():
                model.predict(x[:37], verbose=0)
                model(x[:1])

        th = threading.Thread(target=predict_loop)
        if predicting:
            th.start()
        try:
            model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        finally:
            stop.set()
            if predicting:
                th.join()
        return model.get_weights()

    for quiet, busy in zip(trained(False), trained(True)):
        np.testing.assert_array_equal(busy, quiet)


def test_training_from_two_threads_at_once_is_refused():
    model, x, y = _digits_model()
    inside = threading.Event()
    release = threading.Event()

    class Holding(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            inside.set()
            release.wait(30)

    first = threading.Thread(target=lambda: model.fit(x, y, epochs=1, verbose=0, callbacks=[Holding()]))
    first.start()
    try:
        assert inside.wait(30)
        before = model.get_weights()
        with pytest.raises(RuntimeError, match="already training in another thread"):
            model.fit(x, y, epochs=1, verbose=0)
        with pytest.raises(RuntimeError, match="already training in another thread"):
            model.train_on_batch(x[:8], y[:8])
        for now, then in zip(model.get_weights(), before):  # the refused calls changed nothing
            np.testing.assert_array_equal(now, then)
        np.testing.assert_array_equal(model.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0))
    finally:
        release.set()
        first.join()
    model.fit(x, y, epochs=1, verbose=0)  # once the first fit has ended, training works again


def test_a_pickled_copy_has_its_own_locks():
    import pickle

    model, x, y = _digits_model()
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(x[:9], verbose=0), model.predict(x[:9], verbose=0))
    copy.fit(x, y, epochs=1, verbose=0)  # trains: its lock is new and free


def test_row_parallel_ops_from_threads_equal_one_thread():
    # Batches above the ops' parallel threshold go to the shared thread pool from every caller.
    rng = np.random.default_rng(1)
    blocks = [(rng.normal(0, 5, (300 + 7 * k, 1000)).astype(np.float32 if k % 2 else np.float64),
               rng.integers(0, 1000, 300 + 7 * k)) for k in range(12)]

    def work(b):
        loss, grad = ops.softmax_cross_entropy(*b)
        return np.concatenate([loss[:, None], grad, ops.log_softmax(b[0])], axis=1)

    alone = [work(b) for b in blocks]
    ops.set_num_threads(None)  # a fresh pool, made while the threads race for it
    together = _in_threads(work, blocks)
    for one, many in zip(alone, together):
        np.testing.assert_array_equal(many, one)
