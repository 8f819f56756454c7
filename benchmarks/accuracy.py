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


def _torch(loss_name: str, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loss and its gradient from torch.nn.functional.<loss_name>, by autograd."""
    import torch

    t = torch.tensor(z, requires_grad=True)
    loss = getattr(torch.nn.functional, loss_name)(t, torch.tensor(y), reduction="none")
    loss.sum().backward()
    return loss.detach().numpy(), t.grad.numpy()


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
        libs["torch"] = lambda z, y: _torch("cross_entropy", z, y)
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
        libs["torch"] = lambda z, y: _torch("binary_cross_entropy_with_logits", z, y)
    return libs


def table(title: str, libs: dict, cases: dict, truth, grad_scale) -> None:
    """Print one row per regime: each library's worst loss / gradient error in ulps."""
    print(title)
    print(f"{'regime':20s}" + "".join(f"{name:>24s}" for name in libs))
    for name, (z, y) in cases.items():
        dtype = z.dtype.type
        truths = [truth(z[i], y[i]) for i in range(len(z))]
        cells = []
        for fn in libs.values():
            with np.errstate(all="ignore"):
                loss, grad = fn(z, y)
            el = max(_err(loss[i], t[0], dtype) for i, t in enumerate(truths))
            eg = max(
                min(ref.ulp_error(g, r, dtype, grad_scale(z[i], y[i], r)), CAP)
                for i, t in enumerate(truths)
                for g, r in zip(np.ravel(grad[i]), np.ravel(np.array(t[1], dtype=object)))
            )
            cells.append(f"{el:.2g} / {eg:.2g}")
        print(f"{name:20s}" + "".join(f"{c:>24s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype).type
    table(f"softmax cross-entropy from logits, {args.dtype}: worst error in ulps (loss / gradient)",
          softmax_libraries(dtype), regimes.softmax_regimes(dtype),
          lambda z, y: ref.softmax_xent(z, int(y)), lambda z, y, r: None)
    # The soft-label sigmoid gradient is measured against max(σ(z), y) (see README).
    table(f"\nsigmoid binary cross-entropy from logits, {args.dtype}: worst error in ulps (loss / gradient)",
          bce_libraries(), regimes.bce_regimes(dtype), ref.bce,
          lambda z, y, r: max(abs(ref.sigmoid(z)), abs(ref.mpf(float(y))), abs(r)))


if __name__ == "__main__":
    main()
