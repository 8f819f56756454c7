"""Worst error in ulps, per regime, of softmax cross-entropy (loss and gradient) and sigmoid BCE,
for logitnet and the references that are installed (plain NumPy, SciPy, PyTorch, Keras).

Run:  python benchmarks/accuracy.py [--dtype float32|float64]

The truth is mpmath at 60 digits from the same float inputs (tests/reference.py); the regimes are
the tests' (tests/regimes.py). An error of 1e+30 ulps means a 0 (or inf) where the truth is not.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference as ref  # noqa: E402
import regimes  # noqa: E402

from logitnet import ops  # noqa: E402
from logitnet.ops import naive  # noqa: E402

CAP = 1e30


def _err(computed, truth, dtype) -> float:
    e = ref.ulp_error(computed, truth, dtype)
    return CAP if not math.isfinite(e) else min(e, CAP)


def softmax_libraries(dtype):
    """name -> f(z (n, C), labels (n,)) -> (loss (n,), grad (n, C)) as float arrays."""
    libs = {
        "logitnet": lambda z, y: ops.softmax_cross_entropy(z, y),
        "numpy naive": lambda z, y: naive.naive_softmax_cross_entropy(z, y),
    }
    if importlib.util.find_spec("scipy"):
        from scipy import special

        def scipy_xent(z, y):
            log_p = special.log_softmax(z, axis=-1)
            p = special.softmax(z, axis=-1)
            grad = p.copy()
            grad[np.arange(len(y)), y] -= 1
            return -log_p[np.arange(len(y)), y], grad

        libs["scipy log_softmax"] = scipy_xent
    if importlib.util.find_spec("torch"):
        import torch

        def torch_xent(z, y):
            t = torch.tensor(z, requires_grad=True)
            loss = torch.nn.functional.cross_entropy(t, torch.tensor(y), reduction="none")
            loss.sum().backward()
            return loss.detach().numpy(), t.grad.numpy()

        libs["torch"] = torch_xent
    if importlib.util.find_spec("keras") and importlib.util.find_spec("tensorflow"):
        import tensorflow as tf

        def keras_xent(z, y):
            t = tf.Variable(z)
            with tf.GradientTape() as tape:
                loss = tf.keras.losses.sparse_categorical_crossentropy(y, t, from_logits=True)
            return loss.numpy(), tape.gradient(tf.reduce_sum(loss), t).numpy()

        libs["keras"] = keras_xent
    return libs


def bce_libraries():
    libs = {
        "logitnet": lambda z, y: ops.sigmoid_binary_cross_entropy(z, y),
        "numpy naive": lambda z, y: naive.naive_sigmoid_binary_cross_entropy(z, y),
    }
    if importlib.util.find_spec("torch"):
        import torch

        def torch_bce(z, y):
            t = torch.tensor(z, requires_grad=True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(t, torch.tensor(y), reduction="none")
            loss.sum().backward()
            return loss.detach().numpy(), t.grad.numpy()

        libs["torch"] = torch_bce
    return libs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype).type
    libs = softmax_libraries(dtype)
    print(f"softmax cross-entropy from logits, {args.dtype}: worst error in ulps (loss / gradient)")
    print(f"{'regime':20s}" + "".join(f"{name:>24s}" for name in libs))
    for name, (z, y) in regimes.softmax_regimes(dtype).items():
        truths = [ref.softmax_xent(z[i], int(y[i])) for i in range(z.shape[0])]
        cells = []
        for fn in libs.values():
            with np.errstate(all="ignore"):
                loss, grad = fn(z, y)
            el = max(_err(loss[i], t[0], dtype) for i, t in enumerate(truths))
            eg = max(_err(g, r, dtype) for i, t in enumerate(truths) for g, r in zip(grad[i], t[1]))
            cells.append(f"{el:.2g} / {eg:.2g}")
        print(f"{name:20s}" + "".join(f"{c:>24s}" for c in cells))
    libs = bce_libraries()
    print(f"\nsigmoid binary cross-entropy from logits, {args.dtype}: worst error in ulps (loss / gradient)")
    print(f"{'regime':20s}" + "".join(f"{name:>24s}" for name in libs))
    for name, (z, y) in regimes.bce_regimes(dtype).items():
        truths = [ref.bce(z[i], y[i]) for i in range(z.size)]
        cells = []
        for fn in libs.values():
            with np.errstate(all="ignore"):
                loss, grad = fn(z, y)
            el = max(_err(loss[i], t[0], dtype) for i, t in enumerate(truths))
            # The soft-label gradient measured against max(σ, y) (see README).
            eg = max(ref.ulp_error(grad[i], t[1], dtype, max(abs(ref.sigmoid(z[i])), abs(ref.mpf(float(y[i])))))
                     if math.isfinite(float(grad[i])) else CAP for i, t in enumerate(truths))
            cells.append(f"{el:.2g} / {min(eg, CAP):.2g}")
        print(f"{name:20s}" + "".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
