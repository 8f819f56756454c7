"""The `logitnet` command line."""

from __future__ import annotations

import argparse
import sys


def _numerics(args: argparse.Namespace) -> int:
    from .numerics import report

    print(report(args.dtype))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="logitnet",
        description="Train and inspect classifiers whose losses are computed from logits, exactly.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    num = sub.add_parser("numerics", help="show why losses are computed from logits (naive vs exact)")
    num.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="precision of the inputs (default float32, as Keras)")
    num.set_defaults(run=_numerics)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for usage errors)."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
