"""The lecture's examples, trained for real: 4-class blobs, handwritten digits with 25-15-10,
multi-label scenes with sigmoid outputs, and a binary task with Dense(1, 'sigmoid')."""

from __future__ import annotations

import numpy as np

import logitnet
from logitnet import Sequential, datasets, metrics
from logitnet.layers import Dense
from logitnet.losses import BinaryCrossentropy, SparseCategoricalCrossentropy
from logitnet.optimizers import Adam


def test_four_class_blobs_reach_95_percent_in_10_epochs():
    x, y = datasets.make_blobs(2000, seed=0)  # centers [-5,2], [-2,-2], [1,2], [5,-2], std 1
    model = Sequential([Dense(25, activation="relu"), Dense(15, activation="relu"),
                        Dense(4, activation="linear")], seed=0)
    model.compile(loss=SparseCategoricalCrossentropy(from_logits=True), optimizer=Adam(learning_rate=1e-3))
    model.fit(x, y, epochs=10, verbose=0)
    logits = model(x)
    probs = logitnet.ops.softmax(logits)
    assert (probs.argmax(axis=1) == y).mean() >= 0.95


def test_handwritten_digits_with_the_25_15_10_network():
    x, y = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1437], order[1437:]
    model = Sequential([Dense(25, activation="relu"), Dense(15, activation="relu"),
                        Dense(10, activation="linear")], seed=0)
    model.compile(loss=SparseCategoricalCrossentropy(from_logits=True), optimizer=Adam(learning_rate=1e-3),
                  metrics=["accuracy"])
    history = model.fit(x[train], y[train], epochs=40, verbose=0)
    assert history.history["accuracy"][-1] > 0.97
    test_accuracy = (model.predict(x[test], verbose=0).argmax(axis=1) == y[test]).mean()
    assert test_accuracy > 0.94
    cm = metrics.confusion_matrix(y[test], model.predict(x[test], verbose=0).argmax(axis=1), n_classes=10)
    assert cm.trace() == round(test_accuracy * len(test))


def test_multi_label_scenes_beat_the_baselines():
    x, y = datasets.make_scenes(2000, seed=1)  # car / bus / pedestrian, any number per scene
    model = Sequential([Dense(16, activation="relu"), Dense(3, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=Adam(learning_rate=1e-2),
                  metrics=["hamming_loss", "subset_accuracy"])
    model.fit(x[:1500], y[:1500], epochs=20, verbose=0)
    pred = metrics.multilabel_predict(model.predict(x[1500:], verbose=0), 0.5, from_logits=False)
    freq = y[:1500].mean(axis=0)
    baseline_hamming = np.minimum(freq, 1 - freq).mean()  # each label's majority answer
    _, counts = np.unique(y[:1500], axis=0, return_counts=True)
    baseline_subset = counts.max() / 1500  # always answer the commonest combination
    assert metrics.hamming_loss(y[1500:], pred) < baseline_hamming / 3
    assert metrics.subset_accuracy(y[1500:], pred) > baseline_subset + 0.4


def test_one_network_with_three_sigmoids_matches_three_separate_networks():
    # The seed notes' two designs: three binary networks, or one network with three outputs.
    x, y = datasets.make_scenes(2000, seed=2)
    joint = Sequential([Dense(16, activation="relu"), Dense(3)], seed=0)
    joint.compile(loss=BinaryCrossentropy(from_logits=True), optimizer=Adam(1e-2))
    joint.fit(x[:1500], y[:1500], epochs=20, verbose=0)
    joint_pred = metrics.multilabel_predict(joint.predict(x[1500:], verbose=0))  # logits, t = 0.5
    separate = []
    for label in range(3):
        net = Sequential([Dense(16, activation="relu"), Dense(1, activation="sigmoid")], seed=label)
        net.compile(loss="binary_crossentropy", optimizer=Adam(1e-2))
        net.fit(x[:1500], y[:1500, label], epochs=20, verbose=0)
        separate.append(net.predict(x[1500:], verbose=0)[:, 0] >= 0.5)
    separate_pred = np.stack(separate, axis=1).astype(int)
    joint_loss = metrics.hamming_loss(y[1500:], joint_pred)
    assert joint_loss < 0.12 and joint_loss <= metrics.hamming_loss(y[1500:], separate_pred) + 0.03


def test_binary_task_with_one_sigmoid_unit():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    x = (y[:, None] * 2.5 + rng.normal(0, 1, (600, 2))).astype(np.float32)
    model = Sequential([Dense(8, activation="relu"), Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=Adam(1e-2), metrics=["accuracy", "auc"])
    history = model.fit(x, y, epochs=15, verbose=0)
    assert history.history["accuracy"][-1] > 0.9 and history.history["auc"][-1] > 0.95
    p = model.predict(x, verbose=0)
    assert p.shape == (600, 1) and ((p > 0) & (p < 1)).all()
