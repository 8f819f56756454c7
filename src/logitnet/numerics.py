"""The `logitnet numerics` report: the seed notes' rounding lesson, measured.

It prints the seed's example, then a table of cross-entropies computed the naive way
(probabilities first, then the log), the logitnet way (from the logits), and exactly
(50+ significant digits with the standard library's `decimal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from . import ops
from .ops import naive


@dataclass(frozen=True)
class Case:
    """One telling input: a loss (or gradient entry) of logits `z` with label `y`."""

    title: str
    kind: str  # "ce" loss, "ce_grad" d loss / d z_y, "bce" loss
    z: tuple[float, ...]
    y: int


CASES = (
    Case("ordinary logits", "ce", (2.0, 1.0, 0.1), 0),
    Case("confident and right", "ce", (40.0, 0.0, 0.0), 0),
    Case("very confident and right", "ce", (60.0, 0.0), 0),
    Case("confident and wrong", "ce", (0.0, 120.0), 0),
    Case("gradient 1 - p, confident", "ce_grad", (30.0, 0.0), 0),
    Case("sigmoid, confident and right", "bce", (20.0,), 1),
    Case("sigmoid, confident and wrong", "bce", (100.0,), 0),
    Case("sigmoid, wrong the other way", "bce", (-100.0,), 1),
)


def _exact(case: Case, dtype: np.dtype) -> Decimal:
    """The true value for the inputs as rounded to `dtype`, to 60 digits."""
    with localcontext() as ctx:
        ctx.prec = 80
        z = [Decimal(float(dtype.type(v))) for v in case.z]
        if case.kind == "bce":
            x = z[0] if case.y == 0 else -z[0]  # loss = softplus(x)
            value = _softplus(x)
        else:
            rest = sum((v - z[case.y]).exp() for j, v in enumerate(z) if j != case.y)
            value = _ln1p(rest) if case.kind == "ce" else -rest / (1 + rest)
        ctx.prec = 60
        return +value


def _ln1p(x: Decimal) -> Decimal:
    # 80 digits hold 1 + x exactly enough for every x in CASES (x >= 1e-27).
    return (1 + x).ln()


def _softplus(x: Decimal) -> Decimal:
    return x + _ln1p((-x).exp()) if x > 0 else _ln1p(x.exp())


def _naive(case: Case, dtype: np.dtype) -> float:
    z = np.array([case.z], dtype)
    with np.errstate(all="ignore"):
        if case.kind == "bce":
            return float(naive.naive_sigmoid_binary_cross_entropy(z[0], np.array([case.y], dtype))[0][0])
        loss, grad = naive.naive_softmax_cross_entropy(z, [case.y])
    return float(loss[0] if case.kind == "ce" else grad[0, case.y])


def _logitnet(case: Case, dtype: np.dtype) -> float:
    z = np.array([case.z], dtype)
    if case.kind == "bce":
        return float(ops.sigmoid_binary_cross_entropy(z[0], np.array([case.y], dtype))[0][0])
    loss, grad = ops.softmax_cross_entropy(z, [case.y])
    return float(loss[0] if case.kind == "ce" else grad[0, case.y])


def relative_error(value: float, exact: Decimal) -> float:
    """|value − exact| / |exact| (inf for a non-finite value)."""
    if not np.isfinite(value):
        return float("inf")
    if exact == 0:
        return 0.0 if value == 0 else float("inf")
    return float(abs(Decimal(value) - exact) / abs(exact))


def rows(dtype: str = "float32") -> list[dict[str, object]]:
    """The table's rows: case, naive value, logitnet value, exact value and both relative errors."""
    dt = np.dtype(dtype)
    out = []
    for case in CASES:
        exact = _exact(case, dt)
        naive_value, exact_value = _naive(case, dt), _logitnet(case, dt)
        out.append({
            "case": case, "naive": naive_value, "logitnet": exact_value, "exact": exact,
            "naive_error": relative_error(naive_value, exact),
            "logitnet_error": relative_error(exact_value, exact),
        })
    return out


def _fmt_error(err: float) -> str:
    if err == float("inf"):
        return "infinite"
    if err >= 0.995:
        return f"{err:.0%}"
    return "0" if err == 0 else f"{err:.1e}"


def report(dtype: str = "float32") -> str:
    """The whole report as text."""
    x1 = 2 / 10_000
    x2 = (1 + 1 / 10_000) - (1 - 1 / 10_000)
    eps = np.finfo(np.dtype(dtype)).eps
    lines = [
        "The seed's example: one number computed two ways (Python floats, float64)",
        f"  x1 = 2/10_000                         -> {x1:.18f}",
        f"  x2 = (1 + 1/10_000) - (1 - 1/10_000)  -> {x2:.18f}",
        "  Each step rounds; subtracting two nearly equal rounded numbers exposes the rounding.",
        "",
        f"Cross-entropy in {dtype} (machine epsilon {eps:.1e}):",
        "  naive    = probabilities first (softmax or sigmoid), then -log(p)   [from_logits=False]",
        "  logitnet = the same loss taken from the logits, with no rounding to 0 or 1 in between",
        "  exact    = 60 significant digits (Python's decimal module)",
        "",
    ]
    header = ("case", "logits", "label", "naive", "logitnet", "exact", "naive err", "logitnet err")
    table = [header]
    for r in rows(dtype):
        case = r["case"]
        name = case.title + (" (dL/dz_y)" if case.kind == "ce_grad" else "")
        table.append((
            name, "[" + ", ".join(f"{v:g}" for v in case.z) + "]", str(case.y),
            f"{r['naive'] + 0.0:.6g}", f"{r['logitnet'] + 0.0:.6g}", f"{float(r['exact']):.6g}",
            _fmt_error(r["naive_error"]), _fmt_error(r["logitnet_error"]),
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    lines += [
        "",
        "The naive column loses confident predictions: p rounds to exactly 1 (loss 0, gradient 0,",
        "so the example stops teaching) or to exactly 0 (log 0 = -inf, an infinite loss). From the",
        "logits, logitnet keeps every value to within rounding of the exact one.",
    ]
    return "\n".join(lines)
