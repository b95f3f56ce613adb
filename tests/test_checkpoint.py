"""Checkpointing a Flax ``TrainState`` with orbax, for every optimizer.

* A run saved mid-way (off a Lookahead synchronisation, after the switch and
  the SWA start) and restored into freshly built objects (a new model, a new
  optimizer, a new ``TrainState`` from other initial weights, a new
  checkpointer) continues exactly as the uninterrupted run: bit for bit.
* Restoring a state saved with another optimizer, or for another model, or in
  another dtype, raises ``optaxtra.check_checkpoint``'s ``ValueError`` naming
  what differs (orbax alone reports a bare path, refuses a shape with a message
  about padding, and casts a dtype silently).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax.training.train_state import TrainState

import optaxtra
from tests._ecosystem_cases import CASES, NAMES

LEARNING_RATE = 1e-2
SAVED_AT, TOTAL = 5, 9  # k = 6 Lookahead syncs at step 6, after the save

_rng = np.random.default_rng(0)
INPUTS = jnp.asarray(_rng.normal(size=(16, 4)), jnp.float32)
TARGETS = jnp.asarray(_rng.normal(size=(16, 3)), jnp.float32)


class MLP(nn.Module):
    hidden: int = 8
    layers: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden, param_dtype=self.dtype, dtype=self.dtype)(x))
        return nn.Dense(3, param_dtype=self.dtype, dtype=self.dtype)(x).astype(jnp.float32)


# A ``TrainState``'s ``apply_fn`` and ``tx`` are static: new instances would
# recompile the step (bound methods compare by identity). Both hold no state
# (module definitions, pure functions), so sharing them takes nothing from the
# restart below; everything that holds numbers is built anew.
@functools.cache
def optimizer(name: str) -> optax.GradientTransformation:
    return CASES[name](LEARNING_RATE)


@functools.cache
def model(**options: Any) -> MLP:
    return MLP(**options)


def fresh_state(name: str, seed: int = 0, **model_options: Any) -> TrainState:
    """Weights, optimizer state and ``TrainState`` built anew, as a restarted process would."""
    module = model(**model_options)
    params = module.init(jax.random.key(seed), INPUTS.astype(module.dtype))["params"]
    state = TrainState.create(apply_fn=module.apply, params=params, tx=optimizer(name))
    # Typed and placed as a restored state is (int32 step, committed to a
    # device), so that one compiled step serves the runs before and after.
    return jax.device_put(state.replace(step=jnp.zeros([], jnp.int32)), jax.devices()[0])


def train_step(state: TrainState) -> TrainState:
    def loss(params):
        outputs = state.apply_fn({"params": params}, INPUTS.astype(jnp.result_type(*jax.tree.leaves(params))))
        return jnp.mean((outputs - TARGETS) ** 2)

    return state.apply_gradients(grads=jax.grad(loss)(state.params))


STEP = jax.jit(train_step)


def run(state: TrainState, steps: int) -> TrainState:
    for _ in range(steps):
        state = STEP(state)
    return state


def save(path: Path, state: TrainState) -> None:
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state)


def restore(path: Path, target: TrainState) -> TrainState:
    """The recipe the README gives: check what was saved against the target, then restore."""
    with ocp.StandardCheckpointer() as checkpointer:
        optaxtra.check_checkpoint(checkpointer.metadata(path), target)
        return checkpointer.restore(path, target)


@pytest.mark.parametrize("name", NAMES)
def test_restored_run_continues_bit_for_bit(name, tmp_path):
    uninterrupted = run(fresh_state(name), TOTAL)

    saved = run(fresh_state(name), SAVED_AT)
    save(tmp_path / "checkpoint", saved)
    del saved

    # Other initial weights: everything must come from the disk.
    target = jax.eval_shape(lambda: fresh_state(name, seed=1))
    restored = restore(tmp_path / "checkpoint", target)
    assert int(restored.step) == SAVED_AT
    continued = run(restored, TOTAL - SAVED_AT)

    assert int(continued.step) == TOTAL
    jax.tree.map(np.testing.assert_array_equal, continued.params, uninterrupted.params)
    jax.tree.map(np.testing.assert_array_equal, continued.opt_state, uninterrupted.opt_state)
    assert jax.tree.structure(continued.opt_state) == jax.tree.structure(uninterrupted.opt_state)


MISMATCHES = {
    # name: (optimizer saved, optimizer restored into, model options restored into, message fragments)
    "adam into adamw": ("adam", "adamw", {}, ["in the target but not the checkpoint: opt_state/0/mu/Dense_0/bias"]),
    "adam into amsgrad": ("adam", "amsgrad", {}, ["opt_state/1/nu/0/Dense_0/bias"]),
    "radam into ranger": ("radam", "ranger", {}, ["opt_state/slow/Dense_0/bias", "opt_state/0/count"]),
    "sgd into sgd_momentum": ("sgd", "sgd_momentum", {}, ["opt_state/1/trace/Dense_0/bias"]),
    "ranger into ema_ranger": ("ranger", "ema_ranger", {}, ["opt_state/average/Dense_0/bias"]),
    "wider model": ("adam", "adam", {"hidden": 16}, ["params/Dense_0/kernel: shape (4, 8) in the"]),
    "deeper model": ("adam", "adam", {"layers": 2}, ["but not the checkpoint: params/Dense_2/bias"]),
    "bfloat16 model": ("adam", "adam", {"dtype": jnp.bfloat16}, ["Dense_0/bias: dtype float32 in the"]),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_restoring_into_another_optimizer_or_model_raises_clearly(case, tmp_path):
    saved_with, restored_into, model_options, fragments = MISMATCHES[case]
    save(tmp_path / "checkpoint", fresh_state(saved_with))
    target = jax.eval_shape(lambda: fresh_state(restored_into, **model_options))
    with pytest.raises(ValueError, match="does not fit the target") as error:
        restore(tmp_path / "checkpoint", target)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_orbax_alone_casts_a_dtype_silently(tmp_path):
    """Why the check exists: without it a float32 state lands in a bfloat16 model unannounced."""
    save(tmp_path / "checkpoint", fresh_state("adam"))
    target = jax.eval_shape(lambda: fresh_state("adam", dtype=jnp.bfloat16))
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(tmp_path / "checkpoint", target)
    assert restored.params["Dense_0"]["kernel"].dtype == jnp.bfloat16


def test_check_checkpoint_accepts_a_matching_state_and_plain_trees():
    state = fresh_state("ranger")
    optaxtra.check_checkpoint(jax.eval_shape(lambda: state), state)
    as_numpy = jax.tree.map(np.asarray, state.opt_state)
    optaxtra.check_checkpoint(as_numpy, jax.eval_shape(lambda: state.opt_state))
    message = r"opt_state/inner/0/mu/Dense_0/kernel: shape \(4, 8\) in the checkpoint"
    with pytest.raises(ValueError, match=message):
        optaxtra.check_checkpoint(state, jax.eval_shape(lambda: fresh_state("ranger", hidden=4)))


def test_a_step_saved_from_a_python_int_restores_into_an_int32_step(tmp_path):
    """``TrainState.create``'s step is the Python int 0, which orbax stores as int64."""
    module = model()
    params = module.init(jax.random.key(0), INPUTS)["params"]
    save(tmp_path / "checkpoint", TrainState.create(apply_fn=module.apply, params=params, tx=optimizer("adam")))
    with ocp.StandardCheckpointer() as checkpointer:
        assert checkpointer.metadata(tmp_path / "checkpoint").item_metadata.tree["step"].dtype == np.int64
    target = jax.eval_shape(lambda: fresh_state("adam", seed=1))
    assert target.step.dtype == jnp.int32
    restored = restore(tmp_path / "checkpoint", target)
    assert restored.step.dtype == jnp.int32 and int(restored.step) == 0
    jax.tree.map(np.testing.assert_array_equal, restored.params, params)


def test_check_checkpoint_compares_integer_leaves_by_shape_only():
    saved = {"count": np.zeros([], np.int64), "w": np.zeros(3, np.float32)}
    optaxtra.check_checkpoint(saved, {"count": jnp.zeros([], jnp.int32), "w": jnp.zeros(3)})
    # An integer leaf where the target has a float one (or back) is no counter width.
    with pytest.raises(ValueError, match=r"w: dtype int32 in the checkpoint, float32 in the target"):
        optaxtra.check_checkpoint({"w": np.zeros(3, np.int32)}, {"w": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"w: dtype float32 in the checkpoint, int32 in the target"):
        optaxtra.check_checkpoint({"w": np.zeros(3, np.float32)}, {"w": jnp.zeros(3, jnp.int32)})
    with pytest.raises(ValueError, match=r"count: shape \(2,\) in the checkpoint, \(\) in the target"):
        optaxtra.check_checkpoint({"count": np.zeros(2, np.int64)}, {"count": jnp.zeros([], jnp.int32)})


def test_check_checkpoint_names_every_difference():
    saved = {"w": np.zeros(3, np.float32)}
    with pytest.raises(ValueError) as error:
        optaxtra.check_checkpoint(saved, {"w": jnp.zeros(4, jnp.bfloat16)})
    assert str(error.value).splitlines()[1:] == [
        "  w: shape (3,) in the checkpoint, (4,) in the target",
        "  w: dtype float32 in the checkpoint, bfloat16 in the target",
    ]
    # Beyond six paths the list is cut, and says how many it left out.
    target = {f"p{i}": jnp.zeros(1) for i in range(8)}
    with pytest.raises(ValueError) as error:
        optaxtra.check_checkpoint({}, target)
    assert str(error.value).splitlines()[1] == (
        "  in the target but not the checkpoint: p0, p1, p2, p3, p4, p5, ... (2 more)"
    )
    with pytest.raises(ValueError) as error:
        optaxtra.check_checkpoint({}, {f"p{i}": jnp.zeros(1) for i in range(6)})
    assert str(error.value).splitlines()[1] == "  in the target but not the checkpoint: p0, p1, p2, p3, p4, p5"
