"""Keras configs in logitnet's terms and back (`keras_config`), on hand-written configs: Keras'
names and defaults, tf.keras 2's spellings, the compile settings, and the Keras 3 layout written."""

from __future__ import annotations

import pytest

import logitnet as ln
from logitnet import initializers
from logitnet import layers as L
from logitnet.keras_config import (
    _camel,
    _initializer,
    _snake,
    from_keras,
    keras_metric_names,
    layer_paths,
    slot_layout,
    to_keras,
)
from logitnet.saving import _check_config


def test_names_in_snake_case_as_keras_writes_them():
    # Keras' own to_snake_case gives these (keras/src/utils/naming.py), RMSprop's odd one included.
    assert [_snake(n) for n in ("GlorotUniform", "ReLU", "LeakyReLU", "HeNormal", "Dense", "L1L2", "RMSprop",
                                "InputLayer")] == ["glorot_uniform", "re_lu", "leaky_re_lu", "he_normal", "dense",
                                                   "l1l2", "rm_sprop", "input_layer"]
    assert layer_paths(["Dense", "Dense", "ReLU", "Dense", "LeakyReLU", "ReLU", "Normalization"]) == [
        "layers/dense", "layers/dense_1", "layers/re_lu", "layers/dense_2", "layers/leaky_re_lu", "layers/re_lu_1",
        "layers/normalization"]


def test_every_initializer_goes_to_its_keras_class_and_back():
    assert _camel("glorot_uniform") == "GlorotUniform" and _camel("he_normal") == "HeNormal"
    assert _camel("random_uniform") == "RandomUniform" and _camel("zeros") == "Zeros"
    for name in initializers.INITIALIZERS:
        assert _initializer({"module": "keras.initializers", "class_name": _camel(name), "config": {}}, "x") == name
    assert _initializer("GlorotUniform", "x") == "glorot_uniform"  # tf.keras 1-style names as strings


def test_the_optimizers_variables_in_keras_order():
    assert slot_layout("Adam", ("momentum", "velocity")) == [("momentum", "velocity")]
    assert slot_layout("Adam", ("momentum", "velocity", "velocity_hat")) == [("momentum", "velocity"), ("velocity_hat",)]
    assert slot_layout("Adam", ("momentum", "velocity"), legacy=True) == [("momentum",), ("velocity",)]
    assert slot_layout("RMSprop", ("velocity", "momentum", "average_gradient")) == [
        ("velocity",), ("momentum",), ("average_gradient",)]
    assert slot_layout("RMSprop", ("velocity",)) == [("velocity",)]
    assert slot_layout("SGD", ("momentum",)) == [("momentum",)] and slot_layout("SGD", ()) == []


def _layer(cls, **config):
    return {"module": "keras.layers", "class_name": cls, "config": {"name": cls.lower(), **config},
            "registered_name": None}


def _sequential(*layers, **config):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": list(layers), **config},
            "registered_name": None}


def test_missing_keys_take_keras_defaults():
    config = from_keras(_sequential(_layer("InputLayer", batch_shape=[None, 3]), _layer("Dense", units=4),
                                    _layer("LeakyReLU"), _layer("ReLU"), _layer("Normalization"),
                                    _layer("Softmax", axis=[-1])), None)
    layers = config["model"]["layers"]
    assert config["model"]["input_shape"] == [3] and config["model"]["dtype"] == "float32"
    assert layers[0]["config"] == {"name": "dense", "trainable": True, "units": 4, "activation": "linear",
                                   "use_bias": True, "kernel_initializer": "glorot_uniform",
                                   "bias_initializer": "zeros", "kernel_regularizer": None}
    assert layers[1]["config"]["negative_slope"] == 0.3
    assert {k: layers[2]["config"][k] for k in ("max_value", "negative_slope", "threshold")} == {
        "max_value": None, "negative_slope": 0.0, "threshold": 0.0}
    assert layers[3]["config"] == {"name": "normalization", "trainable": True, "axis": [-1], "invert": False,
                                        "mean": None, "variance": None}
    assert layers[4]["config"]["axis"] == -1
    assert "compile" not in config
    assert _check_config(config).counts == [(2, 0), (0, 0), (0, 0), (0, 3), (0, 0)]


def test_tf_keras_2_spellings_read():
    dense = {"class_name": "Dense", "config": {"name": "d", "trainable": False, "dtype": "float64", "units": 2,
                                               "batch_input_shape": [None, 5], "activation": "swish",
                                               "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.5}},
                                               "activity_regularizer": None}}
    leaky = {"class_name": "LeakyReLU", "config": {"name": "l", "dtype": "float64", "alpha": 0.1}}
    norm = {"class_name": "Normalization", "config": {"name": "n", "batch_input_shape": [None, None], "axis": -1}}
    config = from_keras({"class_name": "Sequential", "config": {"name": "m", "layers": [dense, leaky, norm]}}, None)
    model = config["model"]
    assert model["input_shape"] == [5] and model["dtype"] == "float64"
    d = model["layers"][0]["config"]
    assert (d["activation"], d["trainable"], d["kernel_regularizer"]) == ("silu", False, {"l1": 0.0, "l2": 0.5})
    assert model["layers"][1]["config"]["negative_slope"] == 0.1 and model["layers"][2]["config"]["axis"] == [-1]


def test_the_input_shape_comes_from_the_build_shapes_when_there_is_no_input_layer():
    assert from_keras(_sequential(_layer("Dense", units=1), build_input_shape=[None, 7]), None)["model"]["input_shape"] == [7]
    bare = _sequential(_layer("Dense", units=1))
    bare["build_config"] = {"input_shape": [None, 2, 3]}
    assert from_keras(bare, None)["model"]["input_shape"] == [2, 3]


def test_compile_settings_in_keras_3_and_tf_keras_2_forms():
    seq = _sequential(_layer("InputLayer", batch_shape=[None, 2]), _layer("Dense", units=3, activation="softmax"))
    comp = from_keras(seq, {"optimizer": "adam", "loss": {"module": "keras.losses", "class_name":
                                                             "SparseCategoricalCrossentropy",
                                                             "config": {"from_logits": False, "fn": "x"},
                                                             "registered_name": None},
                            "metrics": ["sparse_categorical_accuracy", "accuracy", "auc"], "loss_weights": None,
                            "jit_compile": "auto"})["compile"]
    assert comp == {"loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": False}},
                    "optimizer": {"class_name": "Adam", "config": {}}, "metrics": ["accuracy", "auc"]}
    legacy = from_keras(seq, {"loss": "sparse_categorical_crossentropy",
                              "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy"}}]],
                              "optimizer_config": {"class_name": "Custom>Adam", "config": {
                                  "learning_rate": 0.01, "decay": 0.0, "is_legacy_optimizer": False,
                                  "jit_compile": False}}})["compile"]
    assert legacy["optimizer"] == {"class_name": "Adam", "config": {"learning_rate": 0.01}}
    assert legacy["metrics"] == ["accuracy"]
    plan = _check_config(from_keras(seq, {"optimizer": "rmsprop", "loss": "sparse_categorical_crossentropy"}))
    assert type(plan.optimizer).__name__ == "RMSprop" and plan.metrics == []


def test_metrics_keras_knows():
    assert keras_metric_names(["accuracy", "macro_f1", "auc", "hamming_loss", "mse"]) == (
        ["accuracy", "auc", "mse"], ["macro_f1", "hamming_loss"])


def test_a_model_in_keras_3_s_layout():
    model = ln.Sequential([L.Input((2,)), L.Dense(3, activation="relu", kernel_initializer="he_normal",
                                                   kernel_regularizer=ln.regularizers.l2(0.25), name="hidden"),
                           L.Dropout(0.5, seed=7), L.Dense(2), L.Softmax()], name="tiny", dtype="float64")
    model.compile(optimizer=ln.optimizers.SGD(0.5, momentum=0.25), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    config = to_keras(model, ["accuracy"])
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"}, "registered_name": None}
    layers = config["config"]["layers"]
    assert layers[0] == {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                         "config": {"batch_shape": [None, 2], "dtype": "float64", "sparse": False, "ragged": False,
                                    "name": "input_layer"}}
    assert layers[1] == {
        "module": "keras.layers", "class_name": "Dense", "registered_name": None, "build_config": {"input_shape": [None, 2]},
        "config": {"name": "hidden", "trainable": True, "dtype": policy, "units": 3, "activation": "relu",
                   "use_bias": True,
                   "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                                          "config": {"seed": None}, "registered_name": None},
                   "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                        "registered_name": None},
                   "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L1L2",
                                          "config": {"l1": 0.0, "l2": 0.25}, "registered_name": None},
                   "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}}
    assert layers[2]["config"] == {"name": "dropout", "trainable": True, "dtype": policy, "rate": 0.5,
                                   "noise_shape": None, "seed": 7} and "build_config" not in layers[2]
    assert layers[4]["class_name"] == "Softmax" and layers[4]["config"]["axis"] == -1
    assert config["config"]["name"] == "tiny" and config["build_config"] == {"input_shape": [None, 2]}
    comp = config["compile_config"]
    assert comp["optimizer"]["class_name"] == "SGD" and comp["optimizer"]["config"]["momentum"] == 0.25
    assert comp["optimizer"]["config"]["use_ema"] is False and comp["metrics"] == ["accuracy"]
    assert comp["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    # What is written reads back as the same model.
    back = from_keras(config, comp)
    assert back["model"]["layers"] == model.get_config()["layers"]
    assert back["model"]["dtype"] == "float64" and back["model"]["input_shape"] == [2]
    assert _check_config(back).optimizer.get_config() == model.optimizer.get_config()


def test_an_uncompiled_model_has_no_compile_config():
    model = ln.Sequential([L.Input((2,)), L.Dense(1)])
    assert "compile_config" not in to_keras(model, [])
    assert "compile" not in from_keras(to_keras(model, []), {})


@pytest.mark.parametrize("frozen", [True, False])
def test_trainable_flags_travel(frozen):
    model = ln.Sequential([L.Input((2,)), L.Dense(2), L.Dense(1)])
    model.layers[0].trainable = not frozen
    back = from_keras(to_keras(model, []), None)
    assert [e["config"]["trainable"] for e in back["model"]["layers"]] == [not frozen, True]
