"""Every optimizer trained on one global mesh, by each process of a multi-process run.

Every process builds the same mesh over all devices of all processes. Params
and optimizer state are sharded FSDP-style (the kernel's rows over ``data``),
and so is each batch, of which a process materializes only its own rows; the
optimizers see global arrays and JAX inserts the cross-process collectives
(gloo). All optimizers step in one compiled program, so that a launch compiles
three programs (init, step, gather) whatever the table's length.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

import optaxtra
from tests._ecosystem_cases import CASES

LEARNING_RATE = 1e-2
STEPS = 7  # Lookahead syncs at 5 and 6, SWA averages at 2, 4 and 6, the switch is at 3
POISONED_STEP = 2  # a NaN gradient entry held by the last process only
SPECS = {"kernel": P("data"), "bias": P()}
# A kernel shard is 2 rows of 4: blocks of 8 make each shard one whole block.
EIGHT_BIT = optaxtra.blockwise_int8(block_size=8, min_size=0)
OPTIMIZERS = {
    **CASES,
    "skip_nonfinite_lamb": lambda lr: optaxtra.skip_nonfinite(optaxtra.lamb(lr, weight_decay=1e-2)),
    "adamw_8bit": lambda lr: optaxtra.adamw(lr, mu_dtype=EIGHT_BIT, nu_dtype=EIGHT_BIT),
}
NAMES = sorted(OPTIMIZERS)

# Sums whose float32 result depends on the order of the additions, one element
# per device: what the all-reduce across processes gives, against the in-process one.
ORDER_PROBES = np.array([[1e8, 1, -1e8, 1], [1, 1e8, 1, -1e8], [1e8, -1e8, 1, 1], [3e7, 1, 1, -3e7]], np.float32)

_rng = np.random.default_rng(0)
PARAMS = {"kernel": 0.5 * _rng.normal(size=(8, 4)), "bias": 0.1 * _rng.normal(size=(4,))}
BATCHES = [(_rng.normal(size=(16, 8)), _rng.normal(size=(16, 4))) for _ in range(STEPS)]


def losses(params: dict[str, jax.Array], inputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The sum over optimizers of each one's loss, its params stacked on a leading axis.

    One batched forward and backward pass for all: its collectives (gathering
    the kernel's rows, summing the gradient over the batch's shards) are issued
    once, not once per optimizer. Each optimizer's gradient is its own loss's.
    """
    outputs = jnp.tanh(jnp.einsum("bi,nio->nbo", inputs, params["kernel"])) + params["bias"][:, None]
    return jnp.sum(jnp.mean((outputs - targets[None]) ** 2, axis=(1, 2)))


def global_array(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """Each process materializes only the slices its own devices hold."""
    value = np.asarray(value, np.float32)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


class Trainer:
    """The optimizers ``names``, their params and states on the global mesh, and their compiled step."""

    def __init__(self, names: list[str]):
        self.mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
        self.names = names
        self.txs = {name: OPTIMIZERS[name](LEARNING_RATE) for name in names}
        self.param_shardings = {key: NamedSharding(self.mesh, spec) for key, spec in SPECS.items()}
        params = {key: global_array(PARAMS[key], self.param_shardings[key]) for key in SPECS}
        self.params = {name: params for name in names}
        self.shardings = (
            {name: self.param_shardings for name in names},
            {name: optaxtra.state_sharding(self.txs[name], params) for name in names},
        )
        init = lambda p: {name: self.txs[name].init(p[name]) for name in names}
        self.states = jax.jit(init, out_shardings=self.shardings[1])(self.params)
        self.step_fn = jax.jit(self._step, out_shardings=self.shardings)
        self.data = NamedSharding(self.mesh, P("data"))
        with_diagnostics = lambda p, s: (p, s, {name: optaxtra.diagnostics(s[name]) for name in names})
        self.gather_fn = jax.jit(with_diagnostics, out_shardings=NamedSharding(self.mesh, P()))

    def _step(self, params: Any, states: Any, inputs: jax.Array, targets: jax.Array, poison: jax.Array):
        stacked = {key: jnp.stack([params[name][key] for name in self.names]) for key in SPECS}
        all_grads = jax.grad(losses)(stacked, inputs, targets)
        new_params, new_states = {}, {}
        for index, name in enumerate(self.names):
            grads = {key: all_grads[key][index] for key in SPECS}
            if name.startswith("skip_nonfinite"):
                grads = {**grads, "kernel": grads["kernel"] + poison}
            updates, new_states[name] = self.txs[name].update(grads, states[name], params[name])
            new_params[name] = optax.apply_updates(params[name], updates)
        return new_params, new_states

    def batch(self, index: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        inputs, targets = (global_array(x, self.data) for x in BATCHES[index])
        poison = np.zeros((8, 4))
        poison[-1, -1] = np.nan if index == POISONED_STEP else 0.0
        return inputs, targets, global_array(poison, self.param_shardings["kernel"])

    def step(self, index: int) -> None:
        self.params, self.states = self.step_fn(self.params, self.states, *self.batch(index))

    def check_layout(self) -> None:
        """Moments and slow weights are split like the kernel: this process holds its rows only.

        An 8-bit moment's codes are split so too, and each device holds the
        ``absmax`` of exactly the blocks its codes make up: no block straddles
        two devices, or two processes.
        """
        local = jax.local_device_count()
        quantized = lambda node: hasattr(node, "codes") and hasattr(node, "absmax")
        for name in self.names:
            for leaf in jax.tree.leaves(self.states[name], is_leaf=quantized):
                if quantized(leaf) and leaf.codes.shape == (8, 4):
                    block = leaf.codes.size // leaf.absmax.size
                    absmax = {shard.device: shard.index[0] for shard in leaf.absmax.addressable_shards}
                    for shard in leaf.codes.addressable_shards:
                        rows = shard.index[0]
                        assert absmax[shard.device] == slice(rows.start * 4 // block, rows.stop * 4 // block), name
                    leaf = leaf.codes
                if getattr(leaf, "shape", None) == (8, 4):
                    assert leaf.sharding.is_equivalent_to(self.param_shardings["kernel"], 2), (name, leaf.sharding)
                    assert [s.data.shape for s in leaf.addressable_shards] == [(8 // jax.device_count(), 4)] * local

    def tree(self) -> dict[str, Any]:
        return {"params": self.params, "states": self.states}

    def target(self) -> dict[str, Any]:
        """The abstract tree to restore into, laid out on this launch's mesh."""
        abstract = lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
        return jax.tree.map(abstract, self.tree(), {"params": self.shardings[0], "states": self.shardings[1]})

    def gathered(self) -> dict[str, np.ndarray]:
        """Params, states and diagnostics of every optimizer, as host arrays keyed by path.

        The diagnostics (trust ratios, clipping statistics) are computed on the
        sharded states, then everything is gathered onto every device.
        """
        probes = global_array(ORDER_PROBES, NamedSharding(self.mesh, P(None, "data")))
        sums = jax.jit(lambda x: jnp.sum(x, axis=1), out_shardings=NamedSharding(self.mesh, P()))(probes)
        flat = {"order_probes": np.asarray(sums.addressable_data(0))}
        for kind, tree in zip(("params", "state", "diagnostics"), self.gather_fn(self.params, self.states)):
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                flat[f"{kind}{jax.tree_util.keystr(path)}"] = np.asarray(leaf.addressable_data(0))
        return flat
