"""The `logitnet numerics` report: the seed's example and a correct naive-vs-exact table."""

from __future__ import annotations

import subprocess
import sys

import mpmath
import numpy as np
import pytest

from logitnet import numerics


def test_command_prints_the_seed_example_and_table():
    out = subprocess.run([sys.executable, "-m", "logitnet", "numerics"], capture_output=True,
                         text=True, check=True).stdout
    assert "x1 = 2/10_000                         -> 0.000200000000000000" in out
    assert "x2 = (1 + 1/10_000) - (1 - 1/10_000)  -> 0.000199999999999978" in out
    assert "confident and right" in out and "naive err" in out
    bad = subprocess.run([sys.executable, "-m", "logitnet", "numerics", "--dtype", "int8"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'int8'" in bad.stderr


def _mp_exact(case, dtype):
    mpmath.mp.dps = 60
    z = [mpmath.mpf(float(dtype.type(v))) for v in case.z]
    if case.kind == "bce":
        x = z[0] if case.y == 0 else -z[0]
        return mpmath.log1p(mpmath.exp(x)) if x <= 0 else x + mpmath.log1p(mpmath.exp(-x))
    rest = mpmath.fsum(mpmath.exp(v - z[case.y]) for j, v in enumerate(z) if j != case.y)
    return mpmath.log1p(rest) if case.kind == "ce" else -rest / (1 + rest)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_table_values(dtype):
    dt = np.dtype(dtype)
    # float32 is correctly rounded (half an ulp); float64 is within the 4 ulp target.
    bound = np.finfo(dt).eps * (0.5 if dtype == "float32" else 4)
    naive_failures = 0
    for row in numerics.rows(dtype):
        case = row["case"]
        exact = _mp_exact(case, dt)
        assert abs(mpmath.mpf(str(row["exact"])) - exact) <= abs(exact) * mpmath.mpf(10) ** -50
        assert row["logitnet_error"] <= bound
        naive_failures += row["naive_error"] >= 0.99
    # In float32 every confident case fails the naive way (0 where the loss is not, or inf).
    assert naive_failures == (7 if dtype == "float32" else 3)
