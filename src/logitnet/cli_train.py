"""The `logitnet train` command, and the reports it prints (which `logitnet evaluate` prints too)."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import optimizers
from .callbacks import Callback, format_value
from .data import DataError, Dataset

# --- train -------------------------------------------------------------------------------------
_RUN_SETTINGS = ("data", "labels", "target", "targets", "multilabel", "layers", "activation", "epochs",
                 "batch_size", "optimizer", "lr", "val_split", "test_split", "seed", "dtype", "out",
                 "plots", "checkpoint")


def _train(args: argparse.Namespace) -> int:
    from . import callbacks
    from .layers import Dense
    from .model import Sequential
    from .models import load_model

    resumed = None
    if args.resume:
        resumed = load_model(args.resume)
        settings = resumed.metadata.get("run_settings")
        if not isinstance(settings, dict) or "training_state" not in resumed.metadata:
            raise DataError(f"{args.resume} is not a checkpoint written by `logitnet train`")
        args = argparse.Namespace(**{**settings, "resume": args.resume, "quiet": args.quiet, "debug": args.debug,
                                     "workers": args.workers, "scheduler": args.scheduler})
    if args.plots:
        from . import plotting

        plotting.require_matplotlib()  # fail before training, not after
    names = [t.strip() for t in args.targets.split(",")] if args.targets else None
    if args.multilabel and args.data is not None:
        raise DataError("--multilabel picks the bundled multi-label digits; for your own file use "
                        "--targets A,B,C")
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    seed = args.seed
    with contextlib.ExitStack() as stack:
        streamed = _streams(args)
        run = _streamed_run(args, names, seed, stack) if streamed else _in_memory_run(args, names, seed)
        ds = run.ds
        if ds.multilabel:
            n_out, out_act, loss, metric_names = len(ds.target_names), "sigmoid", "binary_crossentropy", \
                ["hamming_loss", "subset_accuracy"]
        else:
            n_out, out_act, loss, metric_names = len(ds.class_names), "softmax", \
                "sparse_categorical_crossentropy", ["accuracy"]
            if n_out < 2:
                raise DataError(f"{ds.source}: the target has a single class ({ds.class_names[0]!r}); "
                                "a classifier needs at least 2")
        n_features = len(ds.feature_names)
        if resumed is None:
            model = Sequential([Dense(u, args.activation) for u in args.layers] + [Dense(n_out, out_act)],
                               seed=seed, dtype=args.dtype)
            model.compile(optimizer=_optimizer(args.optimizer, args.lr), loss=loss, metrics=metric_names)
            model.build((n_features,))
            initial_epoch, history_so_far = 0, {}
        else:
            model = resumed
            initial_epoch = int(model.metadata["training_state"]["epoch"])
            history_so_far = model.metadata.get("history_so_far", {})
        shape = " -> ".join([str(n_features)] + [f"{u} {args.activation}" for u in args.layers]
                            + [f"{n_out} {out_act}"])
        what = (f"{len(ds.class_names)} classes" if not ds.multilabel
                else f"{len(ds.target_names)} labels ({', '.join(ds.target_names)})")
        print(f"Data: {ds.source}: {run.n_rows} samples, {n_features} features, {what}")
        print(f"Network: {shape} ({model.count_params():,} parameters), {args.optimizer} "
              f"lr {model.optimizer.learning_rate:g}, seed {seed}")
        print(f"Training on {run.n_train + run.n_val} samples ({args.val_split:.0%} of them for validation), "
              f"testing on {run.n_test}" + (f"; resuming after epoch {initial_epoch}" if resumed else "")
              + (f"; streamed through Dask ({run.where})" if streamed else ""))
        checkpoint = args.checkpoint or f"{args.out}.checkpoint"
        model.metadata.update(run_settings={k: getattr(args, k) for k in _RUN_SETTINGS},
                              history_so_far=history_so_far)
        cbs: list = [_HistoryKeeper(), callbacks.ModelCheckpoint(checkpoint)]
        if not args.quiet:
            cbs.append(_progress(args.epochs, run.n_train))
        model.fit(run.x_train, run.y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  callbacks=cbs, initial_epoch=initial_epoch, **run.fit_options)
        history = model.metadata.pop("history_so_far")
        results = {}
        if run.n_test:
            logits, y_test = model.predict_logits(run.x_test), run.y_test
            if streamed:
                import dask

                logits, y_test = dask.compute(logits, y_test)
            results = _report(logits, y_test, ds, "Test")
    model.metadata = {
        "task": "multilabel" if ds.multilabel else "multiclass",
        "feature_names": ds.feature_names, "target_names": ds.target_names, "class_names": ds.class_names,
        "standardize": {"mean": run.mean.tolist(), "scale": run.scale.tolist()},
        "training": {"data": ds.source, "samples": run.n_train + run.n_val, "test_samples": run.n_test,
                     "layers": args.layers, "activation": args.activation, "epochs": args.epochs,
                     "batch_size": args.batch_size, "optimizer": args.optimizer,
                     "learning_rate": model.optimizer.learning_rate, "val_split": args.val_split,
                     "test_split": args.test_split, "seed": seed, "dtype": args.dtype},
        "history": history, "test_results": results,
    }
    model.save(args.out)
    Path(checkpoint).unlink(missing_ok=True)
    if args.plots:
        _plots(Path(args.plots), model, history, ds, (logits, y_test) if run.n_test else None, run.raw)
    print(f"Model saved to {args.out}")
    return 0


class _HistoryKeeper(Callback):
    """Keeps the whole run's history in the model's metadata, so a checkpoint carries it."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            self.model.metadata["history_so_far"].setdefault(key, []).append(value)


@dataclass
class _Run:
    """What one training run trains, validates and tests on (NumPy arrays, or Dask arrays when streamed)."""

    ds: Dataset  # the names; its x and y are the whole data only in memory
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    mean: np.ndarray
    scale: np.ndarray
    n_train: int
    n_val: int
    n_test: int
    fit_options: dict = field(default_factory=dict)
    raw: tuple | None = None  # (x, y) in the data's own units, for the decision-region plot
    where: str = ""

    @property
    def n_rows(self) -> int:
        return self.n_train + self.n_val + self.n_test


def _streams(args: argparse.Namespace) -> bool:
    """Whether DATA is read through Dask: a glob, Parquet, or any CSV with --workers / --scheduler."""
    data = args.data
    cluster = bool(args.workers or args.scheduler)
    if data is None:
        if cluster:
            raise DataError("--workers and --scheduler train on CSV or Parquet files; give DATA")
        return False
    tabular = data.lower().endswith((".csv", ".parquet")) or os.path.isdir(data)
    if cluster and not (tabular or any(c in data for c in "*?[")):
        raise DataError(f"{data}: --workers and --scheduler stream CSV or Parquet files, not "
                        f"{Path(data).suffix or 'this'} files")
    return cluster or any(c in data for c in "*?[") or data.lower().endswith(".parquet") or os.path.isdir(data)


def _in_memory_run(args: argparse.Namespace, names: list[str] | None, seed: int) -> _Run:
    from . import data

    ds = data.load(args.data, args.labels, target=args.target, targets=names, multilabel=args.multilabel)
    train_idx, test_idx = _split(len(ds.x), args.test_split, args.val_split, seed)
    mean, scale = _standardizer(ds.x[train_idx])
    x = (ds.x - mean) / scale
    n_val = int(len(train_idx) * args.val_split)
    return _Run(ds, x[train_idx], ds.y[train_idx], x[test_idx], ds.y[test_idx], mean, scale,
                len(train_idx) - n_val, n_val, len(test_idx), {"validation_split": args.val_split},
                (ds.x, ds.y))


def _streamed_run(args: argparse.Namespace, names: list[str] | None, seed: int,
                  stack: contextlib.ExitStack) -> _Run:
    """The files read through Dask, and the distribution that trains on them (closed with `stack`)."""
    try:
        from .distribution import DataParallel, Streaming, tables
    except ImportError as err:
        raise ImportError(f'streaming files needs Dask ({err.name} is missing): pip install "logitnet[dask]"') from None
    if args.labels:
        raise DataError("LABELS goes with a .npy DATA; streamed CSV and Parquet files hold their targets")
    if args.workers:
        from distributed import Client, LocalCluster

        cluster = stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                                   dashboard_address=None))
        client = stack.enter_context(Client(cluster))
        distribution, where = DataParallel(client), f"{args.workers} local workers"
    elif args.scheduler:
        distribution = DataParallel(address=args.scheduler)
        stack.callback(distribution.client.close)
        where = f"the cluster at {args.scheduler}"
    else:
        distribution, where = Streaming(), "this process"
    table = tables.read(args.data, target=args.target, targets=names, seed=seed, val_split=args.val_split,
                        test_split=args.test_split, dtype=args.dtype)
    y_names = None if table.multilabel else table.class_names
    ds = Dataset(np.empty((0, len(table.feature_names))), np.empty((0, len(table.target_names)) if y_names is None
                 else (0,), np.int64), table.feature_names, table.target_names, y_names, source=table.source)
    options: dict = {"distribution": distribution}
    if tables.VAL in table.parts:
        options["validation_data"] = table.parts[tables.VAL]
    x_test, y_test = table.parts.get(tables.TEST, (None, None))
    return _Run(ds, *table.parts[tables.TRAIN], x_test, y_test, table.mean, table.scale,
                table.counts[tables.TRAIN], table.counts[tables.VAL], table.counts[tables.TEST], options,
                where=where)


def _split(n: int, test_split: float, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_split)
    n_train = n - n_test
    n_val = int(n_train * val_split)
    if n < 10 or (test_split and n_test < 1) or n_train - n_val < 2 or (val_split and n_val < 1):
        raise DataError(f"too few rows: {n} samples cannot be split into training, validation "
                        f"({val_split:g}) and test ({test_split:g}) parts; give at least 10 rows")
    return order[n_test:], order[:n_test]


def _standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def _optimizer(name: str, lr: float | None):
    cls = optimizers.OPTIMIZERS[name]
    return cls() if lr is None else cls(learning_rate=lr)


def _progress(epochs: int, rows: int):
    """On a terminal, a live `rich` bar over the epochs' rows with their rate, and a Keras-like line
    per epoch; in a pipe or log (or without rich), just the lines. Both show rows per second."""
    from . import callbacks

    class Lines(callbacks.ProgbarLogger):
        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self._start
            values = " - ".join(f"{k}: {format_value(v)}" for k, v in (logs or {}).items())
            self.stream.write(f"Epoch {epoch + 1}/{epochs} - {seconds:.2f}s - {values} - "
                              f"{_rate(rows / max(seconds, 1e-9))} rows/s\n")
            self.stream.flush()

    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        return Lines(verbose=2)
    console = Console()
    if not console.is_terminal:
        return Lines(verbose=2)

    class RichProgress(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("rows · {task.fields[rate]} rows/s"), TimeElapsedColumn(),
                                TextColumn("{task.fields[loss]}"), console=console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=rows, epoch="", rate="", loss="")

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()
            self._shown = self._start
            loss = self.bar.tasks[0].fields.get("loss", "")  # reset replaces every field
            self.bar.reset(self.task, total=rows, epoch=f"{epoch + 1}/{epochs}", rate="", loss=loss)

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            done = round(rows * (batch + 1) / max(self.params.get("steps") or 1, 1))
            if now - self._shown > 0.2 or done == rows:  # redrawing every step would cost more than the step
                self._shown = now
                self.bar.update(self.task, completed=done, rate=_rate(done / max(now - self._start, 1e-9)))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            rate = _rate(rows / max(time.perf_counter() - self._start, 1e-9))
            self.bar.console.print(f"Epoch {epoch + 1}/{epochs} - "
                                   + " - ".join(f"{k}: {format_value(v)}" for k, v in logs.items())
                                   + f" - {rate} rows/s")
            self.bar.update(self.task, completed=rows, rate=rate,
                            loss=f"loss {format_value(logs.get('loss', float('nan')))}")

        def on_train_end(self, logs=None):
            self.bar.stop()

    return RichProgress()


def _rate(value: float) -> str:
    return f"{value:,.0f}"


# --- reports -----------------------------------------------------------------------------------
def _report(logits: np.ndarray, y: np.ndarray, ds: Dataset, label: str) -> dict[str, float]:
    """Print and return the scores of `logits` (n, units) against y; decisions come from the logits
    (rounded probabilities tie or flip)."""
    from . import metrics

    if ds.multilabel:
        pred = metrics.multilabel_predict(logits, 0.5, from_logits=True)
        results = {"hamming_loss": metrics.hamming_loss(y, pred), "subset_accuracy": metrics.subset_accuracy(y, pred),
                   "micro_f1": metrics.f1_score(y, pred, "micro"), "macro_f1": metrics.f1_score(y, pred, "macro")}
        print(f"{label} hamming loss: {format_value(results['hamming_loss'])}   subset accuracy: "
              f"{format_value(results['subset_accuracy'])}   micro F1: {format_value(results['micro_f1'])}   "
              f"macro F1: {format_value(results['macro_f1'])}")
        per = metrics.f1_score(y, pred, None)
        width = max(len(n) for n in ds.target_names)
        print("Per label:  " + "   ".join(f"{n.ljust(width)} F1 {f:.3f} ({int(y[:, k].sum())} positive)"
                                         for k, (n, f) in enumerate(zip(ds.target_names, per))))
        return {k: float(v) for k, v in results.items()}
    pred = logits.argmax(axis=1)
    correct = int((pred == y).sum())
    print(f"{label} accuracy: {format_value(correct / len(y))} ({correct} of {len(y)})")
    cm = metrics.confusion_matrix(y, pred, n_classes=len(ds.class_names))
    print(_confusion_text(cm, ds.class_names))
    return {"accuracy": correct / len(y)}


def _confusion_text(cm: np.ndarray, names: list[str]) -> str:
    width = max(max(len(n) for n in names), len(str(cm.max()))) + 1
    lines = ["Confusion matrix (rows: true class, columns: predicted):",
             " " * width + "".join(n.rjust(width + 1) for n in names)]
    lines += [name.rjust(width) + "".join(str(v).rjust(width + 1) for v in row) for name, row in zip(names, cm)]
    return "\n".join(lines)


def _plots(folder: Path, model: Any, history: dict, ds: Dataset, test: tuple | None, raw: tuple | None) -> None:
    """The run's figures: learning curves, the test part's confusion matrix (or per-label F1), and for
    two features the decision regions over `raw` (x, y) in the data's own units."""
    from . import metrics, plotting

    plotting.require_matplotlib()
    written = [plotting.learning_curves(history, folder / "learning_curves.png")]
    if test is not None:
        logits, yt = test
        if ds.multilabel:
            pred = metrics.multilabel_predict(logits, 0.5, from_logits=True)
            written.append(plotting.per_label_f1(metrics.f1_score(yt, pred, None), ds.target_names,
                                                 folder / "per_label_f1.png"))
        else:
            cm = metrics.confusion_matrix(yt, logits.argmax(axis=1), n_classes=len(ds.class_names))
            written.append(plotting.confusion_matrix_plot(cm, ds.class_names, folder / "confusion_matrix.png"))
    if raw is not None and raw[0].shape[1] == 2 and not ds.multilabel:
        written.append(plotting.decision_regions(_Standardized(model), raw[0], raw[1], ds.class_names,
                                                 folder / "decision_regions.png"))
    print("Plots: " + ", ".join(str(p) for p in written))


class _Standardized:
    """The model seen from the data's own units: predict() applies the stored standardization."""

    def __init__(self, model: Any) -> None:
        self.model, self.layers = model, model.layers

    def predict(self, x: np.ndarray, verbose: int = 0, **kw: Any) -> np.ndarray:
        return self.model.predict(_scale(self.model, x), verbose=0, **kw)


def _scale(model: Any, x: np.ndarray) -> np.ndarray:
    std = model.metadata["standardize"]
    return (x - np.asarray(std["mean"])) / np.asarray(std["scale"])
