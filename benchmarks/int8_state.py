"""Block-wise 8-bit optimizer state: memory, step time and training quality.

    python benchmarks/int8_state.py memory            # state bytes per param, from the shapes alone
    python benchmarks/int8_state.py speed [--repeats 7] [--tree gpt2_8m]
    python benchmarks/int8_state.py quality [--seeds 5]

``memory`` counts the bytes of ``tx.init(params)`` (traced abstractly) per
param for each optimizer of ``OPTIMIZERS`` with float32, bfloat16 and 8-bit
state on the benchmark trees (``benchmarks/trees.py``). ``speed`` times a
jitted step with float32 and with 8-bit state in the same process (median of
``--repeats`` interleaved timings of 10 steps each) and prints their ratio. ``quality``
trains ``charlm`` and ``mnist1d`` (``optaxtra.compare``'s tasks, at their
default steps and batch size) with adamw in float32 and with 8-bit moments,
all seeds of a side in one vmapped program, and prints the paired difference
of the final validation loss with its 95% t interval
(``optaxtra.compare.cli._stats``). ``mnist1d``'s largest leaf has 1,875
params, under bitsandbytes' threshold of 4,096: there every leaf is
quantized (``min_size=0``), so that the comparison says something.

The factories below also serve ``optaxtra compare``, e.g.
``--optimizers adamw,benchmarks/int8_state.py:adamw_int8``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optaxtra  # noqa: E402
from benchmarks.trees import TREES, build, count  # noqa: E402

EIGHT_BIT = jnp.int8


def adamw_int8(learning_rate: Any) -> optax.GradientTransformation:
    """``optaxtra.adamw`` with both moments block-wise in 8 bits (paper defaults)."""
    return optaxtra.adamw(learning_rate, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT)


def adamw_int8_all_leaves(learning_rate: Any) -> optax.GradientTransformation:
    """As ``adamw_int8``, with every leaf quantized (``min_size=0``), for small models."""
    request = optaxtra.blockwise_int8(min_size=0)
    return optaxtra.adamw(learning_rate, mu_dtype=request, nu_dtype=request)


# name -> state storage -> optimizer. Add a row for another optimizer (or storage) here.
STORAGES = {"float32": None, "bfloat16": jnp.bfloat16, "8-bit": EIGHT_BIT}
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "adam": lambda s: optaxtra.adam(1e-3, mu_dtype=s, nu_dtype=s),
    "adamw": lambda s: optaxtra.adamw(1e-3, mu_dtype=s, nu_dtype=s),
    "radam": lambda s: optaxtra.radam(1e-3, mu_dtype=s, nu_dtype=s),
    "lamb": lambda s: optaxtra.lamb(1e-3, mu_dtype=s, nu_dtype=s),
    "ranger": lambda s: optaxtra.ranger(1e-3, mu_dtype=s, nu_dtype=s),
}
MEMORY_TREES = ("gpt2_8m", "gpt2_31m", "resnet18", "few_large", "many_small")


def machine() -> str:
    load = [round(x, 2) for x in __import__("os").getloadavg()]
    return (
        f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, load average {load}; "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
    )


def abstract_params(tree: str) -> Any:
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s, jnp.float32), TREES[tree](),
                        is_leaf=lambda x: isinstance(x, tuple))


def state_bytes(tx: optax.GradientTransformation, params: Any) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(jax.eval_shape(tx.init, params)))


def memory() -> None:
    print(f"# state bytes per param; {machine()}")
    header = "| optimizer | state | " + " | ".join(MEMORY_TREES) + " |"
    print(header)
    print("|" + "---|" * (2 + len(MEMORY_TREES)))
    sizes = {tree: count(TREES[tree]())[1] for tree in MEMORY_TREES}
    params = {tree: abstract_params(tree) for tree in MEMORY_TREES}
    for name, make in OPTIMIZERS.items():
        for storage, dtype in STORAGES.items():
            cells = [f"{state_bytes(make(dtype), params[tree]) / sizes[tree]:.3f}" for tree in MEMORY_TREES]
            print(f"| {name} | {storage} | " + " | ".join(cells) + " |")
    print("params: " + ", ".join(f"{tree} {sizes[tree]:,}" for tree in MEMORY_TREES))


def speed(tree: str, repeats: int) -> None:
    params = jax.tree.map(jnp.asarray, build(TREES[tree]()))
    grads = jax.tree.map(lambda p: 0.1 * p + 1e-3, params)
    print(f"# step time on {tree}, median of {repeats} x 10 steps; {machine()}")
    print("| optimizer | float32 ms | 8-bit ms | ratio |")
    print("|---|---|---|---|")
    for name, make in OPTIMIZERS.items():
        runs = {}
        for storage in ("float32", "8-bit"):
            tx = make(STORAGES[storage])

            @jax.jit
            def ten_steps(params, state, tx=tx):
                def body(carry, _):
                    params, state = carry
                    updates, state = tx.update(grads, state, params)
                    return (optax.apply_updates(params, updates), state), None

                return jax.lax.scan(body, (params, state), None, length=10)[0]

            runs[storage] = [ten_steps, jax.block_until_ready(ten_steps(params, tx.init(params)))]
        samples = {storage: [] for storage in runs}
        for _ in range(repeats):  # interleaved, so that a change of load hits both
            for storage, run in runs.items():
                started = time.perf_counter()
                run[1] = jax.block_until_ready(run[0](*run[1]))
                samples[storage].append((time.perf_counter() - started) / 10 * 1e3)
        timings = {storage: statistics.median(values) for storage, values in samples.items()}
        ratio = timings["8-bit"] / timings["float32"]
        print(f"| {name} | {timings['float32']:.2f} | {timings['8-bit']:.2f} | {ratio:.2f} |", flush=True)


def quality(seeds: int) -> None:
    from optaxtra.compare import charlm_task, mnist1d_task
    from optaxtra.compare.cli._engine import initial_params, run_sweep
    from optaxtra.compare.cli._runner import optimizer_sweep
    from optaxtra.compare.cli._stats import compare

    print(f"# adamw, float32 vs 8-bit moments, {seeds} seeds, paired by seed; {machine()}")
    print("| task | lr | 8-bit | float32 val loss | 8-bit val loss | mean difference (8-bit - float32) | 95% t interval | seed spread (sd of float32) | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [
        (charlm_task(), 1e-3, "defaults", adamw_int8),
        (mnist1d_task(), 3e-3, "min_size=0", adamw_int8_all_leaves),
    ]
    seed_list = list(range(seeds))
    for task, lr, label, eight_bit in cases:
        initial = initial_params(task, seed_list)
        finals = {}
        for side, factory in (("float32", optaxtra.adamw), ("8-bit", eight_bit)):
            result = run_sweep(
                task, optimizer_sweep(side, factory, [lr]), seed_list,
                steps=task.steps, batch_size=task.batch_size, evaluations=4, initial=initial,
            )
            finals[side] = result.validation_loss[:, -1]
            print(f"  {task.name} {side}: compile {result.compile_seconds:.1f} s, run {result.run_seconds:.1f} s",
                  file=sys.stderr)
        c = compare(finals["8-bit"], finals["float32"], higher_is_better=False)
        verdict = {"tie": "not distinguishable", "a": "8-bit better", "b": "float32 better", "few": "too few seeds"}
        print(
            f"| {task.name} | {lr:g} | {label} | {np.mean(finals['float32']):.4f} | {np.mean(finals['8-bit']):.4f} | "
            f"{c.mean:+.4f} | [{c.low:+.4f}, {c.high:+.4f}] | {np.std(finals['float32'], ddof=1):.4f} | "
            f"{verdict[c.verdict]} (p = {c.p_value:.2f}) |"
        )
        print("  per seed: " + ", ".join(f"{a:.4f}/{b:.4f}" for a, b in zip(finals["float32"], finals["8-bit"])),
              file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("memory", "speed", "quality"))
    parser.add_argument("--tree", default="gpt2_8m", choices=sorted(TREES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.what == "memory":
        memory()
    elif args.what == "speed":
        speed(args.tree, args.repeats)
    else:
        quality(args.seeds)


if __name__ == "__main__":
    main()
