"""A fixture that runs a test on both paths: the compiled kernels (logitnet[fast]) and NumPy's."""

from __future__ import annotations

import importlib.util

import pytest

from logitnet.ops import fast


@pytest.fixture(params=["compiled", "numpy"])
def both_paths(request, monkeypatch):
    if request.param == "compiled" and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed (the fast extra)")
    monkeypatch.setenv(fast.ENV, "1" if request.param == "compiled" else "0")
    fast.reset()
    yield request.param
    fast.reset()
