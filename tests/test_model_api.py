"""Keras behaviour of Sequential: building, compile-time pairing, data checks before any update,
History semantics, callbacks, weights and saving."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from logitnet import Sequential, callbacks, losses, models, optimizers
from logitnet.layers import Dense, Input


def _blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (np.eye(3)[y] * 3 + rng.normal(0, 1, (n, 3))).astype(np.float32), y


def _model(out=None, loss="sparse_categorical_crossentropy", **kw):
    m = Sequential([Dense(8, "relu"), out or Dense(3, "softmax")], seed=0, **kw)
    m.compile(optimizer=optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    return m


def test_deferred_build_input_and_weights_order():
    m = Sequential([Dense(4, "relu"), Dense(2, "softmax")])
    assert not m.built
    m.build((3,))
    assert [w.shape for w in m.get_weights()] == [(3, 4), (4,), (4, 2), (2,)]
    assert m.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    m2 = Sequential([Input(shape=(3,)), Dense(4, "relu"), Dense(2, "softmax")])
    assert m2.count_params() == m.count_params()  # built from Input, as Keras
    lines = []
    m2.summary(print_fn=lines.append)
    row = next(line for line in lines[0].splitlines() if "dense_1" in line)
    assert row.startswith(" dense_1 (Dense)") and "(None, 2)" in row and row.split()[-1] == "10"
    assert "Total params: 26 (104.00 B)" in lines[0]
    with pytest.raises(ValueError, match="weight 0 has shape \\(2, 4\\), expected \\(3, 4\\)"):
        m.set_weights([np.zeros((2, 4)), np.zeros(4), np.zeros((4, 2)), np.zeros(2)])
    with pytest.raises(ValueError, match="expected 4 weight arrays"):
        m.set_weights([np.zeros((3, 4))])
    with pytest.raises(ValueError, match="Input\\(...\\) must be the first"):
        Sequential([Dense(2), Input((3,))])


@pytest.mark.parametrize("last, loss, message", [
    (Dense(3, "softmax"), losses.SparseCategoricalCrossentropy(from_logits=True), "already outputs probabilities"),
    (Dense(3), "sparse_categorical_crossentropy", "linear and outputs logits"),
    (Dense(1, "softmax"), "categorical_crossentropy", "softmax over one unit always outputs 1"),
    (Dense(1, "sigmoid"), losses.BinaryCrossentropy(from_logits=True), "already outputs probabilities"),
    (Dense(2, "relu"), "binary_crossentropy", "cannot follow a 'relu' output"),
    (Dense(2, "softmax"), "binary_crossentropy", "cannot follow a 'softmax' output"),
])
def test_inconsistent_pairs_are_caught_at_compile(last, loss, message):
    m = Sequential([Dense(4, "relu"), last])
    with pytest.raises(ValueError, match=message):
        m.compile(optimizer="adam", loss=loss)


def test_predict_returns_probabilities_or_logits():
    x, y = _blobs()
    soft = _model()
    soft.fit(x, y, epochs=2, verbose=0)
    p = soft.predict(x, verbose=0)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(soft(x), p)
    lin = _model(Dense(3), losses.SparseCategoricalCrossentropy(from_logits=True))
    lin.fit(x, y, epochs=2, verbose=0)
    logits = lin.predict(x, verbose=0)
    assert (logits < 0).any() or (logits > 1).any()  # raw scores, not probabilities


def _set(a, row, value):
    """A copy of a (as floats when value is one) with a[row] = value."""
    a = a.astype(np.result_type(a.dtype, np.asarray(value).dtype), copy=True)
    a[row] = value
    return a


# fit runs over 120 samples in batches of 32 without shuffling, and each mistake marked True sits
# past the first batch (row 100 or 110, or y one label short of the last batch), or is a whole
# array that the training arithmetic would accept (strings and objects become floats). Without the
# up-front check those fits would update on the first batches before failing, so comparing the
# weights tests that nothing moved. The ones marked False (one-hot rows for a sparse loss, a wrong
# width, an empty x) fail in the first batch's arithmetic, or have no batch, whether checked or
# not: comparing the weights after them could not fail, so it is not done.
@pytest.mark.parametrize("make_bad, message, checked", [
    (lambda x, y: (x, _set(y, 100, 3)), "class label 3 is out of range", True),
    (lambda x, y: (x, _set(y, 100, 0.5)), "non-integer value 0.5", True),
    (lambda x, y: (x, np.eye(3)[y]), "these look one-hot: use CategoricalCrossentropy", False),
    (lambda x, y: (x, y[:-1]), "x has 120 samples but y has 119", True),
    (lambda x, y: (_set(x, 100, np.nan), y), "contains nan at row 100, column 0", True),
    (lambda x, y: (x[:, :2], y), "x has 2 features but the model expects 3", False),
    (lambda x, y: (x.astype(str), y), "x must be numeric", True),
    (lambda x, y: (x[:0], y[:0]), "x is empty", False),
    (lambda x, y: (_set(x, 110, np.inf), y), "contains inf at row 110", True),
    (lambda x, y: (x.astype(object), y), "x must be numeric", True),
])
def test_bad_data_is_refused_before_any_update(make_bad, message, checked):
    x, y = _blobs()
    m = _model()
    m.fit(x[:10], y[:10], epochs=1, verbose=0)
    before = m.get_weights()
    bad_x, bad_y = make_bad(x, y)
    with pytest.raises(ValueError, match=message):
        m.fit(bad_x, bad_y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    if checked:
        for a, b in zip(before, m.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_bad_hyperparameters_and_bce_targets():
    x, y = _blobs()
    m = _model()
    for kwargs, message in [({"epochs": -1}, "epochs must be an integer >= 0"),
                            ({"batch_size": 0}, "batch_size must be an integer >= 1"),
                            ({"validation_split": 1.0}, "validation_split must be in")]:
        with pytest.raises(ValueError, match=message):
            m.fit(x, y, verbose=0, **kwargs)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=float("nan"))
    b = _model(Dense(1, "sigmoid"), "binary_crossentropy")
    with pytest.raises(ValueError, match=r"binary targets must lie in \[0, 1\], got 2"):
        b.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="must be compiled first"):
        Sequential([Dense(2, "softmax")]).fit(x, y)


def test_target_shapes_keras_accepts():
    x, y = _blobs()
    a, b = _model(), _model()
    a.fit(x, y, epochs=1, shuffle=False, verbose=0)
    b.fit(x, y[:, None], epochs=1, shuffle=False, verbose=0)  # sparse labels (n, 1)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    yb = (y == 0).astype(float)
    c, d = _model(Dense(1, "sigmoid"), "binary_crossentropy"), _model(Dense(1, "sigmoid"), "binary_crossentropy")
    c.fit(x, yb, epochs=1, shuffle=False, verbose=0)  # (n,) for one sigmoid unit
    d.fit(x, yb[:, None], epochs=1, shuffle=False, verbose=0)
    for u, v in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_array_equal(u, v)
    e = _model(loss="categorical_crossentropy")
    e.fit(x, np.eye(3)[y], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="use SparseCategoricalCrossentropy"):
        e.fit(x, y, verbose=0)
    not_one_hot = np.eye(3)[y]
    not_one_hot[4, :2] = 1
    with pytest.raises(ValueError, match="row 4 sums to 2"):
        e.fit(x, not_one_hot, verbose=0)


class _BatchLosses(callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    x, y = _blobs(n=70)
    m = _model()
    rec = _BatchLosses()
    hist = m.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[rec])
    sizes = [32, 32, 6]  # the short last batch weighs less
    assert hist.history["loss"][0] == pytest.approx(np.dot(rec.losses, sizes) / 70, rel=1e-12)
    assert set(hist.history) == {"loss", "accuracy"}


def test_train_on_batch_returns_the_loss_before_the_update():
    x, y = _blobs(n=16)
    m = _model()
    m.build((3,))
    before = m.evaluate(x, y, batch_size=16, verbose=0)
    loss, acc = m.train_on_batch(x, y)
    assert loss == pytest.approx(before[0], rel=1e-6) and acc == pytest.approx(before[1])
    assert m.test_on_batch(x, y)[0] < loss  # the step helped
    assert m.train_on_batch(x, y, return_dict=True).keys() == {"loss", "accuracy"}


def test_validation_and_weights():
    x, y = _blobs(n=200)
    m = _model()
    hist = m.fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    held = m.evaluate(x[150:], y[150:], verbose=0, return_dict=True)
    assert hist.history["val_loss"][-1] == pytest.approx(held["loss"], rel=1e-6)
    m2 = _model()
    hist = m2.fit(x[:150], y[:150], epochs=1, validation_data=(x[150:], y[150:]), verbose=0)
    assert "val_accuracy" in hist.history
    # sample_weight and class_weight scale each sample's loss.
    m3 = _model()
    m3.build((3,))
    w = np.linspace(0, 3, 200)  # mean 1.5: dividing by n and by the sum of the weights differ
    plain = m3.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    per = losses.sparse_categorical_crossentropy(y, m3.predict(x, verbose=0)).astype(np.float64)
    assert plain == pytest.approx(per.mean(), rel=1e-5)
    weighted = m3.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)["loss"]
    assert weighted == pytest.approx((per * w).sum() / 200, rel=1e-5)  # Keras: / batch size, not / sum(w)
    assert weighted != pytest.approx((per * w).sum() / w.sum(), rel=0.1)


def _imbalanced_three(counts, seed):
    """Three overlapping Gaussian classes in 2-D, counts[k] samples of class k."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]])
    x = np.concatenate([rng.normal(centres[k], 1, (n, 2)) for k, n in enumerate(counts)])
    return x.astype(np.float32), np.repeat(np.arange(3), counts)


def test_class_weight_raises_the_minority_recall():
    x, y = _imbalanced_three([320, 40, 40], seed=0)  # 80 / 10 / 10
    x_test, y_test = _imbalanced_three([800, 100, 100], seed=1)
    recalls, weights = [], []
    for class_weight in (None, {0: 1.0, 1: 8.0, 2: 8.0}):
        m = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=30, verbose=0, class_weight=class_weight)
        pred = m.predict(x_test, verbose=0).argmax(axis=1)
        recalls.append([(pred[y_test == k] == k).mean() for k in range(3)])
        weights.append(m.get_weights())
    (major, *minor), (major_w, *minor_w) = recalls
    # Measured: unweighted, every test sample is called class 0 (minority recalls 0.0 and 0.0);
    # weighted 8:1, the minority recalls are 0.79 and 0.81 (and class 0 falls to 0.43).
    assert max(minor) <= 0.2 and min(minor_w) >= 0.6 and major_w < major
    assert np.mean(recalls[1]) >= np.mean(recalls[0]) + 0.15  # balanced accuracy
    assert not np.array_equal(weights[0][0], weights[1][0])


def test_class_weight_loss_is_the_weighted_sum_over_the_batch_size():
    # Keras' reduction "sum_over_batch_size": sum_i w[y_i] * loss_i / n, not / sum_i w[y_i].
    x, y = _imbalanced_three([10, 4, 2], seed=2)
    class_weight = {0: 1.0, 1: 5.0, 2: 3.0}
    w = np.array([1.0, 5.0, 3.0])[y]  # sum 36, against n = 16
    m = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0, dtype="float64")
    m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    m.build((2,))
    start = m.get_weights()
    per = -np.log(m.predict(x, verbose=0)[np.arange(16), y])
    expected = np.sum(w * per) / 16
    assert m.train_on_batch(x, y, class_weight=class_weight) == pytest.approx(expected, rel=1e-12)
    assert expected > 1.5 * np.sum(w * per) / w.sum()  # the two conventions are far apart here
    stepped = m.get_weights()
    # fit over one full batch minimises the same loss, and takes the same step
    m.set_weights(start)
    hist = m.fit(x, y, batch_size=16, epochs=1, shuffle=False, class_weight=class_weight, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    for a, b in zip(m.get_weights(), stepped):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the step is SGD on that loss: the gradient of sum(w * loss) / n at the start, checked on the
    # output bias, whose gradient is sum_i w_i (p_i - onehot(y_i)) / n
    m.set_weights(start)
    p = m.predict(x, verbose=0)
    grad_b = (w[:, None] * (p - np.eye(3)[y])).sum(axis=0) / 16
    np.testing.assert_allclose(stepped[3], start[3] - 0.1 * grad_b, rtol=1e-10, atol=1e-14)


def test_class_weight_equals_the_matching_sample_weight():
    x, y = _blobs()
    a, b = _model(), _model()
    a.fit(x, y, epochs=1, shuffle=False, class_weight={0: 2.0, 2: 0.5}, verbose=0)
    b.fit(x, y, epochs=1, shuffle=False, sample_weight=np.array([2.0, 1.0, 0.5])[y], verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def test_same_seed_same_weights_and_different_seed_different():
    x, y = _blobs()
    runs = []
    for seed in (5, 5, 6):
        m = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=seed)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, verbose=0)
        runs.append(m.get_weights())
    for u, v in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_early_stopping_restores_best_weights_and_checkpoints(tmp_path):
    x, y = _blobs(n=200)
    m = _model()
    snapshots = []

    class Snap(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append((logs["val_loss"], self.model.get_weights()))

    stop = callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0, restore_best_weights=True)
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "m_{epoch:02d}.logitnet"))
    hist = m.fit(x, y, epochs=20, validation_split=0.2, callbacks=[Snap(), stop, ckpt], verbose=0)
    # min_delta=10 means no epoch counts as an improvement after the first: stop after 2 epochs.
    assert len(hist.history["loss"]) == 2 and stop.stopped_epoch == 1
    for a, b in zip(m.get_weights(), snapshots[0][1]):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_01.logitnet", "m_02.logitnet"]
    with pytest.raises(ValueError, match="monitors 'val_auc'"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_auc")])


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_stops_training_and_keeps_the_last_finite_weights():
    from logitnet.model import DivergenceWarning

    x, y = _blobs()
    m = Sequential([Dense(8, "relu"), Dense(3, "softmax")], seed=0)
    m.compile(optimizer=optimizers.SGD(1e30), loss="sparse_categorical_crossentropy")
    with pytest.warns(DivergenceWarning, match=r"training stopped at epoch 1, batch \d+: .* weights are "
                                                r"those from before that batch"):
        hist = m.fit(x * 1e10, y, epochs=5, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())
    assert hist.history == {}  # no epoch was completed
    # TerminateOnNaN still stops on a non-finite batch loss reported to it.
    stop = callbacks.TerminateOnNaN()
    stop.set_model(m)
    m.stop_training = False
    stop.on_train_batch_end(0, {"loss": float("nan")})
    assert m.stop_training


def test_progress_output(capsys):
    x, y = _blobs()
    _model().fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
    _model().fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_save_and_load_round_trip_without_pickle(tmp_path):
    x, y = _blobs()
    m = _model()
    m.fit(x, y, epochs=3, verbose=0)
    path = tmp_path / "model.logitnet"
    m.save(str(path))
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert all(n == "config.json" or n.endswith(".npy") for n in names)
        assert json.loads(zf.read("config.json"))["format"] == "logitnet-model"
        for n in names:
            if n.endswith(".npy"):  # plain arrays: loadable with pickle refused
                import io

                np.load(io.BytesIO(zf.read(n)), allow_pickle=False)
    loaded = models.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    assert loaded.optimizer.get_config() == m.optimizer.get_config()
    # Training continues identically from the saved optimizer state.
    m.fit(x, y, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    bad = tmp_path / "not_a_model.logitnet"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a readable logitnet model file"):
        models.load_model(str(bad))
    with pytest.raises(FileNotFoundError):
        models.load_model(str(tmp_path / "missing"))


def test_returned_outputs_are_not_overwritten_by_later_calls():
    # Layers reuse work buffers between batches; what the model hands out must be the caller's own.
    x, y = _blobs()
    for last, loss in ((Dense(3), losses.SparseCategoricalCrossentropy(from_logits=True)),
                       (Dense(3, "softmax"), "sparse_categorical_crossentropy")):
        m = _model(last, loss)
        first = m(x[:16])
        kept = first.copy()
        m(x[16:32])
        m.predict_on_batch(x[32:48])
        m.fit(x, y, epochs=1, batch_size=16, verbose=0)
        np.testing.assert_array_equal(first, kept)


def test_checkpoint_then_resume_is_bit_identical(tmp_path):
    x, y = _blobs(n=200)

    def make():
        m = Sequential([Dense(16, "relu"), Dense(3, "softmax")], seed=4)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    whole = make()
    whole.fit(x, y, epochs=6, validation_split=0.1, verbose=0)
    cut = make()
    cut.fit(x, y, epochs=3, validation_split=0.1, verbose=0,
            callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "ck{epoch}.logitnet"))])
    resumed = models.load_model(str(tmp_path / "ck3.logitnet"))
    assert resumed.metadata["training_state"]["epoch"] == 3
    resumed.fit(x, y, epochs=6, initial_epoch=3, validation_split=0.1, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_small_steps_train_on_one_blas_thread_and_restore_the_setting():
    # A second BLAS thread spins between small GEMMs and slows the rest of the step, so fit()
    # caps BLAS at one thread for small steps (with threadpoolctl), then restores the setting.
    # The weights then do not depend on how many BLAS threads were configured.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from logitnet.ops._core import blas_threads_at_most

    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        pytest.skip("threadpoolctl sees no BLAS library")
    rng = np.random.default_rng(0)
    x = rng.random((256, 784), dtype=np.float32)
    y = rng.integers(0, 10, 256)

    def train(blas_threads: int) -> tuple[np.ndarray, list[int]]:
        with controller.limit(limits=blas_threads):
            model = Sequential([Input((784,)), Dense(128, activation="relu"), Dense(10)], seed=0)
            model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, batch_size=32, epochs=2, verbose=0)
            after = [lib.num_threads for lib in controller.lib_controllers]
        return model.params.copy(), after

    one, after_one = train(1)
    two, after_two = train(2)
    np.testing.assert_array_equal(one, two)
    assert after_one == [1] * len(after_one) and after_two == [2] * len(after_two)
    with blas_threads_at_most(1):
        assert all(lib.num_threads == 1 for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)
