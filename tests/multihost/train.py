"""One process of a multi-process run (``python -m tests.multihost.train OUT [options]``).

Started by ``tests/test_multihost.py`` through ``launch.py``; the main test run
does not collect it (its name does not match ``test_*.py``). It trains every
optimizer (``trainer.py``) for ``STEPS`` steps, and process 0 writes the
gathered params, states and diagnostics to ``OUT/uninterrupted.npz``.

``--save-at S --checkpoint PATH`` saves an orbax checkpoint before step S (all
processes write their shards); with ``--restore`` the run then restores that
checkpoint, saved by any topology (each process reads the shards its own
devices hold now), continues to the end and writes ``OUT/continued.npz``;
``--hold`` keeps stepping after the save until a peer is killed (the fault
test).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import optaxtra
from tests.multihost import runtime
from tests.multihost.trainer import NAMES, STEPS, Trainer


def checkpointer() -> Any:
    import orbax.checkpoint as ocp  # only the processes import it, not the test collection

    return ocp.StandardCheckpointer()


def restore(trainer: Trainer, path: Path, out: Path) -> None:
    """Checks the checkpoint against this launch's target, in every process, then restores into it.

    Each process leaves ``OUT/checked.<process index>`` behind once done.
    """
    with checkpointer() as ckpt:
        target, saved = trainer.target(), ckpt.metadata(path)
        optaxtra.check_checkpoint(saved, target)
        wrong = {**target, "params": {**target["params"], "extra": target["params"][trainer.names[0]]}}
        try:
            optaxtra.check_checkpoint(saved, wrong)
        except ValueError as error:
            assert "in the target but not the checkpoint: params/extra/bias" in str(error), error
        else:
            raise AssertionError("check_checkpoint accepted a target with a param the checkpoint lacks")
        restored = ckpt.restore(path, target)
    trainer.params, trainer.states = restored["params"], restored["states"]
    (out / f"checked.{jax.process_index()}").touch()


def run(trainer: Trainer, first: int, save_at: int | None, path: Path | None, hold: bool) -> None:
    for index in range(first, STEPS):
        if index == save_at:
            with checkpointer() as ckpt:
                ckpt.save(path, trainer.tree())
            if jax.process_index() == 0:
                (path.parent / f"{path.name}.saved").touch()
            if hold:  # collectives in flight until the driver kills a peer
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    jax.block_until_ready(trainer.step_fn(trainer.params, trainer.states, *trainer.batch(index)))
                    time.sleep(0.05)
                raise SystemExit("--hold: no peer was killed within 120 s")
        trainer.step(index)
    trainer.check_layout()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, help="where process 0 writes uninterrupted.npz (and continued.npz)")
    parser.add_argument("--names", nargs="*", default=NAMES)
    parser.add_argument("--save-at", type=int, help="save a checkpoint before this step (0-based)")
    parser.add_argument("--restore", action="store_true", help="then restore it, and continue to the end")
    parser.add_argument("--hold", action="store_true", help="after the save, step on until killed")
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    checkpoint = args.checkpoint.resolve() if args.checkpoint else None

    trainer = Trainer(args.names)
    trainer.check_layout()
    runs = {"uninterrupted": (0, None if args.restore else args.save_at)}
    if args.restore:
        runs["continued"] = (args.save_at, None)
    for tag, (first, save_at) in runs.items():
        if tag == "continued":
            restore(trainer, checkpoint, args.out)
        run(trainer, first, save_at, checkpoint, args.hold)
        flat = trainer.gathered()
        if jax.process_index() == 0:
            np.savez(args.out / f"{tag}.npz", **flat)
    # One compiled step for every run: the restored layout is the fresh one.
    assert trainer.step_fn._cache_size() == 1, trainer.step_fn._cache_size()
    print(f"process {jax.process_index()}: done", flush=True)


if __name__ == "__main__":
    runtime.initialize()
    main()
