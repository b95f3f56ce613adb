"""The benchmark runs end to end in quick mode and writes its tables; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import optax

import optaxtra

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench  # noqa: E402
import floor  # noqa: E402
import kernels  # noqa: E402
import measure  # noqa: E402
import trees  # noqa: E402


QUIET_XLA_FLAG = "--xla_cpu_enable_fast_math=false"  # XLA:CPU's default: changes nothing


def test_quick_benchmark_writes_tables(tmp_path):
    out, results = tmp_path / "README.md", tmp_path / "results.json"
    out.write_text("# Notes kept around the results\n\n<!-- results:start -->\nold\n<!-- results:end -->\ntail\n")
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick",
         "--trees", "gpt2_tiny,many_small_tiny,few_large_tiny",
         "--optimizers", "adam,lookahead_adam", "--out", str(out), "--json", str(results)],
        check=True, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "MALLOC_"))}
        | {"XLA_FLAGS": QUIET_XLA_FLAG, "MALLOC_ARENA_MAX": "4"},
    )
    text = out.read_text()
    # A run records the flags it ran under, in the JSON and in the header.
    assert f"`XLA_FLAGS={QUIET_XLA_FLAG}`" in text and "`MALLOC_ARENA_MAX=4`" in text
    assert text.startswith("# Notes kept around the results") and text.endswith("tail\n")
    assert "old" not in text
    assert "| optimizer | step ms" in text and "| lookahead_adam |" in text
    assert "Many small leaves vs few large ones" in text
    data = json.loads(results.read_text())
    rows = data["trees"]["gpt2_tiny"]["rows"]
    assert [row["optimizer"] for row in rows] == ["adam", "lookahead_adam"]
    for row in rows:
        assert row["optaxtra"]["median_ms"] > 0 and row["floor"]["median_ms"] > 0
        assert row["optax"] is not None and row["ratios"]["optax"] > 0
    assert data["machine"]["jax"] == jax.__version__
    environment = data["machine"]["environment"]
    assert environment["XLA_FLAGS"] == QUIET_XLA_FLAG and environment["MALLOC_ARENA_MAX"] == "4"


# One optimizer of each kind the timing loop handles differently: with and without an optax
# equivalent, Lookahead (optax's takes LookaheadParams), a trust ratio, a partition (Muon), a
# wrapper keeping its own point (Schedule-Free), an extra row (SWATS). That every optimizer runs
# in a device loop is tests/test_donation.py::test_steps_in_a_donated_device_loop_match_steps_one_by_one.
LOOP_KINDS = "adam,lookahead_adam,lamb,stable_adamw,muon,schedule_free_adamw,swats"


def test_device_loop_mode_runs_each_kind_of_optimizer_and_times_per_step(tmp_path):
    """The mode used on a GPU (steps in a device loop) also runs on CPU; here it is only run."""
    results = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--trees", "gpt2_tiny",
         "--loop", "3", "--steps", "2", "--optimizers", LOOP_KINDS, "--json", str(results)],
        check=True, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    data = json.loads(results.read_text())
    assert data["settings"]["loop"] == 3
    rows = data["trees"]["gpt2_tiny"]["rows"]
    assert {row["optimizer"] for row in rows} == set(LOOP_KINDS.split(","))
    for row in rows:
        assert len(row["optaxtra"]["round_medians_ms"]) == 1 and row["optaxtra"]["median_ms"] > 0


def test_each_row_is_published_as_soon_as_it_is_measured():
    snapshots = []
    settings = {"quick": True, "repeats": 1, "steps": 2, "warmup": 1, "loop": 1}
    shapes = trees.gpt2(8, layers=1, vocab=16, context=8)
    publish = lambda partial: snapshots.append([r["optimizer"] for r in partial["rows"]])
    with jax.numpy_dtype_promotion("standard"):  # optax's adam mixes int and float scalars
        tree = bench.bench_tree(shapes, ["sgd", "adam"], settings, lambda text: None, publish)
    assert snapshots == [["sgd"], ["sgd", "adam"]]
    assert [row["optimizer"] for row in tree["rows"]] == ["sgd", "adam"]


def test_in_device_loop_runs_the_step_that_many_times():
    step = lambda p, s, g: (p - g, s + 1)
    looped = jax.jit(measure.in_device_loop(step, 4))
    p, s = looped(jnp.zeros(3), jnp.int32(0), jnp.ones(3))
    assert int(s) == 4 and p.tolist() == [-4.0, -4.0, -4.0]


def test_floor_moves_the_optimizer_state_bytes():
    params = jax.tree.map(jnp.asarray, trees.build(trees.gpt2(16, layers=1, vocab=8, context=8)))
    state = (jnp.zeros([], jnp.int32), params, jax.tree.map(lambda p: p.astype(jnp.bfloat16), params))
    dtypes = floor.slot_dtypes(params, state)
    assert sorted(str(d) for d in dtypes) == ["bfloat16", "float32"]
    slots = floor.floor_state(params, dtypes)
    assert floor.tree_bytes(slots) == floor.tree_bytes(state) - 4
    new_params, new_slots = jax.jit(floor.floor_step(len(dtypes), chained=False))(params, slots, params)
    assert jax.tree.structure(new_slots) == jax.tree.structure(slots)
    assert all(a.dtype == b.dtype for a, b in zip(jax.tree.leaves(new_slots), jax.tree.leaves(slots)))


def test_trees_have_the_documented_sizes():
    assert trees.count(trees.gpt2(224)) == (146, 7_948_416)
    assert trees.count(trees.many_small(2000))[0] == 2000
    assert trees.count(trees.many_small(2000))[1] == trees.count(trees.few_large(200))[1]
    assert trees.count(trees.resnet(64)) == (62, 11_689_512)


def test_cpu_gpu_and_device_loop_results_go_to_separate_sections_and_files():
    assert (bench._section("cpu"), bench._suffix("cpu", 1)) == ("results", "")
    assert (bench._section("cpu", 3), bench._suffix("cpu", 3)) == ("results-loop", "_loop")
    assert (bench._section("gpu", 1), bench._suffix("gpu", 1)) == ("results-gpu", "_gpu")
    assert (bench._section("gpu", 10), bench._suffix("gpu", 10)) == ("results-gpu-loop", "_gpu_loop")


def test_kernel_census_counts_the_entry_operations_and_aliased_outputs():
    def step(params, state, grads):
        return params - grads, (state[0] + 1, state[1] * 2.0)

    args = (jnp.zeros(8), (jnp.int32(0), jnp.ones(8)), jnp.ones(8))
    text = jax.jit(step, donate_argnums=(0, 1)).lower(*args).compile().as_text()
    counts = kernels.census(text)
    assert counts["aliased"] == 3
    assert counts["launches"] == sum(v for k, v in counts.items() if k not in ("launches", "aliased"))
    assert counts["launches"] >= 1 and "parameter" not in counts and "tuple" not in counts
    # An input the step does not read is pruned, so it cannot be donated: its output (here a
    # constant, like a state that only records a value) is a fresh buffer on every call.
    unused = lambda params, state, grads: (params - grads, (jnp.int32(7), state[1] * 2.0))
    pruned = jax.jit(unused, donate_argnums=(0, 1)).lower(*args).compile().as_text()
    assert kernels.census(pruned)["aliased"] < 3


def test_rounds_rotate_and_calls_are_timed_for_every_entry():
    assert [measure.rotated(["a", "b", "c"], i) for i in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    step = jax.jit(lambda p, s, g: (p - g, s + 1), donate_argnums=(0, 1))
    compiled = {"x": step, "y": step}
    buffers = {name: (jnp.zeros(3), jnp.int32(0)) for name in compiled}
    walls, dispatches = measure.time_calls_in_rounds(compiled, buffers, jnp.ones(3), calls=2, rounds=3)
    assert all(len(walls[n]) == len(dispatches[n]) == 3 for n in compiled)
    # warm-up round + 3 rounds, each 2 waited-on and 2 back-to-back calls
    assert all(int(buffers[n][1]) == 16 for n in compiled)


def test_unrecorded_ratio_experiments_apply_the_same_updates_and_keep_the_old_ratios():
    """The experiments measure LAMB and LARS themselves, less only the writing of their ratios."""
    params = {"w": jnp.arange(1.0, 7.0).reshape(2, 3), "b": jnp.array([0.5, -1.0])}
    grads = jax.tree.map(lambda p: jnp.cos(p) + 0.1, params)
    assert not set(bench.EXPERIMENTS) & set(bench.VARIANTS) and "lamb_unrecorded" in bench.EXPERIMENTS
    for name in ("lamb", "lars"):
        plain = optaxtra.OPTIMIZERS[name](1e-2)
        experiment, optax_factory = bench._factories(f"{name}_unrecorded")
        experiment = experiment(1e-2)
        assert optax_factory is bench.equivalents.OPTAX_EQUIVALENTS[name]
        state, old = plain.init(params), experiment.init(params)
        updates, state = plain.update(grads, state, params)
        same, old_after = experiment.update(grads, old, params)
        chex.assert_trees_all_equal(same, updates)
        ratios = lambda s: optax.tree_utils.tree_get(s, "ratios")
        assert ratios(old_after) is ratios(old)
        assert not all(float(r) == 1.0 for r in jax.tree.leaves(ratios(state)))


def test_leaf_overhead_adam_forms_are_one_adam():
    """The two forms ``leaf_overhead.py`` times compute the same step, and it is Adam's."""
    import leaf_overhead

    shapes = [(3, 5), (7,)]
    grads = [jax.random.normal(jax.random.PRNGKey(i), s) for i, s in enumerate(shapes)]
    params = [jnp.ones(s) for s in shapes]
    opt = optax.adam(leaf_overhead.LR, leaf_overhead.B1, leaf_overhead.B2, leaf_overhead.EPS)
    reference = (params, opt.init(params))
    forms = {r: (params, [jnp.zeros(s) for s in shapes], [jnp.zeros(s) for s in shapes], jnp.float32(1))
             for r in (False, True)}
    for _ in range(3):
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with Python floats
            updates, state = opt.update(grads, reference[1], reference[0])
        reference = (optax.apply_updates(reference[0], updates), state)
        for recompute, (p, m, v, t) in forms.items():
            forms[recompute] = jax.jit(leaf_overhead.adam_step(recompute))(p, m, v, grads, t)
    for p, m, v, t in forms.values():
        assert float(t) == 4
        chex.assert_trees_all_close(p, reference[0], rtol=1e-6)
        chex.assert_trees_all_close((m, v), (reference[1][0].mu, reference[1][0].nu), rtol=1e-6)
    chex.assert_trees_all_close(forms[False], forms[True], rtol=1e-6)
