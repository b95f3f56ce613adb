"""What the command writes: terminal tables (rich), ``results.json``, ``results.csv``, the machine.

Numbers in tables are the mean over the seeds that did not diverge, ``±`` half
their range (max - min over seeds), so two seeds show both values exactly.
Diverged and collapsed runs are counted in their own columns, never averaged in.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any, Iterable, Sequence

import jax
import numpy as np
from rich import box
from rich.table import Table

from ._records import Cell

__all__ = ["cell_row", "machine", "metric_text", "steps_text", "sweep_table", "write_csv", "write_json"]

PERCENT_METRICS = ("final_train_accuracy", "final_validation_accuracy")
COLUMNS = (
    ("train loss", "final_train_loss"),
    ("train acc %", "final_train_accuracy"),
    ("val loss", "final_validation_loss"),
    ("val acc %", "final_validation_accuracy"),
)


def machine() -> dict[str, Any]:
    """Where and when the numbers were measured."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model
            )
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "devices": [str(device) for device in jax.devices()],
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


def metric_text(cell: Cell, metric: str) -> str:
    """``"0.132 ±0.004"`` (accuracy in %), ``"diverged"``, ``"collapsed"``, ``"failed"`` (both) or ``"—"``."""
    if cell.failed == len(cell.runs):
        return "collapsed" if not cell.diverged else ("diverged" if not cell.collapsed else "failed")
    mean = cell.mean(metric)
    if not np.isfinite(mean):
        return "—"
    if metric in PERCENT_METRICS:
        return f"{mean * 100:.1f} ±{cell.spread(metric) * 50:.1f}"
    if abs(mean) < 0.01:  # Small losses (regression tasks) keep three significant digits.
        return f"{mean:.2e} ±{cell.spread(metric) / 2:.1e}"
    return f"{mean:.3f} ±{cell.spread(metric) / 2:.3f}"


def steps_text(cell: Cell) -> str:
    """Mean steps to the target loss over the seeds that reached it, with the count."""
    reached = [run["steps_to_target"] for run in cell.runs if run["steps_to_target"] is not None]
    if not reached:
        return (
            "not reached"
            if cell.runs[0]["target_loss"] is not None and cell.failed < len(cell.runs)
            else "—"
        )
    text = f"{np.mean(reached):.0f}"
    return text if len(reached) == len(cell.runs) else f"{text} ({len(reached)}/{len(cell.runs)})"


def cell_row(cell: Cell, *, marker: str = "") -> list[str]:
    """The metric columns of one cell, then steps to target, diverged and collapsed runs."""
    diverged = f"{cell.diverged}/{len(cell.runs)}"
    collapsed = f"{cell.collapsed}/{len(cell.runs)}"
    return [
        *(metric_text(cell, metric) for _, metric in COLUMNS),
        steps_text(cell),
        f"[red]{diverged}[/red]" if cell.diverged else diverged,
        f"[red]{collapsed}[/red]" if cell.collapsed else collapsed,
    ] + ([marker] if marker else [])


def sweep_table(
    title: str, key_names: Sequence[str], rows: Iterable[tuple[Sequence[str], Cell, bool]]
) -> Table:
    """A table with the setting columns ``key_names``, then ``cell_row``; marked rows are bold, with a ``*``.

    Args:
      title: the table's title.
      key_names: headers of the leading setting columns.
      rows: ``(setting texts, cell, highlight)`` per row.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for name in key_names:
        table.add_column(name)
    for name, _ in COLUMNS:
        table.add_column(name, justify="right")
    rows = list(rows)
    target = next((cell.runs[0]["target_loss"] for _, cell, _ in rows), None)
    table.add_column("steps to target" if target is None else f"steps to loss {target:g}", justify="right")
    table.add_column("diverged", justify="right")
    table.add_column("collapsed", justify="right")
    for keys, cell, highlight in rows:
        if highlight:  # Bold on a terminal; the "*" survives in summary.txt and the README.
            keys = (*keys[:-1], f"{keys[-1]} *")
        table.add_row(*keys, *cell_row(cell), style="bold" if highlight else None)
    return table


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Writes strict JSON (non-finite numbers must already be ``None``)."""
    path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """One row per run, every field but the curves."""
    fields: list[str] = []
    for record in records:
        fields.extend(field for field in record if field != "curves" and field not in fields)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    field: ("" if value is None else value)
                    for field, value in record.items()
                    if field != "curves"
                }
            )
