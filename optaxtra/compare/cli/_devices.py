"""How many host devices the command splits the CPU into (``--cpu-devices``).

XLA's CPU backend is one device by default, and one program on one device
ran only 1.2x faster on 2 cores than on 1 (``digits``, Adam, 40 runs). The
runs of a sweep are independent, so the engine splits them over the devices
(``run_layout``); with one host device per core each trains its share on its
own thread. JAX fixes the number of host devices when its backend starts, so
the count is set before any computation, through JAX's
``jax_num_cpu_devices`` option.
"""

from __future__ import annotations

import os

import jax

from ._errors import UsageError

__all__ = ["cores", "configure_cpu_devices"]


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _user_chose() -> bool:
    """Whether the count was already chosen: ``JAX_NUM_CPU_DEVICES`` or XLA's host-device flag."""
    return jax.config.jax_num_cpu_devices >= 0 or "xla_force_host_platform_device_count" in os.environ.get(
        "XLA_FLAGS", ""
    )


def configure_cpu_devices(requested: int | None) -> None:
    """Sets JAX's host-device count for this process, before its first computation.

    Args:
      requested: ``--cpu-devices``; ``None``: one per core, unless the count
        was already chosen (``JAX_NUM_CPU_DEVICES``, or
        ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``), or JAX
        has already started in this process (``main`` called from a program
        or a notebook): then the devices it has are used.

    Raises:
      UsageError: ``requested`` cannot be had: JAX already started with
        another count, or its default backend is not the CPU (an
        accelerator's runs are split over every device JAX sees; choose them
        with e.g. ``CUDA_VISIBLE_DEVICES``).
    """
    if requested is None and _user_chose():
        return
    try:
        jax.config.update("jax_num_cpu_devices", cores() if requested is None else requested)
    except RuntimeError:  # JAX refuses once its backends have started.
        have = len(jax.devices("cpu"))
        if requested is not None and requested != have:
            raise UsageError(
                f"--cpu-devices {requested}: JAX already started in this process with {have} host "
                "device(s), and it fixes that count when it starts; run the command in a new process."
            ) from None
        return
    if requested is not None and jax.default_backend() != "cpu":
        raise UsageError(
            f"--cpu-devices {requested} applies to the CPU; on {jax.default_backend()} every visible device "
            "is used (choose them with e.g. CUDA_VISIBLE_DEVICES)."
        )
