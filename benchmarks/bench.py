"""Optimizer step speed against the bandwidth floor and optax, on a few parameter trees.

Run from the repository root::

    python benchmarks/bench.py            # full run, writes benchmarks/README.md and results.json
    python benchmarks/bench.py --quick    # tiny trees, under a minute: a smoke test

On a GPU (``jax.default_backend() == "gpu"``) the defaults add GPT-2 small
itself and write ``results_gpu.json`` and the GPU section of the README.

For each tree and each optimizer of ``optaxtra.OPTIMIZERS`` (plus bfloat16-state
variants) three steps are compiled with params and state donated, as a
training loop does: optaxtra's optimizer, optax's equivalent (where there is
one) and the floor that moves the same bytes (``floor.py``). They are timed in
interleaved rounds; ratios are taken within each round and their median is
reported, with the spread of the per-round medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

import optaxtra

sys.path.insert(0, str(Path(__file__).resolve().parent))
import equivalents  # noqa: E402
import floor  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import trees  # noqa: E402

HERE = Path(__file__).resolve().parent
LEARNING_RATE = 1e-3

# Extra rows: both moments stored in bfloat16 (the second with stochastic rounding), maths in
# float32. optax has no bfloat16 second moment: its row stores the first moment only in bfloat16.
BF16 = {"mu_dtype": jnp.bfloat16, "nu_dtype": jnp.bfloat16}
VARIANTS: dict[str, tuple[Callable[[float], optax.GradientTransformation], Any]] = {
    "adam_bf16": (
        lambda lr: optaxtra.adam(lr, **BF16),
        lambda lr: optax.adam(lr, mu_dtype=jnp.bfloat16),
    ),
    "lamb_bf16": (lambda lr: optaxtra.lamb(lr, weight_decay=1e-2, **BF16), None),
    # Optimizers outside the table: SWATS (its Adam phase, before any switch) and Adam with an
    # EMA of its weights (one more param-sized slot). optax has neither.
    "swats": (lambda lr: optaxtra.swats(lr), None),
    "ema_adam": (lambda lr: optaxtra.ema_averaging(optaxtra.adam(lr), decay=0.999), None),
}


def _without_recorded_ratios(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` whose ``TrustRatioState`` fields are passed through, never written.

    An experiment, not an optimizer: the trust ratios are still computed and
    applied, but no longer outputs of the step, so the compiler may fuse each
    layer's ratio into that layer's update. Set against ``tx`` (kernels.py),
    this measures what recording the ratios for ``diagnostics`` costs.
    """
    recorded = lambda x: isinstance(x, optaxtra.TrustRatioState)

    def update_fn(updates, state, params=None):
        updates, new_state = tx.update(updates, state, params)
        keep = lambda new, old: old if recorded(new) else new
        return updates, jax.tree.map(keep, new_state, state, is_leaf=recorded)

    return optax.GradientTransformation(tx.init, update_fn)


# Benchmark-only forms, run when named (``--optimizers``), never by default: LAMB and LARS
# without recorded ratios (see ``_without_recorded_ratios``), optax's equivalents beside them.
EXPERIMENTS = {
    f"{name}_unrecorded": (
        lambda lr, name=name: _without_recorded_ratios(optaxtra.OPTIMIZERS[name](lr)),
        equivalents.OPTAX_EQUIVALENTS[name],
    )
    for name in ("lamb", "lars")
}

FULL_TREES = {
    "gpt2_8m": lambda: trees.gpt2(224),
    "gpt2_31m": lambda: trees.gpt2(448),
    "many_small": lambda: trees.many_small(2000),
    "few_large": lambda: trees.few_large(200),
    "resnet18": lambda: trees.resnet(64),
}
# GPT-2 small itself: at 124M params a step moves about 3.5 GB, long enough on a GPU for the
# kernels, not their launches, to set the time. Run by default only off the CPU.
ACCELERATOR_TREES = {"gpt2_124m": lambda: trees.gpt2(768, vocab=50257)}
QUICK_TREES = {
    "gpt2_tiny": lambda: trees.gpt2(32, layers=2, vocab=128, context=64),
    "many_small_tiny": lambda: trees.many_small(200, 8, 8),
    "few_large_tiny": lambda: trees.few_large(20, 8, 8, small_leaves=200),
    "resnet_tiny": lambda: trees.resnet(8, blocks=(1, 1), classes=10),
}
QUICK_OPTIMIZERS_ELSEWHERE = ("adam",)


def _factories(name: str):
    for table in (VARIANTS, EXPERIMENTS):
        if name in table:
            return table[name]
    return optaxtra.OPTIMIZERS[name], equivalents.OPTAX_EQUIVALENTS.get(name)


def _median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def _summary(timed: measure.Timed, state_bytes: int | None = None) -> dict[str, Any]:
    medians = [t * 1e3 for t in timed.medians()]
    out = {
        "median_ms": statistics.median(medians),
        "spread_ms": [min(medians), max(medians)],
        "mean_ms": statistics.median(t * 1e3 for t in timed.means()),
        "compile_s": timed.compile_s,
        "faults_mib": statistics.median(timed.faults) * 4096 / 2**20,
        "temp_mib": timed.temp_bytes / 2**20,
        "round_medians_ms": medians,
    }
    if state_bytes is not None:
        out["state_bytes"] = state_bytes
    return out


def bench_optimizer(name, params, grads, floors, settings) -> dict[str, Any]:
    """Times one optimizer, its optax equivalent and its floor side by side."""
    ours_factory, optax_factory = _factories(name)
    entry = equivalents.optaxtra_entry(ours_factory(LEARNING_RATE), params)
    ours_bytes = floor.tree_bytes(entry.state)
    loop = settings["loop"]
    ours = measure.compile_entry(name, entry.step, entry.params, entry.state, grads, loop=loop)

    dtypes = floor.slot_dtypes(params, entry.state)
    key = tuple(str(d) for d in dtypes)
    floor_params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
    floor_state = floor.floor_state(params, dtypes)
    if key not in floors:
        timed = measure.compile_entry("floor", floor.floor_step(len(dtypes), chained=False),
                                      floor_params, floor_state, grads, loop=loop)
        floors[key] = (timed.compiled, timed.compile_s)
    compiled, floor_compile = floors[key]
    base = measure.compile_entry("floor", None, floor_params, floor_state, grads,
                                 compiled=compiled, loop=loop)
    base.compile_s = floor_compile

    theirs, theirs_bytes = None, None
    if optax_factory is not None:
        other = equivalents.optax_entry(optax_factory(LEARNING_RATE), params, name)
        theirs_bytes = floor.tree_bytes(other.state) + other.state_bytes_extra
        theirs = measure.compile_entry("optax", other.step, other.params, other.state, grads,
                                       loop=loop)

    entries = [e for e in (base, ours, theirs) if e is not None]
    for index in range(settings["repeats"]):
        for e in measure.rotated(entries, index):
            warmup = settings["warmup"] if index == 0 else 2
            measure.time_round(e, grads, settings["steps"], warmup)

    ratios = {
        "floor": _median_ratio(ours.medians(), base.medians()),
        "floor_amortised": _median_ratio(ours.means(), base.means()),
        "compile_floor": ours.compile_s / base.compile_s,
        "optax": None, "optax_amortised": None, "compile_optax": None, "state_optax": None,
    }
    if theirs is not None:
        ratios.update(
            optax=_median_ratio(ours.medians(), theirs.medians()),
            optax_amortised=_median_ratio(ours.means(), theirs.means()),
            compile_optax=ours.compile_s / theirs.compile_s,
            state_optax=ours_bytes / theirs_bytes if theirs_bytes else None,
        )
    floor_summary = _summary(base)
    floor_summary["slots"] = len(dtypes)
    return {
        "optimizer": name,
        "optaxtra": _summary(ours, ours_bytes),
        "optax": None if theirs is None else _summary(theirs, theirs_bytes),
        "floor": floor_summary,
        "ratios": ratios,
    }


def bench_tree(shapes, names, settings, log, publish=lambda tree: None) -> dict[str, Any]:
    """Every optimizer of ``names`` on one tree; ``publish`` gets the tree's results after each row."""
    leaves, size = trees.count(shapes)
    params = jax.tree.map(jnp.asarray, trees.build(shapes, seed=0))
    grads = jax.tree.map(jnp.asarray, trees.build(shapes, seed=1))
    floors: dict = {}
    rows = []
    started = report.now()
    load_start = [round(x, 2) for x in os.getloadavg()]
    tree = {
        "leaves": leaves, "params": size, "params_bytes": floor.tree_bytes(params), "rows": rows,
        "started": started, "load_average_start": load_start,
    }
    for name in names:
        row = bench_optimizer(name, params, grads, floors, settings)
        r = row["ratios"]
        log(f"  {name:16s} {row['optaxtra']['median_ms']:9.2f} ms  x{r['floor']:.2f} floor  "
            f"x{r['optax'] or float('nan'):.2f} optax  compile {row['optaxtra']['compile_s']:.2f}s")
        rows.append(row)
        tree["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        publish(tree)
        gc.collect()
    tree["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return tree


def _merge_rows(previous: dict[str, Any], new: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """The previous trees with the rows run now put in place; each new row records its run."""
    merged = dict(previous)
    for tree_name, tree in new.items():
        run = {key: tree[key] for key in ("started", "load_average_start", "load_average_end")}
        rows = [dict(row, run=run) for row in tree["rows"]]
        if tree_name not in previous:
            merged[tree_name] = dict(tree, rows=rows)
            continue
        fresh = {row["optimizer"]: row for row in rows}
        kept = [fresh.pop(row["optimizer"], row) for row in previous[tree_name]["rows"]]
        merged[tree_name] = dict(previous[tree_name], rows=kept + list(fresh.values()))
    return {name: merged[name] for name in order if name in merged}


def _section(backend: str, loop: int = 1) -> str:
    """The README section a run's results go to (``_suffix`` names its JSON the same way).

    CPU and accelerator tables are kept apart, and so are per-call and device-loop ones.
    """
    return "results" + _suffix(backend, loop).replace("_", "-")


def _suffix(backend: str, loop: int) -> str:
    """``""`` for per-call runs on the CPU, ``"_gpu"`` on a GPU; ``"_loop"`` added for device loops."""
    return ("" if backend == "cpu" else f"_{backend}") + ("_loop" if loop > 1 else "")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny trees, a smoke test")
    parser.add_argument("--trees", help="comma-separated tree names (default: all; gpt2_124m is "
                        "run by default only off the CPU)")
    parser.add_argument("--optimizers", help="comma-separated optimizer names (default: all)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 5; quick 1)")
    parser.add_argument("--steps", type=int, help="timed steps per round (default 30; quick 10)")
    parser.add_argument("--warmup", type=int, help="untimed steps before the first round (default 5; quick 2)")
    parser.add_argument("--loop", type=int, help="steps per call, run in a device loop so that "
                        "host dispatch is not timed (default 1 on CPU, 10 elsewhere)")
    parser.add_argument("--out", type=Path, help="markdown file to write the results into "
                        "(default benchmarks/README.md; none in quick mode)")
    parser.add_argument("--json", type=Path, help="JSON results (default benchmarks/results.json, "
                        "results_gpu.json on a GPU; none in quick mode)")
    parser.add_argument("--merge", action="store_true", help="keep what the existing JSON results "
                        "hold and replace only the rows (tree, optimizer) run now; each replaced "
                        "row records when it was run")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the "
                        "JSON results")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark (or ``--render``s it) and returns what it wrote."""
    args = _parser().parse_args(argv)
    backend = jax.default_backend()
    loop = args.loop or (1 if backend == "cpu" else 10)
    if args.render:
        json_in = args.json or HERE / f"results{_suffix(backend, loop)}.json"
        results = json.loads(Path(json_in).read_text())
        results["many_vs_few"] = report.many_vs_few(results["trees"], "many_small", "few_large")
        ran_on = results["machine"]["device"].split(":")[0]
        section = _section(ran_on, results["settings"].get("loop", 1))
        report.write(results, args.out or HERE / "README.md", json_in, section)
        return results

    tree_table = QUICK_TREES if args.quick else {**FULL_TREES, **ACCELERATOR_TREES}
    default_trees = list(QUICK_TREES if args.quick else FULL_TREES)
    if backend != "cpu" and not args.quick:
        default_trees = list(ACCELERATOR_TREES) + default_trees
    tree_names = args.trees.split(",") if args.trees else default_trees
    all_names = list(optaxtra.OPTIMIZERS) + list(VARIANTS)
    names = args.optimizers.split(",") if args.optimizers else all_names
    settings = {
        "quick": args.quick,
        "repeats": args.repeats or (1 if args.quick else 5),
        "steps": args.steps or (10 if args.quick else 30),
        "warmup": args.warmup or (2 if args.quick else 5),
        "loop": loop,
    }
    out = args.out if args.out or args.quick else HERE / "README.md"
    json_out = args.json if args.json or args.quick else HERE / f"results{_suffix(backend, loop)}.json"

    log = lambda text: print(text, flush=True)
    results: dict[str, Any] = {"machine": report.machine(), "settings": settings, "trees": {}}
    previous = None
    if args.merge and json_out is not None and Path(json_out).exists():
        previous = json.loads(Path(json_out).read_text())
        results["merged_from"] = previous["machine"]["date"]
    prefix = "_tiny" if args.quick else ""
    written: dict[str, Any] = {}

    def save(done: dict[str, Any]) -> str:
        """Writes what has been measured so far (merged into ``previous``): a run cut short keeps it."""
        merged = done if previous is None else _merge_rows(previous["trees"], done, list(tree_table))
        machine = dict(results["machine"], load_average_end=[round(x, 2) for x in os.getloadavg()])
        written.update(
            results, machine=machine, trees=merged,
            many_vs_few=report.many_vs_few(merged, f"many_small{prefix}", f"few_large{prefix}"),
        )
        return report.write(written, out, json_out, _section(backend, loop))

    for tree_name in tree_names:
        shapes = tree_table[tree_name]()
        log(f"{tree_name}: {trees.count(shapes)[0]} leaves, {trees.count(shapes)[1]:,} params")
        tree_names_here = names
        if args.quick and not tree_name.startswith("gpt2") and not args.optimizers:
            tree_names_here = [n for n in names if n in QUICK_OPTIMIZERS_ELSEWHERE]
        publish = lambda tree, name=tree_name: save({**results["trees"], name: tree})
        results["trees"][tree_name] = bench_tree(shapes, tree_names_here, settings, log, publish)
    text = save(results["trees"])
    if out is None:
        print(text)
    return written


if __name__ == "__main__":
    main()
