"""Write the Keras model files that tests/test_keras_files.py reads, with what Keras itself predicts
and how it trains on from each file.

Run from the repository root, once per Keras:
    KERAS_BACKEND=torch python tests/data/keras/make_fixtures.py            # Keras 3 (.keras, legacy .h5)
    python tests/data/keras/make_fixtures.py                                  # tf.keras 2.x (tensorflow-cpu 2.15)
The committed files were written by Keras 3.15.1 (torch backend, PyTorch 2.13.0) and by tf.keras
2.15.0 (tensorflow-cpu 2.15.1), each on Python 3.11. Every model is small (a few KB).

Beside each model file NAME.keras / NAME.h5 lies NAME.npz: `x` and Keras' `predict(x)`; for a file
with optimizer state, also a batch `xb`, `yb` and the weights `after_<i>` that Keras has after one
`train_on_batch(xb, yb)` on the model loaded from the file (for the Keras 3 legacy .h5, on the
model that wrote it: Keras 3 cannot train on the optimizer its legacy loader restores).
"""

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def keras3() -> None:
    import keras
    from keras import layers as L

    def finish(name: str, model, x, y=None, train=True, ext=".keras", saver=None) -> None:
        path = HERE / f"{name}{ext}"
        if y is not None:
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)  # the optimizer has state
        (saver or model.save)(str(path))
        out = {"x": x, "predict": model.predict(x, verbose=0)}
        if train and y is not None:
            # Keras 3 cannot train on the optimizer its legacy .h5 loader restores ("Unknown
            # variable"): the model that wrote the file takes the step instead (the same state).
            loaded = keras.models.load_model(str(path)) if ext == ".keras" else model
            xb, yb = x[:8], y[:8]
            loaded.train_on_batch(xb, yb)
            out.update(xb=xb, yb=yb, **{f"after_{i}": w for i, w in enumerate(loaded.get_weights())})
        np.savez(HERE / f"{name}.npz", **out)
        print("wrote", path.name, path.stat().st_size, "bytes")

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    x = rng.normal(size=(24, 4)).astype("float32")
    y = rng.integers(0, 3, 24)

    m = keras.Sequential([keras.Input((4,)), L.Dense(6, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    finish("k3_dense_adam", m, x, y)

    norm = L.Normalization()
    norm.adapt(x * 3 + 1)
    m = keras.Sequential([keras.Input((4,)), norm,
                          L.Dense(8, activation="tanh", kernel_regularizer=keras.regularizers.L2(0.01)),
                          L.LeakyReLU(negative_slope=0.2), L.Dense(6, activation="elu"),
                          L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.05),
                          L.Dense(5, activation="gelu"), L.Dense(4, activation="softplus"), L.Dense(3), L.Softmax()])
    m.compile(optimizer=keras.optimizers.RMSprop(0.005, rho=0.8, momentum=0.5, centered=True),
              loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    finish("k3_layers_rmsprop", m, x * 3 + 1, np.eye(3, dtype="float32")[y])

    x3 = rng.normal(size=(24, 2, 3)).astype("float32")
    yb = (x3.sum(axis=(1, 2)) > 0).astype("float32")
    m = keras.Sequential([keras.Input((2, 3)), L.Flatten(), L.Dense(4, activation="sigmoid"), L.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
              loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=["binary_accuracy"])
    finish("k3_flatten_sgd", m, x3, yb)

    m = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="silu"), L.Dropout(0.5, seed=3), L.Dense(3),
                          L.Activation("softmax")])
    finish("k3_dropout_uncompiled", m, x)

    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    x64 = rng.normal(size=(24, 4))
    y64 = (rng.random((24, 3)) < 0.4).astype("float64")
    m = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="sigmoid"), L.Dense(3, activation="sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(0.02, amsgrad=True), loss="binary_crossentropy")
    finish("k3_multilabel64", m, x64, y64)
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")

    from keras.src.legacy.saving import legacy_h5_format

    m = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    finish("k3_legacy_adam", m, x, y, ext=".h5",
           saver=lambda p: legacy_h5_format.save_model_to_hdf5(m, p, include_optimizer=True))


def tf_keras2() -> None:
    import tensorflow as tf

    keras = tf.keras
    L = keras.layers
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    x = rng.normal(size=(24, 4)).astype("float32")
    y = rng.integers(0, 3, 24)

    def finish(name: str, model, x, y) -> None:
        path = HERE / f"{name}.h5"
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        model.save(str(path), save_format="h5")
        loaded = keras.models.load_model(str(path))
        xb, yb = x[:8], y[:8]
        loaded.train_on_batch(xb, yb)
        np.savez(HERE / f"{name}.npz", x=x, predict=model.predict(x, verbose=0), xb=xb, yb=yb,
                 **{f"after_{i}": w for i, w in enumerate(loaded.get_weights())})
        print("wrote", path.name, path.stat().st_size, "bytes")

    m = keras.Sequential([L.Dense(5, activation="relu", input_shape=(4,)), L.LeakyReLU(0.1),
                          L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    finish("tfk2_adam", m, x, y)

    # tf.keras' legacy optimizers keep their slots in another order (all m, then all v).
    m = keras.Sequential([L.Dense(4, activation="relu", input_shape=(4,)), L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.legacy.Adam(0.01), loss="sparse_categorical_crossentropy")
    finish("tfk2_legacy_optimizer", m, x, y)

    norm = L.Normalization()
    norm.adapt(x)
    m = keras.Sequential([keras.Input((4,)), norm, L.Dense(6, activation="tanh"), L.Dropout(0.0),
                          L.Dense(3), L.Activation("softmax")])
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.8), loss="sparse_categorical_crossentropy")
    finish("tfk2_sgd", m, x, y)


if __name__ == "__main__":
    try:
        import tensorflow as tf  # noqa: F401

        is_tf2 = tf.__version__.startswith("2.") and int(tf.__version__.split(".")[1]) < 16
    except ImportError:
        is_tf2 = False
    if is_tf2:
        tf_keras2()
    else:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        keras3()
    sys.exit(0)
