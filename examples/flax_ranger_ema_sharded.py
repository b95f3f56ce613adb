"""Train a Flax MLP on scikit-learn's digits with Ranger + EMA, sharded over 8 devices.

FSDP-style data parallelism under ``jax.jit``: each batch is split over the
``data`` axis of a device mesh, and so is every large weight matrix (its first
axis), together with its optimizer state (Adam's moments, Lookahead's slow
weights, the EMA), which ``optaxtra.init_sharded`` lays out like the params.
XLA inserts the collectives; the optimizer code is the single-device code.

On a CPU this simulates 8 devices (the flag must be set before JAX starts)::

    python examples/flax_ranger_ema_sharded.py

It runs in well under a minute and prints the held-out loss and accuracy of
the trained (fast) weights and of their exponential moving average.
"""

from __future__ import annotations

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import time  # noqa: E402
from typing import Any  # noqa: E402

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax.training.train_state import TrainState  # noqa: E402
from jax.sharding import AxisType, NamedSharding, PartitionSpec  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import optaxtra  # noqa: E402

# Steps dispatched ahead of the devices at most. Unbounded, a loop that never
# reads a result queues every step at once; on a loaded CPU simulating 8
# devices, hundreds of queued programs with collectives were seen to abort
# the process.
IN_FLIGHT = 8


class MLP(nn.Module):
    hidden: int = 256

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(10)(nn.relu(nn.Dense(self.hidden)(x)))


def fsdp_spec(param: jax.Array) -> PartitionSpec:
    """Matrices split over ``data`` along their first axis; vectors replicated."""
    return PartitionSpec("data") if param.ndim == 2 else PartitionSpec()


def loss_fn(params: Any, apply_fn: Any, images: jax.Array, labels: jax.Array) -> jax.Array:
    logits = apply_fn({"params": params}, images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def train_step(state: TrainState, images: jax.Array, labels: jax.Array) -> tuple[TrainState, jax.Array]:
    loss, grads = jax.value_and_grad(loss_fn)(state.params, state.apply_fn, images, labels)
    return state.apply_gradients(grads=grads), loss


def evaluate(state: TrainState, images: jax.Array, labels: jax.Array) -> tuple[float, float]:
    logits = state.apply_fn({"params": state.params}, images)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return float(loss), float(jnp.mean(jnp.argmax(logits, -1) == labels))


def main(steps: int = 400, batch_size: int = 256, log_every: int = 100) -> dict[str, Any]:
    """Trains and evaluates; returns the metrics and where the optimizer state lives."""
    started = time.perf_counter()
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    batch_sharding = NamedSharding(mesh, PartitionSpec("data"))

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    images = (digits.data[order] / 16.0).astype(np.float32)
    labels = digits.target[order].astype(np.int32)
    train, held_out = slice(0, 1493), slice(1493, None)  # 304 held out: 38 per device

    model = MLP()
    params = model.init(jax.random.key(0), images[:1])["params"]
    params = jax.device_put(params, jax.tree.map(lambda p: NamedSharding(mesh, fsdp_spec(p)), params))
    tx = optaxtra.ema_averaging(optaxtra.ranger(3e-2), decay=0.99)
    state = TrainState(
        step=jnp.zeros([], jnp.int32), apply_fn=model.apply, params=params, tx=tx,
        opt_state=optaxtra.init_sharded(tx, params),  # moments, slow weights, EMA: sharded like the params
    )
    step_fn = jax.jit(train_step, donate_argnums=0)

    rng = np.random.default_rng(1)
    losses = []  # kept on the devices: reading each one would wait for its step
    for step in range(steps):
        index = rng.integers(0, 1493, batch_size)
        batch = jax.device_put((images[train][index], labels[train][index]), batch_sharding)
        state, loss = step_fn(state, *batch)
        losses.append(loss)
        if len(losses) > IN_FLIGHT:  # bound the steps queued ahead of the devices
            losses[-IN_FLIGHT - 1].block_until_ready()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:4d}  training loss {np.mean(jax.device_get(losses[-log_every:])):.4f}")
    losses = [float(loss) for loss in jax.device_get(losses)]

    test_batch = jax.device_put((images[held_out], labels[held_out]), batch_sharding)
    fast = evaluate(state, *test_batch)
    averaged = evaluate(optaxtra.evaluation_state(state), *test_batch)  # the EMA weights, in one call
    first_moment = state.opt_state.inner.inner[0].mu["Dense_0"]["kernel"]
    metrics = {
        "first_loss": losses[0],
        "final_loss": float(np.mean(losses[-20:])),
        "held_out_loss": fast[0],
        "held_out_accuracy": fast[1],
        "ema_held_out_loss": averaged[0],
        "ema_held_out_accuracy": averaged[1],
        "kernel_sharding": state.params["Dense_0"]["kernel"].sharding,
        "moment_sharding": first_moment.sharding,
        "seconds": time.perf_counter() - started,
    }
    print(f"held-out loss {fast[0]:.4f}, accuracy {fast[1]:.3f} (trained weights)")
    print(f"held-out loss {averaged[0]:.4f}, accuracy {averaged[1]:.3f} (EMA weights)")
    print(f"Dense_0 kernel and its Adam moment are split over {metrics['moment_sharding'].spec}"
          f" on {len(jax.devices())} devices; {metrics['seconds']:.1f} s")
    return metrics


if __name__ == "__main__":
    main()
