"""Keras' `models` namespace: `Sequential`, `load_model` and `save_model`."""

from __future__ import annotations

import os

from . import keras_files, saving
from .model import Sequential


def _build(saved: saving.SavedModel, compile: bool) -> Sequential:
    """The model a checked file describes (the file was checked whole: this fails only through a bug)."""
    plan, spec = saved.plan, saved.plan.model
    model = Sequential(saved.layers(), name=spec["name"], seed=spec["seed"], dtype=spec["dtype"])
    model.build((None, *spec["input_shape"]))
    model.set_weights(saved.weights)
    model.metadata = plan.metadata
    if compile and plan.loss is not None:
        model.compile(optimizer=plan.optimizer, loss=plan.loss, metrics=plan.metrics)
        if saved.state:
            model.optimizer.set_state(saved.state)
    return model


def save_model(model: Sequential, filepath: str | os.PathLike, include_optimizer: bool = True) -> None:
    """`model.save(filepath)`: a Keras 3 file for a name ending in .keras, logitnet's own format otherwise."""
    model.save(filepath, include_optimizer=include_optimizer)


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Read a model written by `save` / `save_model`, or a Keras model file (Keras 3 `.keras`,
    legacy `.h5`; needs the `keras` extra), told apart by content: architecture, weights, compile
    settings (compile=False skips them) and optimizer state.

    Raises FileNotFoundError for a missing file (and the system's OSError for one it cannot open),
    and `saving.ModelFileError` for anything that is not a complete, valid logitnet model file;
    the whole file is checked before the model is built. Files of every earlier format version load.
    """
    kind = keras_files.kind_of(filepath)
    if kind is not None:
        return keras_files.load(filepath, kind, lambda saved: _build(saved, compile), compile=compile)
    return saving.load(filepath, lambda saved: _build(saved, compile))


__all__ = ["Sequential", "load_model", "save_model"]
