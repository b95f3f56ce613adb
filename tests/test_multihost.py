"""optaxtra on JAX's multi-controller runtime: real processes on localhost (gloo collectives).

Each launch starts processes that form one distributed runtime
(``tests/multihost/launch.py``; ``tests/multihost/train.py`` is what each runs):

* 2 processes x 2 devices, 4 x 1 and 1 x 4 train every optimizer of
  ``optaxtra.OPTIMIZERS``, the averaging and switching wrappers, Lookahead and
  ``skip_nonfinite`` for 7 steps, params and state split FSDP-style over the
  4-device mesh, each batch split over it too (data parallel). The final
  params, states and diagnostics (trust ratios included) of every topology
  are identical, bit for bit, to the single process's. That is the bound
  measured, and why it is 0: all three compile the same partitioned program
  for the same 4-position mesh, and gloo's all-reduce across processes adds
  the devices' partial sums (of gradients, of each layer's norms) in the
  order the in-process one does; sums whose float32 result depends on that
  order (``trainer.ORDER_PROBES``) pin it. A norm taken per process instead
  would not agree at all. ``tests/multidevice/check_sharding.py`` ties the
  one-process sharded run to the single-device run.
* A NaN gradient entry held by the last process only makes every process
  skip that step (``skip_nonfinite``'s check is global). 8-bit AdamW's
  blocks each lie within one device's shard (``trainer.Trainer.check_layout``).
* The 2-process run saves an orbax checkpoint after step 4; the 1 x 4 and
  4 x 1 launches check it against their target with ``check_checkpoint`` in
  every process, restore it onto their own devices and continue: the result
  equals the uninterrupted run.
* A process of 4 killed (SIGKILL) mid-run makes the other 3 exit within a
  bound (measured: about 4 s, the heartbeat timeout being 5 s), with an error
  naming the lost task, instead of hanging; a relaunch resumes from the last
  checkpoint and ends where an uninterrupted run ends.
* ``examples/flax_lamb_multihost.py`` trains the same on one process and on two.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

import optaxtra
from tests.multihost import launch, runtime
from tests.multihost.trainer import NAMES, ORDER_PROBES, STEPS

LAUNCH_SECONDS = 300  # per launch: compiling on a loaded 2-core machine; a hang ends here
SAVE_AT = 4
TOPOLOGIES = {"2x2": (2, 2), "1x4": (1, 4), "4x1": (4, 1)}
# Measured: identical in every leaf (see the module docstring).
ULPS = 0
# A survivor must be gone this long after its peer: the coordinator declares a
# task dead after HEARTBEAT_SECONDS without a heartbeat, then tells the others.
SURVIVOR_SECONDS = runtime.HEARTBEAT_SECONDS + 25
KILLED = 2
# What each survivor reports about the killed process: gloo sees the connection
# drop mid-collective, the coordinator sees the heartbeats stop and tells the others.
PEER_LOST = re.compile(rf"Connection closed by peer|Task {KILLED} heartbeat timeout"
                       rf"|stopped sending heartbeats\):\s*{KILLED}\b")
EXAMPLE = launch.ROOT / "examples" / "flax_lamb_multihost.py"
FAULT_NAMES = ["lamb", "ranger"]  # a global norm; Lookahead syncing after the restart


def train(out: Path, processes: int, devices: int, *args: str) -> launch.Spec:
    out.mkdir(exist_ok=True)
    return launch.Spec("tests.multihost.train", [str(out), *args], processes, devices, out / "logs")


def launch_topologies(root: Path) -> dict[str, Path]:
    """The 2 x 2 launch saves a checkpoint; then 1 x 4 and 4 x 1, side by side, restore it."""
    outputs = {topology: root / topology for topology in TOPOLOGIES}
    checkpoint = ["--save-at", str(SAVE_AT), "--checkpoint", str(root / "checkpoint")]
    launch.run(train(outputs["2x2"], 2, 2, *checkpoint), timeout=LAUNCH_SECONDS)
    restoring = [train(outputs[t], *TOPOLOGIES[t], *checkpoint, "--restore") for t in ("1x4", "4x1")]
    launch.run(*restoring, timeout=LAUNCH_SECONDS)
    return outputs


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(data)


def ulps(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = expected.astype(np.float64), actual.astype(np.float64)
    scale = np.abs(expected).max(initial=0.0)
    difference = np.abs(expected - actual).max(initial=0.0)
    return float(difference / (np.finfo(np.float32).eps * scale)) if scale else float(difference)


def assert_same(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], limit: float = ULPS) -> None:
    assert sorted(expected) == sorted(actual)
    for key, value in expected.items():
        if np.issubdtype(value.dtype, np.floating):
            assert ulps(value, actual[key]) <= limit, f"{key}: {ulps(value, actual[key]):.1f} ulps > {limit}"
        else:
            np.testing.assert_array_equal(value, actual[key], err_msg=key)


def test_every_optimizer_and_wrapper_is_run():
    table = set(optaxtra.OPTIMIZERS) | {"ema_ranger", "swa_adam", "switch_adam_sgd", "lookahead_adam"}
    assert table <= set(NAMES) and {"skip_nonfinite_lamb", "adamw_8bit"} <= set(NAMES)


def test_topologies_train_alike_and_resume_each_others_checkpoints(tmp_path):
    """One test, so that pytest-xdist's workers never launch the topologies twice."""
    runs = launch_topologies(tmp_path)
    reference = load(runs["1x4"] / "uninterrupted.npz")
    assert {key.split("'")[1] for key in reference if "[" in key} == set(NAMES)
    assert any("trust_ratio/kernel" in key for key in reference)  # the global norms are compared too
    for topology in ("2x2", "4x1"):
        assert_same(reference, load(runs[topology] / "uninterrupted.npz"))
    # The probes can tell one order of additions from another: their sums are not all the sequential ones.
    sequential = [np.float32(0) + row[0] + row[1] + row[2] + row[3] for row in ORDER_PROBES]
    assert not np.array_equal(reference["order_probes"], sequential)

    # A NaN gradient entry on the last process: every process skipped that one step.
    for topology in TOPOLOGIES:
        result = load(runs[topology] / "uninterrupted.npz")
        assert result["state['skip_nonfinite_lamb'].skipped"] == 1, topology
        assert result["state['skip_nonfinite_lamb'].inner[0].count"] == STEPS - 1, topology
        assert all(np.isfinite(value).all() for key, value in result.items() if "params" in key), topology

    # Saved by 2 processes, restored by 1 and by 4: the continuation is the uninterrupted run.
    uninterrupted = load(runs["2x2"] / "uninterrupted.npz")
    for topology in ("1x4", "4x1"):
        assert_same(uninterrupted, load(runs[topology] / "continued.npz"))
        # check_checkpoint ran in every process, and rejected a target with a param the checkpoint lacks.
        checked = sorted(path.name for path in runs[topology].glob("checked.*"))
        assert checked == [f"checked.{process}" for process in range(TOPOLOGIES[topology][0])], topology


def test_a_killed_process_ends_the_others_and_a_restart_resumes(tmp_path):
    """4 processes of 1 device; process 2 is killed after the checkpoint, while all are stepping.

    The survivors are the coordinator (process 0), which sees the heartbeats
    stop, and two processes it then tells. The restart runs as 1 process of 4
    devices (a job restarted on fewer hosts).
    """
    checkpoint = tmp_path / "checkpoint"
    common = [str(tmp_path), "--names", *FAULT_NAMES, "--save-at", str(SAVE_AT), "--checkpoint", str(checkpoint)]
    with launch.Launch("tests.multihost.train", [*common, "--hold"], 4, 1, tmp_path / "logs") as run:
        run.wait_for_file(tmp_path / "checkpoint.saved", LAUNCH_SECONDS)
        time.sleep(0.5)  # the survivors are stepping: collectives in flight
        run.kill(KILLED)
        killed_at = time.monotonic() - run.started
        finished = run.wait(SURVIVOR_SECONDS + 30, fail_fast=False)
    for survivor in finished[:KILLED] + finished[KILLED + 1:]:
        report = f"ended {survivor.seconds - killed_at:.1f} s after the kill\n{survivor.report()}"
        assert survivor.returncode != 0, report
        assert survivor.seconds - killed_at < SURVIVOR_SECONDS, report
        assert PEER_LOST.search(survivor.stderr), report

    launch.run(launch.Spec("tests.multihost.train", [*common, "--restore"], 1, 4, tmp_path / "logs_restart"),
               timeout=LAUNCH_SECONDS)
    assert_same(load(tmp_path / "uninterrupted.npz"), load(tmp_path / "continued.npz"))


def test_example_trains_alike_on_one_process_and_on_two(capsys, tmp_path):
    """``examples/flax_lamb_multihost.py``: here on this process's one device, then as 2 x 2."""
    spec = importlib.util.spec_from_file_location("flax_lamb_multihost", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # Flax modules are dataclasses: their module must be importable
    spec.loader.exec_module(example)
    many = ["--coordinator", "127.0.0.1:{port}", "--num-processes", "2", "--process-id", "{process_id}"]
    args = ["--steps", "40", "--log-every", "10", *many]
    (pair,) = launch.run(launch.Spec("examples.flax_lamb_multihost", args, 2, 2, tmp_path / "logs"),
                         timeout=LAUNCH_SECONDS, meanwhile=lambda: example.train(steps=40, log_every=10))
    alone = capsys.readouterr().out
    # gloo writes its own lines to stdout too, unsynchronized with Python's: pick the example's out.
    printed = [re.findall(r"step +\d+  loss [\d.]+|held-out accuracy [\d.]+", p.stdout) for p in pair]
    assert len(printed[0]) == 5 and printed[0] == printed[1]  # every process holds the same (replicated) losses
    assert "2 processes, 4 devices; this one holds (16, 256) of the (64, 256) Adam moment" in pair[0].stdout
    assert f"1 processes, {jax.device_count()} devices" in alone
    loss = lambda out: [float(x) for x in re.findall(r"loss (\d+\.\d+)", out)]
    assert loss(alone)[-1] < 0.5 * loss(alone)[0] and loss(pair[0].stdout)[-1] < 0.5 * loss(pair[0].stdout)[0]
    # One device and four sum the batch's gradient in another order: measured, the
    # losses agree to the 4 decimals printed (within one unit of the last, for rounding).
    assert np.max(np.abs(np.subtract(loss(pair[0].stdout), loss(alone)))) < 1.5e-4
