"""Writing benchmark results: machine description, markdown tables, JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import jax
import jaxlib
import optax

__all__ = ["machine", "many_vs_few", "markdown", "markers", "now", "write"]


def markers(section: str = "results") -> tuple[str, str]:
    """The comment lines between which ``write`` puts a section's tables."""
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


def _cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"Model name:\s*(.+)", text)
        if found:
            return found.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
        return round(kb / 2**20, 1)
    except (OSError, AttributeError):
        return None


def now() -> str:
    """The local time, to the second, in ISO format."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def machine() -> dict[str, Any]:
    """Where and with what the benchmark ran."""
    devices = jax.devices()
    return {
        "date": now(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "device": f"{devices[0].platform}: {devices[0].device_kind} x{len(devices)}",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "environment": settings_from_environment(),
    }


# Variables that change what is measured: XLA's and JAX's flags, glibc malloc's tuning.
ENVIRONMENT_PREFIXES = ("XLA_", "JAX_", "MALLOC_")


def settings_from_environment() -> dict[str, str]:
    """The environment variables that change what is measured, as set for this run."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENVIRONMENT_PREFIXES)}


def many_vs_few(results: dict[str, Any], many: str, few: str) -> list[dict[str, Any]]:
    """Per optimizer, its step time on the many-small-leaves tree over the few-leaves one."""
    if many not in results or few not in results:
        return []
    few_rows = {row["optimizer"]: row for row in results[few]["rows"]}
    out = []
    for row in results[many]["rows"]:
        other = few_rows.get(row["optimizer"])
        if other is None:
            continue
        optax_ratio = None
        if row["optax"] and other["optax"]:
            optax_ratio = row["optax"]["median_ms"] / other["optax"]["median_ms"]
        out.append({
            "optimizer": row["optimizer"],
            "many_ms": row["optaxtra"]["median_ms"],
            "few_ms": other["optaxtra"]["median_ms"],
            "ratio": row["optaxtra"]["median_ms"] / other["optaxtra"]["median_ms"],
            "compile_s": row["optaxtra"]["compile_s"],
            "optax_ratio": optax_ratio,
            "floor_ratio": row["floor"]["median_ms"] / other["floor"]["median_ms"],
        })
    return out


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ms(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    low, high = entry["spread_ms"]
    return f"{entry['median_ms']:.2f} [{low:.2f}–{high:.2f}]"


def _tree_table(name: str, tree: dict[str, Any]) -> list[str]:
    lines = [
        f"### {name}: {tree['leaves']} leaves, {tree['params'] / 1e6:.2f}M params "
        f"({tree['params_bytes'] / 2**20:.1f} MiB)",
        "",
        f"Run {tree.get('started', '?')}; load average {tree.get('load_average_start')} at start, "
        f"{tree.get('load_average_end')} at end.",
        "",
        "| optimizer | step ms: median [spread] | ×floor | ×optax | amortised ×floor | ×optax "
        "| compile s | ×floor | ×optax | state MiB | ×optax | temp MiB | faults MiB/step "
        "| floor ms | optax step ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in tree["rows"]:
        ours, optax_ = row["optaxtra"], row["optax"]
        r = row["ratios"]
        mark = "†" if "run" in row else ""
        lines.append(
            f"| {row['optimizer']}{mark} | {_ms(ours)} | {_ratio(r['floor'])} | {_ratio(r['optax'])} "
            f"| {_ratio(r['floor_amortised'])} | {_ratio(r['optax_amortised'])} "
            f"| {ours['compile_s']:.2f} | {_ratio(r['compile_floor'])} | {_ratio(r['compile_optax'])} "
            f"| {ours['state_bytes'] / 2**20:.2f} | {_ratio(r['state_optax'])} "
            f"| {ours['temp_mib']:.1f} | {ours['faults_mib']:.1f} | {row['floor']['median_ms']:.2f} "
            f"| {_ms(optax_)} |"
        )
    lines.append("")
    runs = {json.dumps(row["run"], sort_keys=True) for row in tree["rows"] if "run" in row}
    for run in sorted((json.loads(text) for text in runs), key=lambda run: run["started"]):
        names = ", ".join(row["optimizer"] for row in tree["rows"] if row.get("run") == run)
        lines += [
            f"† re-run {run['started']} (load average {run['load_average_start']} at start, "
            f"{run['load_average_end']} at end): {names}.",
            "",
        ]
    return lines


def _environment_line(m: dict[str, Any]) -> str:
    if "environment" not in m:  # results written before the environment was recorded
        return "Environment variables not recorded."
    if not m["environment"]:
        return "No XLA_, JAX_ or MALLOC_ variables set."
    return "Set: " + ", ".join(f"`{k}={v}`" for k, v in m["environment"].items()) + "."


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown: header with machine and settings, then one table per tree."""
    m = results["machine"]
    s = results["settings"]
    lines = [
        f"Run {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GiB "
        f"({m['device']}); Python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, "
        f"optax {m['optax']}. "
        + _environment_line(m),
        f"Load average (1, 5, 15 min) at start {m['load_average_start']}, at end "
        f"{m.get('load_average_end')}"
        + ("; trees and rows not run then are kept from earlier runs (each table gives its run; "
           "re-run rows are marked †)" if results.get("merged_from") else "")
        + f". {s['repeats']} interleaved rounds of {s['steps']} timed "
        f"steps after {s['warmup']} warm-up steps{' (quick mode)' if s['quick'] else ''}"
        + (f"; a timed step is one of {s['loop']} run in a device loop by one call (host dispatch "
           "not timed)" if s.get("loop", 1) > 1 else "; each step is one call, timed with its dispatch")
        + ".",
        "",
    ]
    for name, tree in results["trees"].items():
        lines += _tree_table(name, tree)
    if results.get("many_vs_few"):
        lines += [
            "### Many small leaves vs few large ones (same params)",
            "",
            "| optimizer | many ms | few ms | many / few | floor many / few | optax many / few "
            "| compile s (many) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in results["many_vs_few"]:
            lines.append(
                f"| {row['optimizer']} | {row['many_ms']:.2f} | {row['few_ms']:.2f} "
                f"| {_ratio(row['ratio'])} | {_ratio(row.get('floor_ratio'))} "
                f"| {_ratio(row['optax_ratio'])} | {row['compile_s']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def write(
    results: dict[str, Any], out: Path | None, json_out: Path | None, section: str = "results"
) -> str:
    """Writes the markdown between ``section``'s markers in ``out`` (creating it) and the JSON."""
    text = markdown(results)
    START, END = markers(section)
    if out is not None:
        out = Path(out)
        old = out.read_text() if out.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
        if START not in old:
            old = old.rstrip("\n") + f"\n\n{START}\n{END}\n"
        head, rest = old.split(START, 1)
        tail = rest.split(END, 1)[1] if END in rest else ""
        out.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    if json_out is not None:
        Path(json_out).write_text(json.dumps(results, indent=1))
    return text
