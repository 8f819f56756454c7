"""The `logitnet` command line: train, evaluate, predict, explain, export, info and numerics.

Errors are one line on stderr with a non-zero exit (2 for usage errors); `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, optimizers
from .callbacks import Callback, format_value
from .data import DataError, Dataset


def _layers(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 25,15, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not 0 < value < float("inf"):  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser = argparse.ArgumentParser(
        prog="logitnet", parents=[common],
        description="Train and use classifiers whose losses are computed from logits, exactly.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", parents=[common], help="train a classifier (default: the bundled digits)")
    train.add_argument("data", nargs="?", metavar="DATA", help=".csv (with a header), .npz (x, y) or "
                       ".npy features followed by LABELS; a glob of CSV or Parquet files (quote it: "
                       "'data/*.parquet') or a Parquet folder is streamed through Dask; omit for the "
                       "bundled handwritten digits")
    train.add_argument("labels", nargs="?", metavar="LABELS", help=".npy labels when DATA is a .npy")
    target = train.add_mutually_exclusive_group()
    target.add_argument("--target", metavar="COL", help="CSV column holding the class (default: the last)")
    target.add_argument("--targets", metavar="A,B,C", help="CSV 0/1 columns of a multi-label task")
    target.add_argument("--multilabel", action="store_true",
                        help="with no DATA: the digits' multi-label attributes (even, prime, loop, large)")
    train.add_argument("--layers", type=_layers, default=[25, 15], help="hidden layer sizes (default 25,15)")
    train.add_argument("--activation", choices=activations.HIDDEN, default="relu")
    train.add_argument("--epochs", type=_positive(int), default=40)
    train.add_argument("--batch-size", type=_positive(int), default=32)
    train.add_argument("--optimizer", choices=tuple(optimizers.OPTIMIZERS), default="adam")
    train.add_argument("--lr", type=_positive(float), default=None, help="learning rate (default: Keras')")
    train.add_argument("--val-split", type=_fraction, default=0.1)
    train.add_argument("--test-split", type=_fraction, default=0.2)
    train.add_argument("--seed", type=int, default=None, help="fix every random choice (default: drawn and shown)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--out", metavar="FILE", default="model.logitnet", help="where to save the model")
    train.add_argument("--plots", metavar="DIR", help="write PNG figures there (needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="no progress display")
    place = train.add_mutually_exclusive_group()
    place.add_argument("--workers", type=_positive(int), metavar="N", help="train on a local Dask cluster of "
                       "N worker processes (DATA is streamed; needs logitnet[dask])")
    place.add_argument("--scheduler", metavar="ADDRESS", help="train on the Dask cluster whose scheduler "
                       "is at ADDRESS, e.g. tcp://10.0.0.5:8786 (its workers must see DATA's files)")
    train.add_argument("--checkpoint", metavar="FILE", help="checkpoint written after every epoch and "
                       "removed at the end (default: OUT.checkpoint)")
    train.add_argument("--resume", metavar="FILE", help="continue an interrupted run from its checkpoint "
                       "(its data and settings are reused)")
    train.set_defaults(run=_train)

    evaluate = sub.add_parser("evaluate", parents=[common], help="score a saved model on labelled data")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("labels", nargs="?", metavar="LABELS")
    evaluate.set_defaults(run=_evaluate)

    predict = sub.add_parser("predict", parents=[common], help="predict classes (CSV out)")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("data", metavar="DATA")
    predict.add_argument("--proba", action="store_true", help="add each class's probability")
    predict.add_argument("--output", metavar="FILE", help="write the CSV there instead of to stdout")
    predict.set_defaults(run=_predict)

    explain = sub.add_parser("explain", parents=[common],
                             help="look inside the output layer for one row: logits, probabilities, loss")
    explain.add_argument("model", metavar="MODEL")
    explain.add_argument("data", metavar="DATA", help="rows in the format `evaluate` and `predict` read; "
                         "with the target column(s), the true label's loss is shown too")
    explain.add_argument("--row", type=int, default=0, metavar="K", help="which data row (0-based, default 0)")
    explain.add_argument("--labels", metavar="LABELS", help=".npy labels when DATA is a .npy")
    explain.add_argument("--plot", metavar="FILE", help="write a PNG bar chart of z and a per unit "
                         "(needs matplotlib)")
    explain.set_defaults(run=_explain)

    export = sub.add_parser("export", parents=[common], help="write a trained model as ONNX: raw features "
                            "in; logits, probabilities and label out (needs the onnx extra)")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("out", metavar="OUT", help="the .onnx file to write")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    export.set_defaults(run=_export)

    info = sub.add_parser("info", parents=[common], help="show a saved model and how it was trained")
    info.add_argument("model", metavar="MODEL")
    info.set_defaults(run=_info)

    num = sub.add_parser("numerics", parents=[common], help="show why losses are computed from logits")
    num.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="precision of the inputs (default float32, as Keras)")
    num.set_defaults(run=_numerics)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush from failing
        return 141
    except (DataError, ValueError, OSError, ImportError) as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"logitnet {args.command}: error: {message}", file=sys.stderr)
        return 1


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


# --- evaluate, predict, info, numerics ---------------------------------------------------------
def _load(path: str):
    from .models import load_model

    model = load_model(path)
    if "feature_names" not in model.metadata:
        raise DataError(f"{path} was not saved by `logitnet train`: it lacks the column names and "
                        "scaling the command line needs; use it from Python instead")
    return model


def _features(model: Any, ds: Dataset) -> np.ndarray:
    n_features = len(model.metadata["standardize"]["mean"])
    if ds.x.shape[1] != n_features:
        raise DataError(f"{ds.source} has {ds.x.shape[1]} features; the model was trained on {n_features}")
    return _scale(model, ds.x)


def _read_for(model: Any, path: str, labels: str | None, need_target: bool) -> Dataset:
    from . import data

    meta = model.metadata
    multilabel = meta["task"] == "multilabel"
    csv_file = Path(path).suffix.lower() == ".csv"
    labelled_csv = csv_file and need_target
    return data.load(path, labels,
                     target=meta["target_names"][0] if labelled_csv and not multilabel else None,
                     targets=meta["target_names"] if labelled_csv and multilabel else None,
                     need_target=need_target, feature_names=meta["feature_names"] if csv_file else None,
                     class_names=meta["class_names"])


def _evaluate(args: argparse.Namespace) -> int:
    model = _load(args.model)
    ds = _read_for(model, args.data, args.labels, need_target=True)
    if model.metadata["task"] == "multilabel" and not ds.multilabel:
        raise DataError(f"{args.data}: the model is multi-label; the data must hold its 0/1 target columns")
    ds.target_names = model.metadata["target_names"]
    ds.class_names = model.metadata["class_names"]
    _report(model.predict_logits(_features(model, ds)), ds.y, ds, "Evaluation")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from . import metrics

    model = _load(args.model)
    meta = model.metadata
    ds = _read_for(model, args.data, None, need_target=False)
    logits = model.predict_logits(_features(model, ds))
    outputs = model.outputs_from_logits(logits)  # decisions from the logits: rounded probabilities tie or flip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if meta["task"] == "multilabel":
        names = meta["target_names"]
        writer.writerow(names + ([f"p({n})" for n in names] if args.proba else []))
        decided = metrics.multilabel_predict(logits, 0.5, from_logits=True)
        for row, labels in zip(outputs, decided):
            writer.writerow([int(v) for v in labels] + ([f"{v:.6g}" for v in row] if args.proba else []))
    else:
        classes = meta["class_names"]
        writer.writerow(["prediction"] + ([f"p({c})" for c in classes] if args.proba else []))
        for row, z in zip(outputs, logits):
            writer.writerow([classes[int(z.argmax())]] + ([f"{v:.6g}" for v in row] if args.proba else []))
    if args.output:
        Path(args.output).write_text(buffer.getvalue())
        print(f"Wrote {len(outputs)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(buffer.getvalue())
    return 0


def _has_target(model: Any, path: str, labels: str | None) -> bool:
    """Whether DATA carries the model's target: its column(s) in a CSV, 'y' in an .npz, LABELS for .npy."""
    suffix = Path(path).suffix.lower()
    if labels is not None:
        return True
    if suffix == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                header = next((row for row in csv.reader(fh) if any(c.strip() for c in row)), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            return False  # data.load says what is wrong with the file
        return all(name in {c.strip() for c in header} for name in model.metadata["target_names"])
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return "y" in archive.files
        except (OSError, ValueError):
            return False
    return False


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    model = _load(args.model)
    if args.plot:
        from . import plotting

        plotting.require_matplotlib()  # fail before the work, not after
        if Path(args.plot).suffix.lower() != ".png":
            raise DataError(f"--plot writes a PNG: FILE must end in .png, got {args.plot!r}")
    ds = _read_for(model, args.data, args.labels, need_target=_has_target(model, args.data, args.labels))
    if model.metadata["task"] == "multilabel" and ds.y is not None and not ds.multilabel:
        raise DataError(f"{args.data}: the model is multi-label; its targets must be 0/1 columns")
    x = _features(model, ds)
    if not 0 <= args.row < len(x):
        raise DataError(f"--row {args.row} is out of range: {args.data} has {len(x)} data rows "
                        f"(--row 0 to {len(x) - 1})")
    explanation = explain(model, x, ds.y, row=args.row)
    print(f"Row {args.row} of {args.data} ({len(x)} rows)" + ("" if ds.y is not None else "; no target column"))
    print(explanation.table())
    if args.plot:
        print(f"Plot: {explanation.plot(args.plot)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import json

    from . import onnx_export

    model = _load(args.model)
    meta = model.metadata
    multilabel = meta["task"] == "multilabel"
    # The graph standardises as predict does, so it takes the data's own units; labels are the class names.
    onnx_export.export(model, args.out, opset=args.opset, task=meta["task"],
                       class_labels=None if multilabel else meta["class_names"], standardize=meta["standardize"],
                       metadata={"feature_names": json.dumps(meta["feature_names"]),
                                 "target_names": json.dumps(meta["target_names"])})
    names = meta["feature_names"]
    columns = ", ".join(names[:8]) + (f", ... ({len(names)} columns)" if len(names) > 8 else "")
    label = f"0/1 per label ({', '.join(meta['target_names'])})" if multilabel else "the class name"
    print(f"Exported {args.model} to {args.out} (ONNX opset {args.opset})")
    print(f"Input 'input': {model.dtype.name} (batch, {len(names)}), the raw columns {columns}; outputs "
          f"'logits', 'probabilities' and 'label' ({label})")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .models import load_model

    model = load_model(args.model)
    model.summary()
    meta = model.metadata
    print(f"Loss: {type(model.loss).__name__ if model.loss else 'not compiled'}; optimizer: "
          f"{model.optimizer.get_config() if model.optimizer else '-'}")
    if "training" in meta:
        t = meta["training"]
        print(f"Trained on {t['samples']} samples of {t['data']} for {t['epochs']} epochs (batch "
              f"{t['batch_size']}, {t['optimizer']} lr {t['learning_rate']:g}, seed {t['seed']}, {t['dtype']})")
        if meta.get("class_names"):
            print(f"Classes ({meta['target_names'][0]}): {', '.join(meta['class_names'])}")
        else:
            print(f"Labels: {', '.join(meta['target_names'])}")
        if meta.get("test_results"):
            print("Test results: " + ", ".join(f"{k} {format_value(v)}" for k, v in meta["test_results"].items()))
    print(_compiled_path())
    return 0


def _compiled_path() -> str:
    from .ops import fast

    return f"Compiled kernels (logitnet[fast]): {fast.status()}; {fast.ENV}=0 turns them off"


def _numerics(args: argparse.Namespace) -> int:
    from .numerics import report

    print(report(args.dtype))
    print()
    print(_compiled_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
