"""How a sweep's runs are split over devices.

The runs of a sweep are independent, so the engine splits them along their
leading axis over the local devices: on a CPU split into host devices
(``optaxtra compare`` makes one per core), each device trains its share on
its own thread, which on 2 cores made the default run's 12 programs 1.3-2.5x
faster than on one device (81 s instead of 156 s in all). A run computes the
same mathematics wherever it is placed, but XLA picks its matrix-product
kernels by the shapes it sees, so the number of runs on a device can change a
run's float32 rounding; at large learning rates those bits grow through
training as a different seed's would.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["run_layout", "spread_runs"]


def run_layout(runs: int, devices: int) -> tuple[int, int]:
    """How ``runs`` runs are split over at most ``devices`` devices.

    Each device gets ``ceil(runs / devices)`` runs, the fewest any split
    allows; of the devices, as few are used as that load needs, so the
    padding (copies of the last run, computed and dropped) stays below one
    run per device.

    Args:
      runs: runs in the sweep, >= 1.
      devices: devices available, >= 1.

    Returns:
      ``(devices used, runs after padding)``.

    Example:
      >>> run_layout(40, 2), run_layout(40, 16), run_layout(15, 2), run_layout(3, 8)
      ((2, 40), (14, 42), (2, 16), (3, 3))
    """
    per_device = -(-runs // devices)
    used = -(-runs // per_device)
    return used, used * per_device


def spread_runs(tree: Any, devices: Sequence[jax.Device], runs: int) -> Any:
    """Every leaf padded to ``runs`` on its leading (run) axis and split over ``devices`` along it."""
    mesh = jax.sharding.Mesh(np.asarray(devices), ("runs",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))

    def place(leaf: Any) -> jax.Array:
        leaf = jnp.asarray(leaf)
        if leaf.shape[0] < runs:  # Copies of the last run: computed, then dropped.
            leaf = jnp.concatenate([leaf, jnp.repeat(leaf[-1:], runs - leaf.shape[0], axis=0)])
        return jax.device_put(leaf, sharding)

    return jax.tree.map(place, tree)
