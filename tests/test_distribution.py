"""Dask data: fit, evaluate and predict stream blocks and give what in-memory data gives; on a
2-worker LocalCluster, data-parallel training gives the weights of one process, whatever the
number of workers; bad input is refused before any weight changes."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import logitnet as ln
from logitnet import callbacks
from logitnet.distribution import (
    DataParallel,
    Streaming,
    distribution,
    set_distribution,
)


def _data(n=1200, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1)
    return x, y


def _model(dtype="float64", optimizer="adam", l2=None):
    reg = None if l2 is None else ln.regularizers.l2(l2)
    model = ln.Sequential([ln.layers.Dense(16, "relu", kernel_regularizer=reg), ln.layers.Dense(3, "softmax")],
                          seed=1, dtype=dtype)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


# --- streaming, one process ---------------------------------------------------------------------
def test_streaming_equals_in_memory_for_the_same_row_order():
    x, y = _data()
    a, b = _model(), _model()
    ha = a.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0)
    # Blocks of 150 and batches of 64 do not line up: batches straddle blocks and windows.
    hb = b.fit(da.from_array(x, chunks=150), da.from_array(y, chunks=150), batch_size=64, epochs=3,
               shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha.history == hb.history


def test_float32_streaming_equals_in_memory_too():
    x, y = _data(n=500)
    a, b = _model("float32"), _model("float32")
    a.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    b.fit(da.from_array(x, chunks=(77, 8)), da.from_array(y, chunks=77), batch_size=32, epochs=2,
          shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_shuffled_streaming_is_seeded_and_visits_every_row_once():
    x, y = _data(n=600)
    xd, yd = da.from_array(x, chunks=100), da.from_array(y, chunks=100)
    a, b = _model(), _model()
    a.fit(xd, yd, batch_size=50, epochs=2, verbose=0)
    b.fit(xd, yd, batch_size=50, epochs=2, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)
    unshuffled = _model()
    unshuffled.fit(xd, yd, batch_size=50, epochs=2, shuffle=False, verbose=0)
    assert not np.array_equal(a.params, unshuffled.params)

    seen = []
    from logitnet.distribution import blocks, stream

    data = blocks.from_collections(da.from_array(np.arange(600.0)[:, None], chunks=100), da.arange(600, chunks=100))
    model = ln.Sequential([ln.layers.Dense(600, "softmax")], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    stream._check_model(model, data)
    source = stream.StreamSource(model, data, None, Streaming(window=2))
    try:
        for xb, tb, _ in source.batches(64, shuffle=True):
            seen.append(tb)
            np.testing.assert_array_equal(xb[:, 0], tb)  # rows stay whole
    finally:
        source.close()
    order = np.concatenate(seen)
    assert sorted(order.tolist()) == list(range(600)) and order.tolist() != list(range(600))
    assert [len(t) for t in seen] == [64] * 9 + [24]
    # Rows are shuffled within windows of 2 blocks: each window's 200 rows come from 2 blocks.
    assert all(len(set(order[i:i + 200] // 100)) == 2 for i in range(0, 600, 200))


@pytest.mark.parametrize(("chunks", "window", "batch"),
                         [(30, 1, 64), (100, 2, 48), (150, 8, 50), ((70, 130, 200, 50, 150), 3, 64)])
def test_each_shuffled_epoch_trains_on_the_plan_s_rows_in_order(chunks, window, batch):
    """Epoch by epoch, streaming trains on the rows (and their weights) in blocks.windows' order, cut
    into consecutive batches: with batches spanning several windows (30-row blocks one at a time,
    batch 64), with the next epoch's first window loaded ahead, with every block in one window, kept,
    and with blocks of unequal sizes."""
    from logitnet.distribution import blocks

    x, y = _data(n=600)
    w = np.random.default_rng(5).uniform(0.5, 2.0, 600)
    chunked = [da.from_array(v, chunks=chunks if isinstance(chunks, int) else (chunks,) + v.shape[1:])
               for v in (x, y, w)]
    streamed = _model()
    streamed.fit(chunked[0], chunked[1], sample_weight=chunked[2], batch_size=batch, epochs=3, verbose=0,
                 distribution=Streaming(window=window))
    reference = _model()
    rows = np.array(chunked[0].chunks[0])
    offsets = np.concatenate([[0], np.cumsum(rows)])
    for _ in range(3):
        order = np.concatenate([np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in ids])[perm]
                                for ids, perm in blocks.windows(rows, reference.shuffle_rng, True, window)])
        reference.fit(x[order], y[order], sample_weight=w[order], batch_size=batch, epochs=1, shuffle=False,
                      verbose=0)
    np.testing.assert_array_equal(streamed.params, reference.params)


def test_dataframes_and_series_train_as_arrays_do():
    x, y = _data(n=400)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    xf = dd.from_pandas(frame, npartitions=4)
    yf = dd.from_pandas(pd.Series(y, name="y"), npartitions=4)
    a, b = _model(), _model()
    a.fit(x, y, batch_size=40, epochs=2, shuffle=False, verbose=0)
    b.fit(xf, yf, batch_size=40, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_evaluate_predict_and_validation_on_dask_data():
    x, y = _data(n=700)
    xd, yd = da.from_array(x, chunks=128), da.from_array(y, chunks=128)
    model = _model()
    history = model.fit(xd, yd, batch_size=32, epochs=2, verbose=0, validation_data=(xd, yd))
    assert model.evaluate(xd, yd, verbose=0) == model.evaluate(x, y, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-15)
    probs = model.predict(xd)
    assert isinstance(probs, da.Array) and probs.chunks == (xd.chunks[0], (3,))
    np.testing.assert_allclose(probs.compute(), model.predict(x), rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.predict_logits(xd).compute(), model.predict_logits(x), rtol=1e-14, atol=1e-14)


def test_bad_dask_input_is_refused_before_any_weight_changes():
    x, y = _data(n=300)
    model = _model()
    model.build((8,))
    start = model.params.copy()
    xd = da.from_array(x, chunks=100)
    unknown = xd[xd[:, 0] > -100]
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        model.fit(unknown, da.from_array(y, chunks=100), verbose=0)
    with pytest.raises(ValueError, match="split into blocks differently"):
        model.fit(xd, da.from_array(y, chunks=150), verbose=0)
    frame = pd.DataFrame(x[:, :7], columns=list("abcdefg"))
    frame["h"] = ["u", "v", "w"] * 100
    with pytest.raises(ValueError, match="column 'h' has dtype .* not numeric"):
        model.fit(dd.from_pandas(frame, npartitions=3), dd.from_pandas(pd.Series(y), npartitions=3), verbose=0)
    with pytest.raises(ValueError, match="different partitions"):
        model.fit(dd.from_pandas(pd.DataFrame(x), npartitions=3), dd.from_pandas(pd.Series(y), npartitions=2),
                  verbose=0)
    with pytest.raises(ValueError, match="validation_split is not supported"):
        model.fit(xd, da.from_array(y, chunks=100), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="x has 9 features but the model expects 8"):
        model.fit(da.zeros((10, 9), chunks=5), da.zeros(10, chunks=5), verbose=0)
    bad = y.copy()
    bad[250] = 7  # in the last block: earlier blocks have trained when it arrives
    with pytest.raises(ValueError, match=r"block 2 \(rows 200 to 299\).*7"):
        model.fit(xd, da.from_array(bad, chunks=100), batch_size=10, shuffle=False, verbose=0)
    np.testing.assert_array_equal(model.params, start)
    assert model.optimizer.iterations == 0


def test_a_checkpoint_resumes_a_shuffled_stream_to_the_same_weights(tmp_path):
    x, y = _data(n=500)
    xd, yd = da.from_array(x, chunks=100), da.from_array(y, chunks=100)
    whole = _model()
    whole.fit(xd, yd, batch_size=32, epochs=4, verbose=0)
    path = tmp_path / "ckpt.logitnet"
    first = _model()
    first.fit(xd, yd, batch_size=32, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path))])
    resumed = ln.models.load_model(str(path))
    resumed.fit(xd, yd, batch_size=32, epochs=4, initial_epoch=2, verbose=0)
    np.testing.assert_array_equal(resumed.params, whole.params)


def test_set_distribution_checks_its_argument():
    assert distribution() is None
    with pytest.raises(TypeError, match="DataParallel"):
        set_distribution("cluster")
    with pytest.raises(ValueError, match="window"):
        Streaming(window=0)


# --- on a 2-worker cluster --------------------------------------------------------------------
def test_two_workers_train_as_one_process_and_as_one_worker(client):
    x, y = _data(n=1000)
    xd, yd = da.from_array(x, chunks=125), da.from_array(y, chunks=125)
    one = _model(l2=1e-3)
    h1 = one.fit(xd, yd, batch_size=64, epochs=3, verbose=0)
    set_distribution(DataParallel(client=client, window=4))
    try:
        assert distribution().client is client
        two = _model(l2=1e-3)
        h2 = two.fit(xd, yd, batch_size=64, epochs=3, verbose=0)
    finally:
        set_distribution(None)
    assert len(client.scheduler_info()["workers"]) == 2
    local = _model(l2=1e-3)
    local.fit(xd, yd, batch_size=64, epochs=3, verbose=0, distribution=Streaming(window=4))
    np.testing.assert_allclose(two.params, local.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h2.history["loss"], local.history.history["loss"], rtol=1e-12)
    assert not np.allclose(one.params, local.params)  # windows of 2 blocks visit rows otherwise

    # The gradients' sum follows the blocks, not the workers: one worker gives the same bits.
    solo = distributed.Client(client.scheduler.address, set_as_default=False)
    try:
        only = next(iter(solo.scheduler_info()["workers"]))
        x_one = da.from_array(x, chunks=125)
        again = _model(l2=1e-3)
        again.fit(x_one, yd, batch_size=64, epochs=3, verbose=0,
                  distribution=DataParallel(client=_OneWorker(solo, only), window=4))
    finally:
        solo.close()
    np.testing.assert_array_equal(again.params, two.params)
    assert h1.history["loss"][0] == pytest.approx(h2.history["loss"][0], rel=0.05)


def test_history_and_early_stopping_under_data_parallel_are_those_of_one_process(client):
    x, y = _data(n=600)
    xv, yv = _data(n=200, seed=5)
    data = (da.from_array(x, chunks=100), da.from_array(y, chunks=100))
    val = (da.from_array(xv, chunks=100), da.from_array(yv, chunks=100))
    runs = {}
    for name, dist in (("here", Streaming()), ("cluster", DataParallel(client=client))):
        model = _model(optimizer=ln.optimizers.Adam(0.05))  # a large step: val_loss soon stops improving
        stop = callbacks.EarlyStopping("val_loss", patience=1, restore_best_weights=True)
        history = model.fit(*data, batch_size=40, epochs=30, verbose=0, validation_data=val, callbacks=[stop],
                            distribution=dist)
        runs[name] = (model, history, stop)
    (here, h_here, s_here), (cluster, h_cluster, s_cluster) = runs["here"], runs["cluster"]
    assert len(h_here.history["loss"]) < 30 and h_here.epoch == h_cluster.epoch
    assert s_here.stopped_epoch == s_cluster.stopped_epoch
    for key, values in h_here.history.items():
        np.testing.assert_allclose(h_cluster.history[key], values, rtol=1e-10)
    np.testing.assert_allclose(cluster.params, here.params, rtol=1e-10, atol=1e-13)


class _OneWorker:
    """A client whose every task runs on one worker (as a cluster of one worker would)."""

    def __init__(self, client, worker):
        self._client, self._worker = client, worker

    def scheduler_info(self):
        info = self._client.scheduler_info()
        return {**info, "workers": {self._worker: info["workers"][self._worker]}}

    def compute(self, *args, **kwargs):
        return self._client.compute(*args, workers=[self._worker], allow_other_workers=False, **kwargs)

    def submit(self, *args, **kwargs):
        return self._client.submit(*args, workers=[self._worker], allow_other_workers=False, **kwargs)

    def gather(self, *args, **kwargs):
        return self._client.gather(*args, **kwargs)


def test_local_sgd_on_one_worker_is_synchronous_training(client):
    x, y = _data(n=512)
    xd, yd = da.from_array(x, chunks=128), da.from_array(y, chunks=128)
    solo = distributed.Client(client.scheduler.address, set_as_default=False)
    try:
        only = _OneWorker(solo, next(iter(solo.scheduler_info()["workers"])))
        sync, local = _model(), _model()
        sync.fit(xd, yd, batch_size=64, epochs=2, verbose=0, distribution=DataParallel(client=only))
        local.fit(xd, yd, batch_size=64, epochs=2, verbose=0, distribution=DataParallel(client=only, sync_every=3))
    finally:
        solo.close()
    # One replica: k Adam steps, then the "average" of one; the optimizer state travels with it.
    np.testing.assert_allclose(local.params, sync.params, rtol=1e-12, atol=1e-15)
    assert local.optimizer.iterations == sync.optimizer.iterations == 16


def test_local_sgd_averages_what_two_replicas_learned_on_their_halves(client):
    x, y = _data(n=128)
    model = _model(optimizer=ln.optimizers.SGD(0.1, momentum=0.9))
    model.build((8,))
    start = model.get_weights()
    history = model.fit(da.from_array(x, chunks=64), da.from_array(y, chunks=64), batch_size=64, epochs=1,
                        shuffle=False, verbose=0, distribution=DataParallel(client=client, sync_every=2))
    # By hand: replica r takes rows [64b + 32r, 64b + 32r + 32) of batches b = 0, 1, then the mean.
    learned = []
    for r in range(2):
        replica = _model(optimizer=ln.optimizers.SGD(0.1, momentum=0.9))
        replica.build((8,))
        replica.set_weights(start)
        for b in range(2):
            rows = slice(64 * b + 32 * r, 64 * b + 32 * r + 32)
            replica.train_on_batch(x[rows], y[rows])
        learned.append((replica.params.copy(), replica.optimizer.get_state()["momentum"]))
    np.testing.assert_allclose(model.params, (learned[0][0] + learned[1][0]) / 2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(model.optimizer.get_state()["momentum"], (learned[0][1] + learned[1][1]) / 2,
                               rtol=1e-13, atol=1e-15)
    assert model.optimizer.iterations == 2 and len(history.history["loss"]) == 1


def test_dask_prediction_runs_on_the_workers(client):
    x, y = _data(n=300)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    probs = model.predict(da.from_array(x, chunks=100))
    np.testing.assert_allclose(client.compute(probs).result(), model.predict(x), rtol=0, atol=1e-15)


def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    import socket
    import time

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s"):
        DataParallel(address=f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.monotonic() - start < 15


def test_a_worker_killed_mid_epoch_does_not_change_the_weights_and_a_stopped_fit_resumes(tmp_path):
    import os
    import signal

    x, y = _data(n=800)
    xd, yd = da.from_array(x, chunks=100), da.from_array(y, chunks=100)
    path = tmp_path / "ckpt.logitnet"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as c:
        steady = _model()
        steady.fit(xd, yd, batch_size=50, epochs=3, verbose=0, distribution=DataParallel(client=c))
        pids = list(c.run(os.getpid).values())

        class KillThenStop(callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 5 and pids:
                    os.kill(pids.pop(), signal.SIGKILL)  # the nanny starts a new worker; blocks are recomputed

            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 2:
                    raise KeyboardInterrupt  # the driver stopped after two epochs, each with a worker killed

        killed = _model()
        with pytest.raises(KeyboardInterrupt):
            killed.fit(xd, yd, batch_size=50, epochs=3, verbose=0, distribution=DataParallel(client=c),
                       callbacks=[KillThenStop(), callbacks.ModelCheckpoint(str(path))])
        assert not pids
        resumed = ln.models.load_model(str(path))
        assert resumed.metadata["training_state"]["epoch"] == 2
        resumed.fit(xd, yd, batch_size=50, epochs=3, initial_epoch=2, verbose=0, distribution=DataParallel(client=c))
    np.testing.assert_array_equal(resumed.params, steady.params)


def test_the_estimator_under_dask_ml_incremental_and_parallel_post_fit():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from logitnet.sklearn import LogitNetClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    xd, yd = da.from_array(x, chunks=500), da.from_array(y, chunks=500)
    settings = {"hidden_layer_sizes": (16,), "random_state": 0, "batch_size": 50, "learning_rate": 0.01}
    incremental = wrappers.Incremental(LogitNetClassifier(**settings), scoring="accuracy", shuffle_blocks=False)
    incremental.fit(xd, yd, classes=[0, 1])
    by_hand = LogitNetClassifier(**settings)
    for i in range(4):  # Incremental: one partial_fit per block, in order
        by_hand.partial_fit(x[i * 500:(i + 1) * 500], y[i * 500:(i + 1) * 500], classes=[0, 1])
    np.testing.assert_array_equal(incremental.estimator_.model_.params, by_hand.model_.params)
    assert incremental.score(xd, yd) == by_hand.score(x, y) > 0.9

    post = wrappers.ParallelPostFit(LogitNetClassifier(hidden_layer_sizes=(16,), random_state=0, epochs=5)).fit(x, y)
    probs = post.predict_proba(xd)
    assert isinstance(probs, da.Array)
    np.testing.assert_array_equal(probs.compute(), post.estimator.predict_proba(x))
    np.testing.assert_array_equal(post.predict(xd).compute(), post.estimator.predict(x))


def test_numpy_data_trains_in_memory_under_streaming_and_is_refused_by_data_parallel(client):
    x, y = _data(n=200)
    a, b = _model(), _model()
    a.fit(x, y, epochs=1, verbose=0)
    b.fit(x, y, epochs=1, verbose=0, distribution=Streaming(window=3))
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(TypeError, match="trains on Dask collections.*from_array"):
        _model().fit(x, y, epochs=1, verbose=0, distribution=DataParallel(client=client))
