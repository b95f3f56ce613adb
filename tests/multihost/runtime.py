"""Joins the distributed runtime a ``launch.Launch`` set up: loopback only, every wait bounded.

Called first thing by each per-process program. gloo gives the CPU backend
cross-process collectives. The coordinator binds 127.0.0.1 only, and so do
gloo's connections: JAX's own setting (``jax_cpu_collectives_implementation``)
lets gloo pick the address the host name resolves to, so the CPU backend is
registered here with gloo collectives created for 127.0.0.1 (JAX's internal
``make_cpu_client``, as JAX itself calls it). A dead peer is noticed by the
coordinator when its heartbeats stop (``HEARTBEAT_SECONDS``), and every
survivor is then terminated with an error naming it, instead of waiting in a
collective for ever.
"""

from __future__ import annotations

import functools
import os

import jax
from jax._src import distributed, xla_bridge
from jax._src.lib import _jax

HEARTBEAT_SECONDS = 5
INITIALIZATION_SECONDS = 60
LOOPBACK = "127.0.0.1"


def initialize() -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    coordinator = os.environ["MULTIHOST_COORDINATOR"]
    jax.distributed.initialize(
        coordinator,
        num_processes=int(os.environ["MULTIHOST_NUM_PROCESSES"]),
        process_id=int(os.environ["MULTIHOST_PROCESS_ID"]),
        coordinator_bind_address=coordinator,
        initialization_timeout=INITIALIZATION_SECONDS,
        heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
        shutdown_timeout_seconds=HEARTBEAT_SECONDS,
    )
    collectives = _jax.make_gloo_tcp_collectives(distributed_client=distributed.global_state.client,
                                                 hostname=LOOPBACK)
    xla_bridge.register_backend_factory(
        "cpu", functools.partial(xla_bridge.make_cpu_client, collectives), priority=0, fail_quietly=False
    )
