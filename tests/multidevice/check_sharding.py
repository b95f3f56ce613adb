"""optaxtra on a mesh of 8 devices: sharded state, sharded steps, shard_map, pmap.

Run by ``tests/test_multidevice.py`` in its own process, with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before JAX starts;
the main test run does not collect it (its name does not match ``test_*.py``).

"Equal to the single-device run" is checked in float32 ulps of each leaf's
largest value, against the single-device run executed op by op. Compiled code
rounds a little differently from op-by-op code (fused multiply-adds), and a sum
over a sharded layer (the trust ratio's norms) or over the whole model (SWATS's
projections) adds the shards' partial sums in another order: measured, params
agree within 1 ulp and states within 3, except SWATS's learning-rate estimate
(about 50; see ``ULPS``). A norm taken per shard instead would be off by about
sqrt(8), some 10**6 ulps.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

import optaxtra
from tests._ecosystem_cases import CASES, NAMES

LEARNING_RATE = 1e-2
STEPS = 6
# FSDP-style: the matrix split over the data axis along its first dimension, the
# vector replicated. P("data"), not the equivalent P("data", None): jit returns
# the former, and would compile again for the latter.
SPECS = {"kernel": P("data"), "bias": P()}


@functools.cache
def mesh() -> jax.sharding.Mesh:
    """Built on first use, so that importing this file (the main run collects its
    doctests, on one device) needs no 8 devices."""
    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))


def shardings(specs: dict[str, P] = SPECS) -> dict[str, NamedSharding]:
    return {key: NamedSharding(mesh(), spec) for key, spec in specs.items()}

# The most a result may move, in ulps of each leaf's largest value. Measured: at
# most 3, except SWATS's learning-rate estimate at about 50: a ratio of two dot
# products over all params, one of which cancels, so its rounding is amplified.
ULPS = {"default": 8, "swats": 128}

_rng = np.random.default_rng(0)
PARAMS = {
    "kernel": jnp.asarray(0.3 * _rng.normal(size=(64, 16)), jnp.float32),
    "bias": jnp.asarray(0.3 * _rng.normal(size=(16,)), jnp.float32),
}
GRADS = [
    jax.tree.map(lambda p: jnp.asarray(_rng.normal(size=p.shape), jnp.float32), PARAMS) for _ in range(STEPS)
]


@functools.cache
def optimizer(name: str) -> optax.GradientTransformation:
    """One instance per name, so that ``init_sharded``'s compiled ``init`` is reused across tests."""
    return CASES[name](LEARNING_RATE)


def test_eight_devices():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


def ulps(expected: Any, actual: Any) -> float:
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    scale = np.abs(expected).max(initial=0.0)
    difference = np.abs(expected - actual).max(initial=0.0)
    return float(difference / (np.finfo(np.float32).eps * scale)) if scale else float(difference)


def assert_within_ulps(expected: Any, actual: Any, limit: float) -> None:
    assert jax.tree.structure(expected) == jax.tree.structure(actual)
    for (path, e), a in zip(jax.tree_util.tree_leaves_with_path(expected), jax.tree.leaves(actual)):
        if jnp.issubdtype(jnp.asarray(e).dtype, jnp.inexact):
            assert ulps(e, a) <= limit, f"{jax.tree_util.keystr(path)}: {ulps(e, a):.1f} ulps > {limit}"
        else:
            np.testing.assert_array_equal(e, a, err_msg=jax.tree_util.keystr(path))


def param_like_leaves(state: Any) -> list[tuple[str, Any, str]]:
    """``(path, leaf, param key)`` for each state leaf laid out like a param."""
    found = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        for key, param in PARAMS.items():
            if leaf.shape == param.shape and jax.tree_util.keystr(path).endswith(f"['{key}']"):
                found.append((jax.tree_util.keystr(path), leaf, key))
    return found


@pytest.mark.parametrize("name", NAMES)
def test_state_takes_the_params_sharding(name):
    tx = optimizer(name)
    params = jax.device_put(PARAMS, shardings())
    for state in (tx.init(params), optaxtra.init_sharded(tx, params)):
        for path, leaf, key in param_like_leaves(state):
            assert leaf.sharding.is_equivalent_to(shardings()[key], leaf.ndim), (path, leaf.sharding)
    # Compiled, nothing lands on a single device: counts and scalars are replicated over the mesh.
    compiled = optaxtra.init_sharded(tx, params)
    assert all(len(leaf.sharding.device_set) == 8 for leaf in jax.tree.leaves(compiled))
    # The same layout is available abstractly, e.g. for an orbax restore target.
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=p.sharding), params)
    expected = jax.tree.map(lambda leaf: leaf.sharding, compiled)
    assert all(
        jax.tree.leaves(
            jax.tree.map(
                lambda s, leaf: s.is_equivalent_to(leaf.sharding, leaf.ndim),
                optaxtra.state_sharding(tx, abstract), compiled,
            )
        )
    ), expected


def optimizer_step(tx: optax.GradientTransformation):
    def step(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


@pytest.mark.parametrize("name", NAMES)
def test_sharded_step_equals_single_device(name):
    tx = optimizer(name)
    limit = ULPS.get(name, ULPS["default"])

    single_params, single_state = PARAMS, tx.init(PARAMS)
    params = jax.device_put(PARAMS, shardings())
    state = optaxtra.init_sharded(tx, params)
    sharded_step = jax.jit(optimizer_step(tx))
    for grads in GRADS:
        with jax.disable_jit():  # the single-device reference, op by op
            single_params, single_state = optimizer_step(tx)(grads, single_state, single_params)
        params, state = sharded_step(jax.device_put(grads, shardings()), state, params)

    assert_within_ulps(single_params, params, limit)
    assert_within_ulps(single_state, state, limit)
    # Diagnostics (trust ratios, learning-rate estimates) are global, not per shard.
    assert_within_ulps(optaxtra.diagnostics(single_state), optaxtra.diagnostics(state), limit)
    for path, leaf, key in param_like_leaves((params, state)):  # the layout survives the steps
        assert leaf.sharding.is_equivalent_to(shardings()[key], leaf.ndim), (path, leaf.sharding)
    assert sharded_step._cache_size() == 1


def test_8bit_state_blocks_stay_in_their_shard():
    """Block-wise 8-bit moments: codes laid out like the kernel, each device's absmax for its own blocks.

    The kernel's shard is 8 rows of 16, two blocks of 64; the rule is
    ``optaxtra._quantization.absmax_sharding``.
    """
    eight_bit = optaxtra.blockwise_int8(block_size=64, min_size=0)
    tx = optaxtra.adamw(LEARNING_RATE, mu_dtype=eight_bit, nu_dtype=eight_bit)
    params = jax.device_put(PARAMS, shardings())
    state = optaxtra.init_sharded(tx, params)

    def check_layout(adam):
        for q in (adam.mu["kernel"], adam.nu["kernel"]):
            assert q.codes.sharding.is_equivalent_to(shardings()["kernel"], 2), q.codes.sharding
            by_device = {shard.device: shard.index[0] for shard in q.absmax.addressable_shards}
            for shard in q.codes.addressable_shards:
                rows = shard.index[0]
                blocks = slice(rows.start * 16 // 64, rows.stop * 16 // 64)
                assert by_device[shard.device] == blocks, (shard.device, rows, by_device[shard.device])
        assert len(adam.mu["bias"].absmax.sharding.device_set) == 8  # replicated, one block

    check_layout(state[0])
    step, single_step = jax.jit(optimizer_step(tx)), jax.jit(optimizer_step(tx))
    single_params, single_state = PARAMS, tx.init(PARAMS)
    for grads in GRADS:
        single_params, single_state = single_step(grads, single_state, single_params)
        params, state = step(jax.device_put(grads, shardings()), state, params)
    check_layout(state[0])
    assert_within_ulps(single_params, params, ULPS["default"])
    assert_within_ulps(single_state, state, ULPS["default"])  # the codes equal, absmax within ulps
    assert step._cache_size() == 1


# shard_map and pmap: each device sees only its slice of a layer, so the trust
# ratio's norms need the axis name to be summed across devices.

TRUST_RATIO_OPTIONS = {
    "lamb": {},
    "eps": {"eps": 0.5},
    "max_weight_norm": {"max_weight_norm": 1.0},
    "lars_separate_decay": {"trust_coefficient": 1e-3, "weight_decay": 0.1, "separate_norms": True},
}


def trust_ratio_by_shard_map(options: dict[str, Any], specs: dict[str, P], check_vma: bool = True):
    tx = optaxtra.trust_ratio(axis_name="data", **options)

    def update(updates, params):
        scaled, state = tx.update(updates, tx.init(params), params)
        return scaled, state.ratios

    ratio_specs = {key: P() for key in specs}
    return jax.jit(
        jax.shard_map(
            update, mesh=mesh(), in_specs=(specs, specs), out_specs=(specs, ratio_specs), check_vma=check_vma
        )
    )


@pytest.mark.parametrize("option", sorted(TRUST_RATIO_OPTIONS))
def test_trust_ratio_axis_name_under_shard_map(option):
    """The kernel split over the devices, the bias replicated on each."""
    options = TRUST_RATIO_OPTIONS[option]
    reference = optaxtra.trust_ratio(**options)
    expected, expected_state = reference.update(GRADS[0], reference.init(PARAMS), PARAMS)
    scaled, ratios = trust_ratio_by_shard_map(options, SPECS)(GRADS[0], PARAMS)
    assert_within_ulps(expected_state.ratios, ratios, ULPS["default"])
    assert_within_ulps(expected, scaled, ULPS["default"])


def test_trust_ratio_without_axis_name_is_per_shard():
    """The control: without the axis name each device sees only its slice's norms."""
    tx = optaxtra.trust_ratio()

    def update(updates, params):
        return tx.update(updates, tx.init(params), params)[1].ratios["kernel"][None]

    mapped = jax.shard_map(update, mesh=mesh(), in_specs=(SPECS, SPECS), out_specs=P("data"))
    per_shard = mapped(GRADS[0], PARAMS)
    reference = optaxtra.trust_ratio()
    expected = float(reference.update(GRADS[0], reference.init(PARAMS), PARAMS)[1].ratios["kernel"])
    assert not np.allclose(per_shard, expected, rtol=1e-3)


SPLIT_EVERYWHERE = {"kernel": P("data"), "bias": P("data")}


def test_trust_ratio_axis_name_without_vma_tracking():
    """``check_vma=False`` does not record what is split: every layer is taken to be split."""
    options = TRUST_RATIO_OPTIONS["eps"]
    reference = optaxtra.trust_ratio(**options)
    expected, expected_state = reference.update(GRADS[0], reference.init(PARAMS), PARAMS)
    scaled, ratios = trust_ratio_by_shard_map(options, SPLIT_EVERYWHERE, check_vma=False)(GRADS[0], PARAMS)
    assert_within_ulps(expected_state.ratios, ratios, ULPS["default"])
    assert_within_ulps(expected, scaled, ULPS["default"])


def test_trust_ratio_axis_name_under_pmap():
    """Model parallelism with pmap: each device holds one slice of both layers."""
    tx = optaxtra.trust_ratio(axis_name="data", eps=0.5)
    split = lambda tree: jax.tree.map(lambda x: x.reshape(8, -1, *x.shape[1:]), tree)
    scaled, ratios = jax.pmap(
        lambda u, p: (lambda out, state: (out, state.ratios))(*tx.update(u, tx.init(p), p)), axis_name="data"
    )(split(GRADS[0]), split(PARAMS))
    reference = optaxtra.trust_ratio(eps=0.5)
    expected, expected_state = reference.update(GRADS[0], reference.init(PARAMS), PARAMS)
    for device in range(8):
        assert_within_ulps(expected_state.ratios, jax.tree.map(lambda r: r[device], ratios), ULPS["default"])
    assert_within_ulps(expected, jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), scaled), ULPS["default"])


LAYERWISE = {
    "lamb": lambda **kw: optaxtra.lamb(LEARNING_RATE, weight_decay=1e-2, **kw),
    "ralamb": lambda **kw: optaxtra.ralamb(LEARNING_RATE, weight_decay=1e-2, **kw),
    "lars": lambda **kw: optaxtra.lars(LEARNING_RATE, weight_decay=1e-2, trust_coefficient=0.02, **kw),
}


@pytest.mark.parametrize("name", list(LAYERWISE))
def test_layerwise_model_parallel_under_shard_map(name):
    """LAMB, Ralamb and LARS with ``axis_name`` train split layers like the alias the whole ones."""
    chain = LAYERWISE[name](axis_name="data")
    state_specs = jax.tree.map(
        lambda leaf: P("data") if leaf.ndim == 2 else P(), jax.eval_shape(chain.init, PARAMS)
    )
    run = jax.jit(
        jax.shard_map(
            lambda g, s, p: optimizer_step(chain)(g, s, p), mesh=mesh(),
            in_specs=(SPECS, state_specs, SPECS), out_specs=(SPECS, state_specs),
        )
    )
    reference = LAYERWISE[name]()
    params, state = PARAMS, chain.init(PARAMS)
    expected_params, expected_state = PARAMS, reference.init(PARAMS)
    reference_step = jax.jit(optimizer_step(reference))
    for grads in GRADS:
        params, state = run(grads, state, params)
        expected_params, expected_state = reference_step(grads, expected_state, expected_params)
    assert_within_ulps(expected_params, params, ULPS["default"])
    assert_within_ulps(optaxtra.diagnostics(expected_state), optaxtra.diagnostics(state), ULPS["default"])


# Data parallelism with pmap: replicated params, a slice of the batch per device,
# gradients averaged with pmean before the optimizer.

INPUTS = jnp.asarray(_rng.normal(size=(64, 64)), jnp.float32)
TARGETS = jnp.asarray(_rng.normal(size=(64, 16)), jnp.float32)


def regression_loss(params, inputs, targets):
    return jnp.mean((inputs @ params["kernel"] + params["bias"][None] - targets) ** 2)


# Optimizers with more than element-wise maths: Lookahead's cond, the trust
# ratio, SWATS's global projections and switch (the sharded-jit test above
# covers every optimizer).
DATA_PARALLEL = ["ranger", "lamb", "swats"]


@pytest.mark.parametrize("name", DATA_PARALLEL)
def test_pmap_data_parallel_matches_single_device(name):
    tx = optimizer(name)

    def data_parallel_step(params, state, inputs, targets):
        grads = jax.lax.pmean(jax.grad(regression_loss)(params, inputs, targets), "data")
        return optimizer_step(tx)(grads, state, params)

    def single_device_step(params, state):
        return optimizer_step(tx)(jax.grad(regression_loss)(params, INPUTS, TARGETS), state, params)

    replicate = lambda tree: jax.tree.map(lambda x: jnp.broadcast_to(x, (8, *jnp.shape(x))), tree)
    params, state = replicate(PARAMS), replicate(tx.init(PARAMS))
    step = jax.pmap(lambda p, s, x, y: data_parallel_step(p, s, x, y), axis_name="data")
    single = jax.jit(single_device_step)
    expected_params, expected_state = PARAMS, tx.init(PARAMS)
    shards = lambda x: x.reshape(8, -1, *x.shape[1:])
    for _ in range(STEPS):
        params, state = step(params, state, shards(INPUTS), shards(TARGETS))
        expected_params, expected_state = single(expected_params, expected_state)

    for leaf in jax.tree.leaves((params, state)):  # identical on every device, bit for bit
        assert all(np.array_equal(leaf[0], leaf[device]) for device in range(1, 8))
    # The mean of 8 per-device means rounds differently from the mean over the batch.
    on_device_0 = jax.tree.map(lambda x: x[0], params)
    assert_within_ulps(expected_params, on_device_0, ULPS.get(name, ULPS["default"]))


def test_example_trains_sharded_over_eight_devices():
    path = Path(__file__).resolve().parents[2] / "examples" / "flax_ranger_ema_sharded.py"
    spec = importlib.util.spec_from_file_location("flax_ranger_ema_sharded", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # Flax modules are dataclasses: their module must be importable
    spec.loader.exec_module(example)
    metrics = example.main(steps=100, log_every=0)
    assert metrics["final_loss"] < 0.5 * metrics["first_loss"], metrics
    assert metrics["held_out_accuracy"] > 0.9 and metrics["ema_held_out_accuracy"] > 0.9, metrics
    assert metrics["moment_sharding"].is_equivalent_to(metrics["kernel_sharding"], 2)
    assert len(metrics["moment_sharding"].device_set) == 8


@pytest.mark.parametrize("optimizer", ["adam", "schedule_free_adamw"])
def test_compare_engine_splits_the_runs_over_devices(optimizer):
    """``run_sweep`` on 1, 2 and 8 devices: the same runs, in order, padding dropped.

    3 settings x 1 seed = 3 runs. On 2 devices ``run_layout`` gives 2 runs per
    device, padded to 4 (the copy of the last run is dropped); on 8 devices,
    3 devices of 1 run each. Each run's arithmetic is the same wherever it is
    placed, and on this problem (no matrix products, whose kernels XLA picks
    by the per-device batch of runs) the results are bit-identical. Adam's
    state is split like the params; Schedule-Free's is read at its ``x``.
    """
    from optaxtra.compare import Task
    from optaxtra.compare.cli._engine import Sweep, run_sweep

    task = Task(
        name="mean", init_params=lambda key: jax.random.normal(key, (4, 3)),
        loss=lambda w, x: jnp.mean((x[:, :, None] - w[None]) ** 2),
        sample_batch=lambda key, batch_size: 1.0 + jax.random.normal(key, (batch_size, 4)),
        validation=jnp.linspace(-1.0, 1.0, 12).reshape(3, 4),
    )
    make = {"adam": optaxtra.adam, "schedule_free_adamw": optaxtra.schedule_free_adamw}[optimizer]
    sweep = Sweep(optimizer, lambda h: make(h["learning_rate"]), {"learning_rate": (0.01, 0.03, 0.1)})
    results = {
        count: run_sweep(task, sweep, (5,), steps=12, batch_size=4, evaluations=3, devices=jax.devices()[:count])
        for count in (1, 2, 8)
    }
    assert [results[count].devices for count in (1, 2, 8)] == [1, 2, 3]
    for count in (2, 8):
        for field in ("train_loss", "validation_loss", "final_train_loss"):
            got, want = getattr(results[count], field), getattr(results[1], field)
            assert got.shape == want.shape, (count, field)
            np.testing.assert_array_equal(got, want, err_msg=f"{count} devices, {field}")
        np.testing.assert_array_equal(results[count].eval_steps, results[1].eval_steps)
        np.testing.assert_array_equal(results[count].seeds, [5, 5, 5])
