"""Runs ``tests/multidevice/`` on 8 simulated host devices, in a process of its own.

XLA fixes the number of host devices when JAX starts, so the checks run in a
child process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``;
this process (and any pytest-xdist worker) keeps its single device. The checks
pin what ``tests/multidevice/check_sharding.py`` states: optimizer state laid
out like the params, sharded ``jit`` steps equal to the single-device run,
``axis_name`` under ``shard_map`` and ``pmap`` (``trust_ratio`` alone and in
LAMB, Ralamb and LARS), data-parallel ``pmap``, and the sharded example script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_multidevice_checks_pass_on_eight_host_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
            "tests/multidevice/check_sharding.py",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    # A crash prints the reason (an XLA check, "Fatal Python error") before the stack: keep both ends.
    report = result.stdout[-6000:] + result.stderr[:4000] + "\n...\n" + result.stderr[-2000:]
    assert result.returncode == 0, report
