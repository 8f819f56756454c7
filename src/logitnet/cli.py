"""The `logitnet` command line: train, evaluate, predict, explain, export, info and numerics.

Errors are one line on stderr with a non-zero exit (2 for usage errors); `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, optimizers
from .callbacks import format_value
from .cli_train import _report, _scale, _train
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
