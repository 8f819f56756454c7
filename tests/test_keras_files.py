"""Keras model files: the committed files written by Keras 3.15.1 and tf.keras 2.15 load with their
layers, settings and optimizer state, predict what Keras predicted, and train on exactly as Keras
did; `model.save("m.keras")` writes a file that loads back whole, byte for byte the same each time,
and that Keras itself loads and trains on in step (when Keras is installed)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import logitnet as ln
from logitnet import keras_files
from logitnet import layers as L
from logitnet.models import load_model, save_model

pytest.importorskip("h5py")

DATA = Path(__file__).parent / "data" / "keras"
FIXTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".keras", ".h5"))
TRAINED = [name for name in FIXTURES if "xb" in np.load(DATA / (Path(name).stem + ".npz"))]


def expected(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / (Path(name).stem + ".npz")))


def test_every_fixture_is_there():
    assert FIXTURES == ["k3_dense_adam.keras", "k3_dropout_uncompiled.keras", "k3_flatten_sgd.keras",
                        "k3_layers_rmsprop.keras", "k3_legacy_adam.h5", "k3_multilabel64.keras",
                        "tfk2_adam.h5", "tfk2_legacy_optimizer.h5", "tfk2_sgd.h5"]
    assert len(TRAINED) == 8


@pytest.mark.parametrize("name", FIXTURES)
def test_a_keras_file_predicts_what_keras_predicted(name):
    e = expected(name)
    model = load_model(DATA / name)
    np.testing.assert_allclose(model.predict(e["x"], verbose=0), e["predict"], rtol=0, atol=1e-6)


def test_a_float64_keras_file_gives_a_float64_model_exact_to_rounding():
    model = load_model(DATA / "k3_multilabel64.keras")
    assert model.dtype == np.float64 and all(w.dtype == np.float64 for w in model.weights)
    x = expected("k3_multilabel64.keras")["x"]
    w0, b0, w1, b1 = model.get_weights()
    hidden = 1 / (1 + np.exp(-(x @ w0 + b0)))
    np.testing.assert_allclose(model.predict(x, verbose=0), 1 / (1 + np.exp(-(hidden @ w1 + b1))), rtol=1e-14)
    assert type(model.loss).__name__ == "BinaryCrossentropy" and model.head.family == "sigmoid"
    assert model.optimizer.amsgrad and model.optimizer.learning_rate == 0.02


def test_every_layer_kind_reads_with_its_settings():
    model = load_model(DATA / "k3_layers_rmsprop.keras")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Normalization", "Dense", "LeakyReLU", "Dense", "ReLU", "Dense", "Dense", "Dense", "Softmax"]
    norm, d1, leaky, d2, relu, d3, d4, d5, _ = model.layers
    assert [d.activation_name for d in (d1, d2, d3, d4, d5)] == ["tanh", "elu", "gelu", "softplus", "linear"]
    assert d1.kernel_regularizer.l2 == pytest.approx(0.01) and d1.kernel_regularizer.l1 == 0
    assert leaky.negative_slope == pytest.approx(0.2)
    assert relu.get_config() == {**relu.get_config(), "max_value": 6.0, "negative_slope": pytest.approx(0.1),
                                 "threshold": pytest.approx(0.05)}
    assert norm.get_weights()[2] == 0  # Keras 3's adapt leaves its count at 0; read as written
    x = expected("k3_layers_rmsprop.keras")["x"]
    np.testing.assert_allclose(norm.get_weights()[0], x.mean(axis=0), rtol=1e-5)
    opt = model.optimizer
    assert (type(opt).__name__, opt.rho, opt.momentum, opt.centered) == ("RMSprop", 0.8, 0.5, True)
    assert opt.iterations == 6 and model.metric_names == ["accuracy"]
    assert type(model.loss).__name__ == "CategoricalCrossentropy"

    flat = load_model(DATA / "k3_flatten_sgd.keras")
    assert flat.input_shape == (None, 2, 3) and type(flat.layers[0]).__name__ == "Flatten"
    assert flat.loss.from_logits and flat.optimizer.nesterov and flat.optimizer.momentum == pytest.approx(0.9)
    dropout = load_model(DATA / "k3_dropout_uncompiled.keras")
    assert dropout.optimizer is None and dropout.layers[1].rate == 0.5 and dropout.layers[1].seed == 3
    assert dropout.layers[0].activation_name == "silu" and type(dropout.layers[-1]).__name__ == "Activation"
    tf2 = load_model(DATA / "tfk2_adam.h5")
    assert tf2.layers[1].negative_slope == pytest.approx(0.1)  # tf.keras 2's alpha
    assert [layer.name for layer in tf2.layers] == ["dense", "leaky_re_lu", "dense_1"]


@pytest.mark.parametrize("name", TRAINED)
def test_training_continues_where_keras_stopped(name):
    e = expected(name)
    model = load_model(DATA / name)
    assert model.optimizer.iterations == 6  # two epochs of three batches
    model.train_on_batch(e["xb"], e["yb"])
    after = [e[f"after_{i}"] for i in range(len(model.weights))]
    for ours, keras_w in zip(model.get_weights(), after):
        np.testing.assert_allclose(ours, keras_w, rtol=0, atol=1e-6)
    # The optimizer state is what makes this step: a fresh optimizer steps elsewhere.
    fresh = load_model(DATA / name)
    fresh.compile(optimizer=type(fresh.optimizer).from_config(fresh.optimizer.get_config()), loss=fresh.loss)
    fresh.train_on_batch(e["xb"], e["yb"])
    assert max(np.abs(a - b).max() for a, b in zip(fresh.get_weights(), after)) > 1e-4


def test_compile_false_skips_the_compile_settings():
    model = load_model(DATA / "k3_dense_adam.keras", compile=False)
    assert model.optimizer is None and model.loss is None
    legacy = load_model(DATA / "tfk2_sgd.h5", compile=False)
    assert legacy.optimizer is None
    np.testing.assert_allclose(legacy.predict(expected("tfk2_sgd.h5")["x"], verbose=0),
                               expected("tfk2_sgd.h5")["predict"], atol=1e-6)


def test_files_are_told_apart_by_content_not_by_name(tmp_path):
    for name in ("k3_dense_adam.keras", "tfk2_adam.h5"):
        odd = tmp_path / (name + ".bin")
        odd.write_bytes((DATA / name).read_bytes())
        assert keras_files.kind_of(odd) == ("keras" if name.endswith(".keras") else "h5")
        e = expected(name)
        np.testing.assert_allclose(load_model(odd).predict(e["x"], verbose=0), e["predict"], atol=1e-6)
    own = tmp_path / "own.keras.logitnet"
    model = ln.Sequential([L.Input((3,)), L.Dense(2, activation="softmax")], seed=0)
    model.save(own)
    assert keras_files.kind_of(own) is None and load_model(own).count_params() == 8


def _trained(optimizer, dtype="float32", metrics=("accuracy",)):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(dtype)
    y = rng.integers(0, 3, 40)
    norm = L.Normalization()
    norm.adapt(x)
    model = ln.Sequential([L.Input((4,)), norm, L.Dense(8, activation="relu", kernel_regularizer=ln.regularizers.l2(0.01)),
                           L.LeakyReLU(0.2), L.Dense(6, activation="gelu"), L.ReLU(max_value=6.0), L.Dense(3),
                           L.Softmax()], seed=1, dtype=dtype)
    model.layers[3].trainable = False  # a frozen layer has no optimizer variables in Keras
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=list(metrics))
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


OPTIMIZERS = [lambda: ln.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
              lambda: ln.optimizers.Adam(0.01, amsgrad=True), lambda: ln.optimizers.SGD(0.1, momentum=0.9, nesterov=True)]


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_a_saved_keras_file_loads_back_whole(tmp_path, make):
    model, x, y = _trained(make())
    model.metadata = {"class_names": ["a", "b", "c"]}
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    assert back.get_config()["layers"] == model.get_config()["layers"]
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    state, saved = back.optimizer.get_state(), model.optimizer.get_state()
    assert state.keys() == saved.keys()
    for key in state:
        np.testing.assert_array_equal(state[key], saved[key])
    assert back.metadata == model.metadata and back.metric_names == ["accuracy"]
    model.train_on_batch(x[:8], y[:8])
    back.train_on_batch(x[:8], y[:8])
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_saved_keras_file_is_the_same_bytes_each_time(tmp_path):
    model, _, _ = _trained(ln.optimizers.Adam())
    model.save(tmp_path / "a.keras")
    save_model(model, tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        meta = json.loads(zf.read("metadata.json"))
        config = json.loads(zf.read("config.json"))
    assert meta["date_saved"] == keras_files.DATE_SAVED and meta["keras_version"].startswith("3.")
    assert config["class_name"] == "Sequential" and config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert [entry["class_name"] for entry in config["config"]["layers"]][:2] == ["InputLayer", "Normalization"]


def test_another_process_writes_the_same_bytes(tmp_path):
    import subprocess

    script = ("import sys; sys.path.insert(0, {tests!r}); from test_keras_files import _trained; "
              "import logitnet as ln; _trained(ln.optimizers.Adam())[0].save({out!r})")
    out = tmp_path / "there.keras"
    subprocess.run([sys.executable, "-c", script.format(tests=str(Path(__file__).parent), out=str(out))],
                   check=True, timeout=120)
    _trained(ln.optimizers.Adam())[0].save(tmp_path / "here.keras")
    assert out.read_bytes() == (tmp_path / "here.keras").read_bytes()


def test_other_names_keep_logitnet_s_own_format(tmp_path):
    model, _, _ = _trained(ln.optimizers.Adam())
    model.save(tmp_path / "m.h5")
    assert keras_files.kind_of(tmp_path / "m.h5") is None
    assert zipfile.ZipFile(tmp_path / "m.h5").namelist()[0] == "config.json"


def test_metrics_keras_lacks_are_left_out_with_a_warning(tmp_path):
    model, _, _ = _trained(ln.optimizers.Adam(), metrics=("accuracy", "macro_f1"))
    with pytest.warns(UserWarning, match=r"Keras has no metrics \['macro_f1'\]"):
        model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras").metric_names == ["accuracy"]


def test_an_unbuilt_or_diverged_model_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        ln.Sequential([L.Dense(2)]).save(tmp_path / "m.keras")
    model, _, _ = _trained(ln.optimizers.Adam())
    model.layers[1].kernel[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_without_h5py_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"logitnet\[keras\]"):
        load_model(DATA / "k3_dense_adam.keras")
    model, _, _ = _trained(ln.optimizers.Adam())
    with pytest.raises(ImportError, match=r"logitnet\[keras\]"):
        model.save(tmp_path / "m.keras")


@pytest.mark.compare
@pytest.mark.parametrize(("make", "dtype"), [(make, "float32") for make in OPTIMIZERS] + [(OPTIMIZERS[1], "float64")])
def test_keras_loads_a_saved_file_and_trains_in_step(tmp_path, make, dtype):
    from frameworks import need

    keras = need("keras")
    model, x, y = _trained(make(), dtype=dtype)
    model.metadata = {"class_names": ["a", "b", "c"]}  # in metadata.json, which Keras passes over
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), atol=1e-6)
    assert int(theirs.optimizer.iterations.numpy()) == model.optimizer.iterations
    floats = [np.asarray(w).dtype.name for w in theirs.get_weights() if np.asarray(w).dtype.kind == "f"]
    assert floats == [dtype] * (len(model.weights) - 1)  # all but Normalization's count
    theirs.train_on_batch(x[:8], y[:8])
    model.train_on_batch(x[:8], y[:8])
    for a, b in zip(theirs.get_weights(), model.get_weights()):
        np.testing.assert_allclose(np.asarray(a), b, rtol=0, atol=1e-6)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="the HDF5 reader runs in a forked child only where fork exists")
class TestHdf5ReaderInAChild:
    """libhdf5 loops forever or crashes on some damaged files: the HDF5 part of a load runs in a
    forked child with a time limit, and whatever befalls the child comes back as a refusal."""

    def test_a_file_on_which_libhdf5_loops_is_refused_in_time(self, monkeypatch):
        import time

        monkeypatch.setattr(keras_files, "H5_SECONDS", 2.0)
        # A fuzzed copy of k3_legacy_adam.h5 (a spliced block): libhdf5 1.14 loops reading an attribute.
        start = time.monotonic()
        with pytest.raises(ln.saving.ModelFileError) as err:
            load_model(DATA / "damaged" / "libhdf5_loops.h5")
        assert not err.value.unexpected and time.monotonic() - start < 10

    def test_a_reader_that_never_finishes_is_stopped(self, monkeypatch):
        import time

        monkeypatch.setattr(keras_files, "H5_SECONDS", 1.0)
        monkeypatch.setattr(keras_files, "_weights_v3", lambda f, plan: time.sleep(120))
        start = time.monotonic()
        with pytest.raises(ln.saving.ModelFileError, match=r"did not finish in 1 s: the file is damaged"):
            load_model(DATA / "k3_dense_adam.keras")
        assert time.monotonic() - start < 10

    def test_a_reader_that_crashes_is_a_refusal(self, monkeypatch):
        import os
        import signal

        monkeypatch.setattr(keras_files, "_read_legacy", lambda f, compile: os.kill(os.getpid(), signal.SIGSEGV))
        with pytest.raises(ln.saving.ModelFileError, match=r"libhdf5 crashed .*exit code -11") as err:
            load_model(DATA / "tfk2_adam.h5")
        assert not err.value.unexpected

    def test_refusals_and_bugs_in_the_child_keep_their_kind(self, monkeypatch):
        def refuse(f, plan):
            raise ln.saving.ModelFileError("a refusal made in the child")

        monkeypatch.setattr(keras_files, "_weights_v3", refuse)
        with pytest.raises(ln.saving.ModelFileError, match="a refusal made in the child") as err:
            load_model(DATA / "k3_dense_adam.keras")
        assert not err.value.unexpected

        def bug(f, plan):
            raise ZeroDivisionError("a bug in the child")

        monkeypatch.setattr(keras_files, "_weights_v3", bug)
        with pytest.raises(ln.saving.ModelFileError, match="ZeroDivisionError: a bug in the child") as err:
            load_model(DATA / "k3_dense_adam.keras")
        assert err.value.unexpected

    @pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="the memory limit needs Linux's /proc")
    def test_a_reader_that_takes_too_much_memory_is_stopped(self, monkeypatch):
        monkeypatch.setattr(keras_files, "H5_MEMORY", 2**28)
        monkeypatch.setattr(keras_files, "_weights_v3", lambda f, plan: np.ones(2**29))  # 4 GiB
        with pytest.raises(ln.saving.ModelFileError, match=r"takes more than 268,\d{3},\d{3} bytes of memory") as err:
            load_model(DATA / "k3_dense_adam.keras")
        assert not err.value.unexpected
        monkeypatch.undo()
        assert load_model(DATA / "k3_dense_adam.keras").count_params() == 51  # the parent's limits are untouched
