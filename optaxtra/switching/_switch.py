"""``switch``: run one optimizer, then another, in one compiled program."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._xla import increment
from .._tree_checks import check_state_type
from .._validation import check_callable, check_int

__all__ = ["HandOff", "SwitchState", "switch", "switch_when"]

HandOff = Callable[[Any, Any], Any]
"""``(first_state, second_state) -> second_state``, called once, at the switch."""


class SwitchState(NamedTuple):
    """State of ``switch`` and ``switch_when``.

    Attributes:
      count: number of updates applied (int32).
      switched_at: how many updates the first optimizer ran before the
        switch, or -1 while it is still running (int32).
      first: the first optimizer's state (kept, frozen, after the switch).
      second: the second optimizer's state (its ``init`` state, untouched,
        until the switch).
    """

    count: jax.Array
    switched_at: jax.Array
    first: Any
    second: Any


def _check_transformation(name: str, value: Any) -> None:
    if not isinstance(value, optax.GradientTransformation):
        raise TypeError(f"{name} must be an optax.GradientTransformation, got {type(value).__name__}.")


def _check_hand_off(hand_off: HandOff, first_state: Any, second_state: Any) -> None:
    """Raises unless ``hand_off`` returns a state shaped exactly like ``second_state``."""
    expected = jax.eval_shape(lambda: second_state)
    got = jax.eval_shape(hand_off, first_state, second_state)
    if jax.tree.structure(got) != jax.tree.structure(expected):
        raise TypeError(
            "hand_off must return a state with the second optimizer's structure.\n"
            f"  expected: {jax.tree.structure(expected)}\n  got: {jax.tree.structure(got)}"
        )
    for want, have in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        if (want.shape, want.dtype) != (have.shape, have.dtype):
            raise TypeError(
                "hand_off must keep every leaf's shape and dtype: expected "
                f"{want.dtype}{list(want.shape)}, got {have.dtype}{list(have.shape)}."
            )


def switch_when(
    first: optax.GradientTransformation,
    second: optax.GradientTransformation,
    should_switch: Callable[[Any, jax.Array], jax.Array],
    hand_off: HandOff | None = None,
) -> optax.GradientTransformation:
    """``switch`` with the moment chosen by a predicate of the first optimizer's state.

    After each update of ``first``, ``should_switch(first_state, updates_done)``
    (a bool scalar, traceable) decides whether the next update is
    ``second``'s; if so ``hand_off`` runs at once. ``switch`` is this with
    ``updates_done >= switch_step``; ``swats`` switches when its SGD
    learning-rate estimate settles.

    Args:
      first: the optimizer that runs first.
      second: the optimizer that runs after the switch.
      should_switch: ``(first_state, updates_done) -> bool``, also asked of
        the ``init`` states with ``updates_done = 0``.
      hand_off: ``(first_state, second_state) -> second_state``; None starts
        ``second`` from its ``init`` state.

    Returns:
      An ``optax.GradientTransformation`` with state ``SwitchState``.

    Example:
      >>> import jax.numpy as jnp, optax, optaxtra
      >>> decaying = optaxtra.adam(optax.exponential_decay(0.1, 1, 0.5))
      >>> low_rate = lambda state, done: (done > 0) & (state[-1].learning_rate < 0.03)
      >>> tx = optaxtra.switch_when(decaying, optaxtra.sgd(0.01), low_rate)
      >>> params = jnp.zeros(1)
      >>> state = tx.init(params)
      >>> for _ in range(4):  # Adam at 0.1, 0.05, 0.025, then SGD
      ...     updates, state = tx.update(jnp.ones(1), state, params)
      >>> int(state.switched_at), updates
      (3, Array([-0.01], dtype=float32))
    """
    return switching("switch_when", first, second, should_switch, hand_off)


def switching(
    name: str,
    first: optax.GradientTransformation,
    second: optax.GradientTransformation,
    should_switch: Callable[[Any, jax.Array], jax.Array],
    hand_off: HandOff | None = None,
) -> optax.GradientTransformation:
    """``switch_when``, with ``name`` (the public piece built on it) in its error messages."""
    _check_transformation("first", first)
    _check_transformation("second", second)
    check_callable("should_switch", should_switch, "(first_state, updates_done) -> bool")
    if hand_off is not None:
        check_callable("hand_off", hand_off, "(first_state, second_state) -> second_state")
    hand_off = hand_off or (lambda first_state, second_state: second_state)

    def hand_off_if(switch_now, first_state, second_state):
        return jax.lax.cond(switch_now, hand_off, lambda _, s: s, first_state, second_state)

    def init_fn(params):
        first_state, second_state = first.init(params), second.init(params)
        _check_hand_off(hand_off, first_state, second_state)
        switch_now = jnp.asarray(should_switch(first_state, jnp.zeros([], jnp.int32)), bool)
        return SwitchState(
            count=jnp.zeros([], jnp.int32),
            switched_at=jnp.where(switch_now, 0, -1).astype(jnp.int32),
            first=first_state,
            second=hand_off_if(switch_now, first_state, second_state),
        )

    def update_fn(updates, state, params=None):
        check_state_type(state, SwitchState, name)
        done = increment(state.count)

        def run_first(_):
            new_updates, first_state = first.update(updates, state.first, params)
            switch_now = jnp.asarray(should_switch(first_state, done), bool)
            second_state = hand_off_if(switch_now, first_state, state.second)
            return new_updates, first_state, second_state, jnp.where(switch_now, done, -1)

        def run_second(_):
            new_updates, second_state = second.update(updates, state.second, params)
            return new_updates, state.first, second_state, state.switched_at

        new_updates, first_state, second_state, switched_at = jax.lax.cond(
            state.switched_at >= 0, run_second, run_first, None
        )
        return new_updates, SwitchState(done, switched_at, first_state, second_state)

    return optax.GradientTransformation(init_fn, update_fn)


def switch(
    first: optax.GradientTransformation,
    second: optax.GradientTransformation,
    switch_step: int,
    *,
    hand_off: HandOff | None = None,
) -> optax.GradientTransformation:
    """Runs ``first`` for ``switch_step`` updates, then ``second``, without a Python branch.

    Both states live in ``SwitchState`` and ``lax.cond`` picks the optimizer
    on each update, so a jitted training step compiles once and the switch
    happens inside it. On the last update of ``first``, ``hand_off`` builds
    ``second``'s state from both (e.g. ``carry_first_moment``: Adam's first
    moment becomes SGD's momentum buffer). ``second``'s pieces count their
    own updates, so its schedules start at 0 at the switch.

    Args:
      first: the optimizer for the first ``switch_step`` updates.
      second: the optimizer from then on.
      switch_step: updates made by ``first``, an integer >= 0.
      hand_off: ``(first_state, second_state) -> second_state``, which must
        keep the structure, shapes and dtypes of ``second_state`` (checked
        in ``init``); None starts ``second`` from its ``init`` state.

    Returns:
      An ``optax.GradientTransformation`` with state ``SwitchState``.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.switch(optaxtra.adam(0.1), optaxtra.sgd(0.1, momentum=0.9), switch_step=2,
      ...                      hand_off=optaxtra.carry_first_moment(scale=10.0))
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jnp.ones(2), state, params)
      >>> float(optaxtra.diagnostics(state)["switch/switched"]), int(state.switched_at)
      (1.0, 2)
    """
    check_int("switch_step", switch_step, 0)
    return switching("switch", first, second, lambda _, done: done >= switch_step, hand_off)


register_diagnostics(
    SwitchState,
    lambda s: {"switch/switched": s.switched_at >= 0, "switch/switched_at": s.switched_at},
)
