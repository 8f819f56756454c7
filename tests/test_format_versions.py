"""Model files written by earlier releases keep loading: committed files of format version 1
(written by logitnet at commit 55dd680, before the Layer protocol), read by this release."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from logitnet.models import load_model

DATA = Path(__file__).parent / "data"


def test_version_1_softmax_model_loads_with_its_weights_settings_and_optimizer_state():
    expected = np.load(DATA / "model_v1_expected.npz")
    model = load_model(DATA / "model_v1.logitnet")
    assert model.name == "v1_model" and [layer.name for layer in model.layers] == ["hidden", "dense", "out"]
    assert model.metadata["class_names"] == [str(i) for i in range(10)]
    # float32 GEMMs round differently on other CPUs' BLAS kernels: a few ulps, not equality.
    np.testing.assert_allclose(model.predict(expected["x"], verbose=0), expected["probs"], rtol=0, atol=5e-7)
    np.testing.assert_allclose(model.predict_logits(expected["x"]), expected["logits"], rtol=2e-6, atol=1e-6)
    assert model.optimizer.amsgrad and float(model.optimizer.learning_rate) == np.float32(3e-3)
    assert int(model.optimizer.iterations) == int(expected["iterations"]) == 18
    assert model.layers[0].kernel_regularizer.l2 == 1e-3
    before = model.get_weights()
    model.fit(expected["x"], np.arange(5), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 19
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_version_1_float64_multilabel_model_loads():
    expected = np.load(DATA / "model_v1_expected.npz")
    model = load_model(DATA / "model_v1_multilabel64.logitnet")
    assert model.dtype == np.float64
    np.testing.assert_allclose(model.predict(expected["xb"], verbose=0), expected["probs_b"], rtol=0, atol=1e-14)
