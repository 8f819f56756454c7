"""The reference frameworks for the comparison tests (marked `compare`): PyTorch, and Keras 3 on
its torch backend. Where they are missing the tests skip, except where LOGITNET_REQUIRE_FRAMEWORKS=1
(CI's comparison run): there a missing framework fails the test, so a comparison never passes by
not running."""

from __future__ import annotations

import importlib
import os

import pytest

REQUIRED = os.environ.get("LOGITNET_REQUIRE_FRAMEWORKS") == "1"


def need(name: str):
    """Import `name` ('torch' or 'keras') for a comparison test, or skip (fail where required)."""
    if name == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 without TensorFlow; read at import
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        message = f"{name} is needed for this comparison ({err}): pip install -e '.[compare]'"
        if REQUIRED:
            pytest.fail(message + " (LOGITNET_REQUIRE_FRAMEWORKS=1)")
        pytest.skip(message, allow_module_level=True)
    if name == "keras" and not module.__version__.startswith("3."):
        message = f"the comparison needs Keras 3, found {module.__version__}"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
    return module
