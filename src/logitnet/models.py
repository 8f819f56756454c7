"""Keras' `models` namespace: `Sequential` and `load_model`."""

from .model import Sequential
from .saving import load_model, save_model

__all__ = ["Sequential", "load_model", "save_model"]
