"""Train a Flax MLP on scikit-learn's digits with LAMB, on one process or on many.

The same script runs on one machine and on a cluster: the model, the optimizer
and the step are the single-device code. What makes it multi-host is only:

1. ``jax.distributed.initialize`` before anything else, when there are several
   processes (``--cluster`` lets JAX detect a TPU pod slice, SLURM or Open MPI;
   otherwise pass ``--coordinator``, ``--num-processes`` and ``--process-id``);
2. one mesh over ``jax.devices()``, the devices of every process;
3. params created already sharded (``jax.jit`` with ``out_shardings``), and the
   optimizer state laid out like them by ``optaxtra.init_sharded``: the
   kernel's rows, its two Adam moments included, split over the mesh
   (FSDP-style);
4. each process feeds only its own rows of every global batch
   (``jax.make_array_from_process_local_data``).

LAMB's trust ratio takes the norm of each whole layer: inside ``jax.jit`` on
global arrays XLA sums the shards' partial norms across processes.

One process, on the local devices::

    python examples/flax_lamb_multihost.py

Two processes on this machine, two simulated CPU devices each (a second shell
runs ``--process-id 1``)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python examples/flax_lamb_multihost.py \\
        --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0

Every process prints the same losses; a run of 300 steps takes well under a
minute on a CPU.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState
from jax.sharding import AxisType, NamedSharding, PartitionSpec
from sklearn.datasets import load_digits

import optaxtra

TRAIN, BATCH = 1493, 256  # 304 images held out


class MLP(nn.Module):
    hidden: int = 256

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(10)(nn.relu(nn.Dense(self.hidden)(x)))


def initialize(args: argparse.Namespace) -> None:
    """Joins the other processes, if any; must run before JAX touches a device."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the CPU backend's; ignored elsewhere
    if args.cluster:
        jax.distributed.initialize()
    elif args.num_processes > 1:
        one_machine = args.coordinator.rsplit(":", 1)[0] in ("127.0.0.1", "localhost")
        jax.distributed.initialize(
            args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
            coordinator_bind_address=args.coordinator if one_machine else None,  # then listen on loopback only
        )


def fsdp_spec(param: Any) -> PartitionSpec:
    """Matrices split over ``data`` along their first axis; vectors replicated."""
    return PartitionSpec("data") if param.ndim == 2 else PartitionSpec()


def train_step(state: TrainState, images: jax.Array, labels: jax.Array) -> tuple[TrainState, jax.Array]:
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def accuracy(state: TrainState, images: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(state.apply_fn({"params": state.params}, images), -1) == labels)


def local_rows(global_rows: np.ndarray) -> np.ndarray:
    """This process's share of a global batch: its devices hold consecutive slices of the mesh."""
    size = len(global_rows) // jax.process_count()
    return global_rows[jax.process_index() * size:(jax.process_index() + 1) * size]


def train(steps: int = 300, log_every: int = 100) -> dict[str, Any]:
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    images = (digits.data[order] / 16.0).astype(np.float32)
    labels = digits.target[order].astype(np.int32)

    model = MLP()
    init = lambda key: model.init(key, jnp.zeros((1, 64)))["params"]
    shardings = jax.tree.map(lambda p: NamedSharding(mesh, fsdp_spec(p)), jax.eval_shape(init, jax.random.key(0)))
    params = jax.jit(init, out_shardings=shardings)(jax.random.key(0))  # never whole on one host
    tx = optaxtra.lamb(1e-2, weight_decay=1e-4)
    state = TrainState(
        step=jnp.zeros([], jnp.int32), apply_fn=model.apply, params=params, tx=tx,
        opt_state=optaxtra.init_sharded(tx, params),
    )
    step_fn = jax.jit(train_step, donate_argnums=0)

    def global_batch(rows: np.ndarray) -> tuple[jax.Array, jax.Array]:
        local = local_rows(rows)
        return (jax.make_array_from_process_local_data(batch_sharding, images[local]),
                jax.make_array_from_process_local_data(batch_sharding, labels[local]))

    rng = np.random.default_rng(1)  # the same seed everywhere: every process draws the same global batch
    losses = []
    for step in range(steps):
        state, loss = step_fn(state, *global_batch(rng.integers(0, TRAIN, BATCH)))
        losses.append(float(loss))  # replicated: every process holds the value
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:4d}  loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    held_out = np.arange(TRAIN, TRAIN + BATCH)  # 256 of the 304 held-out images: one batch
    held_out_accuracy = float(jax.jit(accuracy)(state, *global_batch(held_out)))
    moment = state.opt_state[0].mu["Dense_1"]["kernel"]  # the (64, 256) layer's
    print(f"held-out accuracy {held_out_accuracy:.3f}; {jax.process_count()} processes, "
          f"{jax.device_count()} devices; this one holds {moment.addressable_shards[0].data.shape} of the "
          f"{moment.shape} Adam moment on each of its {jax.local_device_count()} devices", flush=True)
    return {"first_loss": losses[0], "final_loss": float(np.mean(losses[-20:])),
            "held_out_accuracy": held_out_accuracy, "losses": losses}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", action="store_true", help="detect the processes (TPU pod, SLURM, Open MPI)")
    parser.add_argument("--coordinator", default="127.0.0.1:12355", help="host:port of process 0")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    initialize(args)
    return train(args.steps, args.log_every)


if __name__ == "__main__":
    main()
