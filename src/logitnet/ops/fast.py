"""The optional compiled path, `logitnet[fast]`: numba kernels for what NumPy does in many passes.

Used automatically when numba is installed, and loaded on first use, never at `import logitnet`.
LOGITNET_FAST=0 turns it off (read when the kernels are first wanted, and again after `reset()`).
The NumPy code stays the reference: each kernel does the same operations in the same order, so
its results are bit-identical, and the tests hold every kernel to the NumPy path.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from types import ModuleType

import numpy as np

ENV = "LOGITNET_FAST"
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # numba has no float16 arithmetic

_lock = threading.Lock()
_loaded: tuple[ModuleType | None, str] | None = None


def _load() -> tuple[ModuleType | None, str]:
    setting = os.environ.get(ENV, "").strip().lower()
    if setting in ("0", "off", "false", "no"):
        return None, f"off ({ENV}={os.environ[ENV]})"
    if setting not in ("", "1", "on", "true", "yes"):
        raise ValueError(f"{ENV} must be 0 or 1 (off or on), got {os.environ[ENV]!r}")
    if importlib.util.find_spec("numba") is None:
        return None, "off (numba is not installed: pip install 'logitnet[fast]')"
    import numba

    from . import _kernels  # imports numba: seconds the first time, so only here

    return _kernels, f"on (numba {numba.__version__})"


def kernels() -> ModuleType | None:
    """The compiled kernels' module, or None when the NumPy path is in use."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded[0]


def status() -> str:
    """Which path runs, in words: 'on (numba 0.68.1)' or 'off (why)'."""
    kernels()
    assert _loaded is not None
    return _loaded[1]


def reset() -> None:
    """Forget the choice, so that the next use reads LOGITNET_FAST again (for tests and notebooks)."""
    global _loaded
    with _lock:
        _loaded = None


def for_dtype(dtype: np.dtype) -> ModuleType | None:
    """The kernels when they serve arrays of `dtype` (float32 and float64), else None."""
    return kernels() if dtype in DTYPES else None
