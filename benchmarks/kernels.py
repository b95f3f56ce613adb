"""What a compiled optimizer step launches: its top-level operations, optaxtra against optax.

Run from the repository root::

    python benchmarks/kernels.py                       # gpt2_8m (gpt2_124m off the CPU)
    python benchmarks/kernels.py --tree resnet18 --optimizers adam,lamb --dump /tmp/hlo
    python benchmarks/kernels.py --optimizers adam --calls 200     # and time one call of each

When each step is its own call, a GPU spends more time launching a step's
kernels than running them on a tree of a few hundred leaves, so two steps that
move the same bytes can differ in time by the number of kernels they launch.
This counts, in the optimised HLO of the donated step, the operations of the
entry computation by opcode (on a GPU each fusion, copy and custom call is a
kernel launch; on the CPU each is a loop), the outputs and how many of them
alias a donated input (an output that does not is allocated on every call).

With ``--calls N`` it also times the calls themselves, optaxtra's and optax's
in rounds of N whose order rotates (``measure.time_calls_in_rounds``): the wall time of a call waited on alone, and the
host's share, the mean time to dispatch N calls back to back (the device
catching up is left out, unless the device is what holds the host back).
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import equivalents  # noqa: E402
import measure  # noqa: E402
import trees  # noqa: E402

__all__ = ["census"]

# Entry operations that only name or regroup buffers: no kernel, no loop.
FREE = {"parameter", "tuple", "get-tuple-element", "bitcast", "constant", "opt-barrier"}
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\s([a-z][\w\-]*)\(")


def census(hlo_text: str) -> dict[str, int]:
    """Counts of the entry computation's operations by opcode, plus ``aliased`` outputs.

    Args:
      hlo_text: ``compiled.as_text()`` of a jitted function.

    Returns:
      Opcode counts (free ones, see ``FREE``, left out), ``launches`` (their sum)
      and ``aliased`` (outputs that reuse a donated input's buffer).
    """
    lines = hlo_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ENTRY"))
    counts: collections.Counter = collections.Counter()
    for line in lines[start + 1:]:
        if line.startswith("}"):
            break
        match = _INSTRUCTION.match(line)
        if match and match.group(1) not in FREE:
            counts[match.group(1)] += 1
    out = dict(sorted(counts.items()))
    out["launches"] = sum(counts.values())
    header = lines[0] if lines else ""
    out["aliased"] = header.count("may-alias") + header.count("must-alias")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_tree = "gpt2_8m" if jax.default_backend() == "cpu" else "gpt2_124m"
    parser.add_argument("--tree", default=default_tree)
    parser.add_argument("--optimizers", default="adam,adamw,radam,amsgrad,lamb,lars,sgd_momentum")
    parser.add_argument("--dump", type=Path, help="folder to write each step's optimised HLO to")
    parser.add_argument("--calls", type=int, default=0, help="also time N calls of each, in rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    shapes = {**bench.FULL_TREES, **bench.ACCELERATOR_TREES}[args.tree]()
    params = jax.tree.map(jnp.asarray, trees.build(shapes, seed=0))
    grads = jax.tree.map(jnp.asarray, trees.build(shapes, seed=1))
    print(f"{args.tree} on {jax.devices()[0].device_kind}: {trees.count(shapes)[0]} leaves")
    for name in args.optimizers.split(","):
        ours_factory, optax_factory = bench._factories(name)
        entries = {"optaxtra": equivalents.optaxtra_entry(ours_factory(bench.LEARNING_RATE), params)}
        if optax_factory is not None:
            entries["optax"] = equivalents.optax_entry(optax_factory(bench.LEARNING_RATE), params, name)
        compiled = {}
        for who, entry in entries.items():
            compiled[who] = jax.jit(entry.step, donate_argnums=(0, 1)).lower(
                entry.params, entry.state, grads).compile()
            text = compiled[who].as_text()
            if args.dump:
                args.dump.mkdir(parents=True, exist_ok=True)
                (args.dump / f"{args.tree}_{name}_{who}.hlo").write_text(text)
            counts = census(text)
            outputs = len(jax.tree.leaves((entry.params, entry.state)))
            detail = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("launches", "aliased"))
            print(f"  {name:14s} {who:8s} launches {counts['launches']:4d}  outputs {outputs:4d} "
                  f"(aliased {counts['aliased']:4d})  [{detail}]", flush=True)
        if args.calls:
            _report_calls(name, entries, compiled, grads, args.calls, args.rounds)


def _report_calls(
    name: str, entries: dict[str, Any], compiled: dict[str, Any], grads: Any, calls: int, rounds: int
) -> None:
    """Times optaxtra's and optax's calls in rotated rounds and prints medians and ratios."""
    buffers = {who: (entry.params, entry.state) for who, entry in entries.items()}
    walls, dispatches = measure.time_calls_in_rounds(compiled, buffers, grads, calls, rounds)
    ratio = lambda xs, ys: statistics.median(a / b for a, b in zip(xs, ys))
    for who in buffers:
        versus = ""
        if who != "optaxtra":
            versus = (f"  optaxtra/{who}: wall {ratio(walls['optaxtra'], walls[who]):.3f}, "
                      f"dispatch {ratio(dispatches['optaxtra'], dispatches[who]):.3f}")
        print(f"  {name:14s} {who:8s} call {statistics.median(walls[who]):8.1f} µs "
              f"[{min(walls[who]):.1f}–{max(walls[who]):.1f}]  dispatch "
              f"{statistics.median(dispatches[who]):8.1f} µs{versus}", flush=True)

if __name__ == "__main__":
    main()
