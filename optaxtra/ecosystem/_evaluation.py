"""Evaluate with the weights an optimizer keeps for evaluation, in one call.

Lookahead keeps slow weights and parameter averaging keeps averaged weights in
the optimizer state, beside the params being trained. These helpers find them
in an optimizer state, a Flax ``TrainState`` or an ``nnx.Optimizer`` and hand
back something to evaluate with directly.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from .._trees import find_states
from .._validation import check_bool, check_registration
from ..averaging._ema import EmaAveragingState
from ..averaging._swa import SwaAveragingState
from ..switching._switch import SwitchState
from ..transforms._lookahead import LookaheadState
from ..transforms._schedule_free import ScheduleFreeState, schedule_free_eval_params

__all__ = ["register_evaluation_params", "evaluation_params", "evaluation_state", "evaluation_model"]

_READERS: dict[type, tuple[int, Callable[..., Any], bool]] = {}


def register_evaluation_params(
    state_type: type, reader: Callable[..., Any], *, priority: int = 0, needs_params: bool = False
) -> None:
    """Teaches ``evaluation_params`` where a state type keeps evaluation weights.

    Args:
      state_type: the NamedTuple state class of a transformation.
      reader: ``state -> params``, a pytree like the params; with
        ``needs_params``, ``(state, params) -> params``.
      priority: when a state holds several kinds, the highest priority wins.
        Lookahead's slow weights have 0; parameter averages and
        Schedule-Free's evaluation point have 1, so that an averaging
        optimizer is evaluated with its average, also around Lookahead.
      needs_params: the reader also takes the params being trained
        (Schedule-Free keeps ``z`` and computes ``x`` from the params ``y``).

    Raises:
      TypeError: if ``state_type`` is not a class, ``reader`` not callable,
        ``priority`` not an integer or ``needs_params`` not a bool.
    """
    check_registration(state_type, reader, "state -> params")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an integer, got {type(priority).__name__} {priority!r}.")
    check_bool("needs_params", needs_params)
    _READERS[state_type] = (priority, reader, needs_params)


def _best(candidates: list[tuple[int, Any]]) -> tuple[int, Any] | None:
    """The highest priority; among equals the first (outermost) found."""
    return max(candidates, key=lambda item: item[0]) if candidates else None


def _search(node: Any, params: Any) -> tuple[int, Any] | None:
    """``(priority, weights)`` of the best kept weights in ``node``, or None."""
    found = find_states(node, (*_READERS, SwitchState))
    switches = [path for path, state in found if isinstance(state, SwitchState)]
    inside_a_switch = lambda path: any(len(s) < len(path) and path[: len(s)] == s for s in switches)
    candidates = []
    for path, state in found:
        if inside_a_switch(path):  # the switch decides which of its optimizers counts
            continue
        if isinstance(state, SwitchState):
            result = _switched(state, params)
        else:
            priority, reader, needs_params = _READERS[type(state)]
            result = priority, (reader(state, params) if needs_params else reader(state))
        if result is not None:
            candidates.append(result)
    return _best(candidates)


def _switched(state: SwitchState, params: Any) -> tuple[int, Any] | None:
    """Only the running optimizer's kept weights count (the other's are stale or unused)."""
    first, second = _search(state.first, params), _search(state.second, params)
    if first is None and second is None:
        return None
    before = first[1] if first is not None else params
    after = second[1] if second is not None else params
    choose = lambda a, b: jnp.where(state.switched_at >= 0, b.astype(a.dtype), a)
    priority = max(found[0] for found in (first, second) if found is not None)
    return priority, jax.tree.map(choose, before, after)


def evaluation_params(opt_state: Any, params: Any) -> Any:
    """The weights to evaluate with: averaged (or Schedule-Free's ``x``), else slow, else ``params``.

    Searches ``opt_state`` for states registered with
    ``register_evaluation_params``: ``ema_averaging``/``swa_averaging``'s
    averages (float32 for half-precision params) or Schedule-Free's
    evaluation point (``schedule_free_eval_params``), else Lookahead's slow
    weights (``lookahead``, ``ranger``). Among equal priorities the outermost
    state wins (the first in the state's tree order). Inside ``switch``, only
    the optimizer running at the time counts.

    Args:
      opt_state: any optimizer state, possibly inside ``optax.chain`` etc.
      params: the params being trained, returned when the state keeps none.

    Returns:
      A pytree like ``params``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.ranger(0.1)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.ones(2), state, params)
      >>> optaxtra.evaluation_params(state, params + updates)  # slow weights: still the start
      Array([0., 0.], dtype=float32)
    """
    found = _search(opt_state, params)
    return found[1] if found is not None else params


def evaluation_state(train_state: Any) -> Any:
    """A Flax ``TrainState`` whose ``params`` are the evaluation weights.

    Args:
      train_state: a ``flax.training.train_state.TrainState`` (or any
        dataclass with ``params``, ``opt_state`` and ``replace``).

    Returns:
      ``train_state`` with ``params`` replaced by ``evaluation_params``; the
      optimizer state is untouched, so keep training the original.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> from flax.training.train_state import TrainState
      >>> params = {"w": jnp.zeros(2)}
      >>> state = TrainState.create(apply_fn=None, params=params, tx=optaxtra.ranger(0.1))
      >>> state = state.apply_gradients(grads={"w": jnp.ones(2)})
      >>> optaxtra.evaluation_state(state).params["w"], state.params["w"]
      (Array([0., 0.], dtype=float32), Array([-0.1, -0.1], dtype=float32))
    """
    return train_state.replace(params=evaluation_params(train_state.opt_state, train_state.params))


def evaluation_model(optimizer: Any, model: Any) -> Any:
    """A copy of an NNX model holding the evaluation weights of an ``nnx.Optimizer``.

    Args:
      optimizer: the ``flax.nnx.Optimizer`` training ``model``.
      model: the ``nnx.Module`` it updates.

    Returns:
      A clone of ``model`` whose variables selected by the optimizer's ``wrt``
      filter hold ``evaluation_params``; ``model`` itself is untouched.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> optimizer = nnx.Optimizer(model, optaxtra.ranger(0.1), wrt=nnx.Param)
      >>> grads = nnx.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
      >>> _ = optimizer.update(model, grads)
      >>> start = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> bool((optaxtra.evaluation_model(optimizer, model).bias[...] == start.bias[...]).all())
      True
    """
    from flax import nnx  # imported here: only NNX users pay for it

    params = nnx.as_pure(nnx.state(model, optimizer.wrt, graph=optimizer.graph))
    chosen = evaluation_params(nnx.as_pure(optimizer.opt_state), params)
    evaluated = nnx.clone(model)
    nnx.update(evaluated, chosen)
    return evaluated


register_evaluation_params(LookaheadState, lambda state: state.slow, priority=0)
register_evaluation_params(EmaAveragingState, lambda state: state.average, priority=1)
register_evaluation_params(SwaAveragingState, lambda state: state.average, priority=1)
register_evaluation_params(
    ScheduleFreeState, lambda state, params: schedule_free_eval_params(state, params), priority=1, needs_params=True
)
