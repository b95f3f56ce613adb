"""Starts N JAX processes on localhost that form one distributed runtime, and bounds them.

Each process is ``python -m <module> ...`` run from the repository root with
``JAX_PLATFORMS=cpu``, ``XLA_FLAGS=--xla_force_host_platform_device_count=K``
and the coordinator's address in ``MULTIHOST_*`` variables, which
``tests/multihost/runtime.py`` reads to call ``jax.distributed.initialize``.
The coordinator listens on 127.0.0.1 only, on a port the operating system
found free. Each process leads a process group of its own: on a timeout or any
failure every group is killed, so nothing outlives the test.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
_TAIL = 3000
_PORT_TAKEN = "Failed to start RPC server"  # the coordinator's error for a port in use
# XLA's CPU optimizations off: a launch compiles in about half the time. Every
# process of every topology compiles with the same flags, so that the programs
# the tests compare differ only in where their devices live.
COMPILE_FLAGS = ("--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
                 " --xla_cpu_parallel_codegen_split_count=1")


def free_port() -> int:
    """A port nothing listens on now: bound to port 0 on the loopback interface, then released.

    Another program may take it before the coordinator binds it; the launch
    then fails fast and ``run`` retries.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class Finished:
    """How one process ended: its exit code (negative: the signal), output and time since the start."""

    process_id: int
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> str:
        return (f"process {self.process_id}: exit {self.returncode} after {self.seconds:.1f} s\n"
                f"--- stdout (end)\n{self.stdout[-_TAIL:]}\n--- stderr (end)\n{self.stderr[-_TAIL:]}")


class Launch:
    """``num_processes`` processes of ``module``, each with ``devices_per_process`` host devices.

    In ``args``, ``{process_id}`` and ``{port}`` become each process's id and
    the coordinator's port, for programs that take them on their command line.
    """

    def __init__(self, module: str, args: list[str], num_processes: int, devices_per_process: int,
                 logs: Path):
        self.port = free_port()
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        base = {key: value for key, value in os.environ.items()
                if key not in ("PYTEST_XDIST_WORKER", "XLA_FLAGS", "JAX_COORDINATOR_ADDRESS")}
        base.update(
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process} {COMPILE_FLAGS}",
            MULTIHOST_COORDINATOR=f"127.0.0.1:{self.port}",
            MULTIHOST_NUM_PROCESSES=str(num_processes),
            PYTHONUNBUFFERED="1",
        )
        self.started = time.monotonic()
        self.processes: list[subprocess.Popen] = []
        self.ended: dict[int, float] = {}
        self.files = []
        try:
            for process_id in range(num_processes):
                out = open(logs / f"{process_id}.out", "w+")
                err = open(logs / f"{process_id}.err", "w+")
                self.files += [out, err]
                own_args = [arg.replace("{process_id}", str(process_id)).replace("{port}", str(self.port))
                            for arg in args]
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", module, *own_args], cwd=ROOT, stdout=out, stderr=err,
                    env={**base, "MULTIHOST_PROCESS_ID": str(process_id)},
                    start_new_session=True,
                ))
        except BaseException:
            self.kill()
            raise

    def kill(self, process_id: int | None = None) -> None:
        """SIGKILL to one process's group, or to all (with anything the processes started)."""
        for process in self.processes if process_id is None else [self.processes[process_id]]:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def wait(self, timeout: float, fail_fast: bool = True) -> list[Finished]:
        """Waits for every process to end, at most ``timeout`` seconds from now, then kills the rest.

        With ``fail_fast``, the first process to fail has the others killed at
        once: they would only wait for it until a timeout.
        """
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and any(p.poll() is None for p in self.processes):
                self._note_ends()
                if fail_fast and any(p.returncode not in (None, 0) for p in self.processes):
                    break
                time.sleep(0.05)
        finally:
            self._note_ends()
            self.kill()
        return [self._finished(i) for i in range(len(self.processes))]

    def wait_for_file(self, path: Path, timeout: float) -> None:
        """Until ``path`` exists; fails (and kills all) on a timeout or if a process ends first."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.kill()
                reports = "\n".join(self._finished(i).report() for i in range(len(self.processes)))
                raise AssertionError(f"{path.name} never appeared:\n{reports}")
            time.sleep(0.05)

    def _note_ends(self) -> None:
        for i, process in enumerate(self.processes):
            if process.poll() is not None and i not in self.ended:
                self.ended[i] = time.monotonic()

    def _finished(self, process_id: int) -> Finished:
        read = lambda name: (self.logs / f"{process_id}.{name}").read_text(errors="replace")
        seconds = self.ended.get(process_id, time.monotonic()) - self.started
        return Finished(process_id, self.processes[process_id].returncode, read("out"), read("err"), seconds)

    def __enter__(self) -> "Launch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.kill()
        for file in self.files:
            file.close()


@dataclasses.dataclass
class Spec:
    """What to launch: ``module`` with ``args`` on ``num_processes`` x ``devices_per_process``."""

    module: str
    args: list[str]
    num_processes: int
    devices_per_process: int
    logs: Path


def run(*specs: Spec, timeout: float, meanwhile: Callable[[], Any] | None = None,
        attempts: int = 3) -> list[list[Finished]]:
    """Runs launches side by side to their end and asserts that every process succeeded.

    ``meanwhile`` is called once, while the first launches run. A coordinator
    that could not bind its port (taken between ``free_port`` and the bind)
    is retried on another port; any other failure is reported with each
    process's output.
    """
    for attempt in range(attempts):
        launches = []
        try:
            for spec in specs:
                launches.append(Launch(spec.module, spec.args, spec.num_processes, spec.devices_per_process,
                                       spec.logs / f"try{attempt}"))
            if meanwhile is not None and attempt == 0:
                meanwhile()
            deadline = time.monotonic() + timeout
            results = [launch.wait(max(deadline - time.monotonic(), 0.0)) for launch in launches]
        finally:
            for launch in launches:
                launch.close()
        failed = [f for finished in results for f in finished if f.returncode != 0]
        if not failed:
            return results
        if not any(_PORT_TAKEN in f.stderr for f in failed):
            break
    reports = "\n".join(f"{spec.module} {' '.join(spec.args)} on {spec.num_processes} x {spec.devices_per_process}:\n"
                        + "\n".join(f.report() for f in finished) for spec, finished in zip(specs, results))
    raise AssertionError(reports)
