"""``schedule_free``: Schedule-Free interpolation and averaging around a base direction."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, is_exactly_zero, resolve
from .._leaves import frozen_update, is_trainable
from .._trees import find_states
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_dtype, check_int, check_real
from .._xla import increment, overwrite

__all__ = ["ScheduleFreeState", "schedule_free", "schedule_free_eval_params"]


class ScheduleFreeState(NamedTuple):
    """State of ``schedule_free``.

    Attributes:
      count: number of updates applied so far (int32).
      b1: the interpolation weight ``b1`` (float32), kept so that the
        evaluation point can be read from the state and the params alone.
      z: the base direction's iterate, a pytree like the params.
      weight_sum: the sum of the averaging weights so far, divided by
        ``lr_max ** weight_lr_power`` (float32; see ``schedule_free``).
      lr_max: the largest learning rate applied so far (float32).
      c_t: the averaging weight of the last update (float32), a record for
        ``optaxtra.diagnostics``.
      learning_rate: the learning rate of the last update, warm-up included.
      inner: the base direction's state.
    """

    count: jax.Array
    b1: jax.Array
    z: Any
    weight_sum: jax.Array
    lr_max: jax.Array
    c_t: jax.Array
    learning_rate: jax.Array
    inner: Any


def lerp(start: jax.Array, end: jax.Array, weight: jax.Array) -> jax.Array:
    """``start + weight (end - start)``, arranged as PyTorch's ``lerp`` (exact at weight 1)."""
    diff = end - start
    return jnp.where(jnp.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


def _as_float32(value: Any) -> jax.Array:
    return jnp.asarray(float(value) if isinstance(value, numbers.Real) else value, jnp.float32)


def schedule_free(
    inner: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    *,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    z_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Schedule-Free: a base direction's iterate ``z``, averaged into ``x``, the gradient taken at ``y``.

    With ``d_t`` what ``inner`` returns for the gradient at ``y_t`` (the
    params; a direction with the gradient's sign, decay included, no LR) and
    ``gamma_t`` the learning rate (times ``min(1, (t+1)/warmup_steps)``):

    .. math::
      z_{t+1} = z_t - \gamma_t d_t,\quad
      x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},\quad
      y_{t+1} = (1 - b_1) z_{t+1} + b_1 x_{t+1},\\
      c_{t+1} = \frac{w_{t+1}}{\sum_{i \le t+1} w_i},\quad
      w_t = t^r \,(\max_{i \le t} \gamma_i)^{p}

    with ``p = weight_lr_power``: the warm-up scales both the ``z`` step and
    the averaging weights. The params are ``y``; ``x``, where to evaluate,
    is ``schedule_free_eval_params(state, params)``. As in the authors' code,
    ``y`` is updated in place of ``x`` and only ``z`` is kept; the authors
    write ``y <- lerp(y, z_t, c) + gamma (b_1 (1 - c) - 1) d``, here the
    same is ``lerp(y, z_{t+1}, c) - gamma (1 - b_1)(1 - c) d``, which lets
    XLA update ``y`` and ``z`` in their own buffers. The sum of weights is
    kept divided by ``max gamma ** p``, so that with a constant LR it counts
    exactly (1, 2, 3, ...) in float32 where the authors sum in float64.

    Differences from ``optax.contrib.schedule_free`` (``tests/test_parity_schedule_free.py``
    pins each): optax evaluates a scheduled ``learning_rate`` at a counter
    that starts at 1 while its base optimizer's schedule starts at 0 (optax
    issue #1744; here both read the same count, from 0); optax has no ``r``
    and no ``warmup_steps``; optax's base optimizer applies the LR itself,
    and optax recomputes ``x = (y - (1 - b_1) z) / b_1`` at every step.

    Args:
      inner: the base direction (momentum-free: ``b1`` is the momentum), e.g.
        ``chain(scale_by_adam(b1=0.0), add_decayed_weights(wd))``.
      learning_rate: ``gamma``, a number, array or schedule (evaluated at the
        number of updates applied, 0 first).
      b1: the interpolation between ``z`` and ``x`` (the authors' ``beta1``
        or ``momentum``), in (0, 1).
      warmup_steps: linear warm-up of the LR over this many steps, >= 0 (0:
        none); the same as a schedule ``lr * min(1, (count + 1) / warmup_steps)``.
      r: the power of ``t`` in the averaging weights, >= 0.
      weight_lr_power: the power of the largest LR so far in the averaging
        weights, >= 0 (the authors' default 2).
      z_dtype: storage dtype of ``z``; None keeps the params' dtype.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScheduleFreeState``;
      its ``update`` needs ``params``.

    Example:
      Schedule-Free SGD on ``f(p) = p**2 / 2`` (gradient ``p``): the first
      step has ``c = 1``, so ``y_1 = z_1 = 1 - 0.5 = 0.5``; then
      ``z_2 = 0.25``, ``x_2 = (0.5 + 0.25) / 2``, ``y_2 = 0.1 z_2 + 0.9 x_2``:

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.schedule_free(optax.identity(), learning_rate=0.5, b1=0.9)
      >>> params = jnp.array(1.0)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(params, state, params)
      ...     params = optax.apply_updates(params, updates)
      >>> print(params, jnp.round(optaxtra.schedule_free_eval_params(state, params), 6))
      0.3625 0.375
      >>> optaxtra.diagnostics(state)["schedule_free/c_t"]
      Array(0.5, dtype=float32)

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less
      Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")
    check_real("learning_rate", learning_rate, 0.0)
    check_real("b1", b1, 0.0, 1.0, low_open=True, high_open=True, allow_schedule=False)
    check_int("warmup_steps", warmup_steps, 0, allow_array=True)
    check_real("r", r, 0.0, allow_schedule=False)
    check_real("weight_lr_power", weight_lr_power, 0.0, allow_schedule=False)
    check_dtype("z_dtype", z_dtype)

    def stored(dtype: Any) -> Any:
        """The dtype ``z`` is kept in for a leaf of ``dtype``."""
        return jnp.dtype(z_dtype) if z_dtype is not None and jnp.issubdtype(dtype, jnp.inexact) else dtype

    def init_fn(params):
        def z_leaf(p):
            p = jnp.asarray(p)
            return jnp.array(p, dtype=stored(p.dtype), copy=True)

        zero = lambda: jnp.zeros([], jnp.float32)  # one array per field: each can be donated
        return ScheduleFreeState(
            jnp.zeros([], jnp.int32), _as_float32(b1), jax.tree.map(z_leaf, params),
            zero(), zero(), zero(), zero(), inner.init(params),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("schedule_free needs the params: call update(updates, state, params).")
        check_state_type(state, ScheduleFreeState, "schedule_free")
        check_tree_matches(updates, params, piece="schedule_free")
        check_tree_matches(
            state.z, params, piece="schedule_free", what="the state's z", expected_dtype=stored
        )
        step = increment(state.count)
        rate = resolve(learning_rate, state.count)
        if not is_exactly_zero(warmup_steps):  # an array (inject_hyperparams) may still be 0
            warmup = jnp.minimum(1.0, step.astype(jnp.float32) / jnp.maximum(warmup_steps, 1))
            rate = rate * jnp.where(jnp.asarray(warmup_steps) > 0, warmup, 1.0)
        lr_max = jnp.maximum(state.lr_max, rate)
        # Earlier weights were summed relative to the earlier maximum: rescale them to this one.
        ratio = jnp.where(lr_max > 0, state.lr_max / jnp.where(lr_max > 0, lr_max, 1.0), 1.0)
        weight = jnp.power(step.astype(jnp.float32), jnp.float32(r))
        weight = jnp.where((lr_max > 0) | (weight_lr_power == 0), weight, 0.0)
        weight_sum = state.weight_sum * jnp.power(ratio, jnp.float32(weight_lr_power)) + weight
        c = jnp.where(weight_sum > 0, weight / jnp.where(weight_sum > 0, weight_sum, 1.0), 0.0)
        # Written after c, which every read of the old maximum leads to (never selected: no c is
        # below -inf), so that the new maximum can take the old one's buffer.
        lr_max = jnp.where(c < -jnp.inf, c, lr_max)
        directions, inner_state = inner.update(updates, state.inner, params)
        # The direction reads the params (the gradient, the decay); fused into the z update it
        # would make z's and y's updates each read the buffer the other overwrites, and XLA
        # would copy both on every step. Materialised once, it is read by both.
        directions = jax.lax.optimization_barrier(directions)
        b1_t = state.b1
        # y from the new z: y' = lerp(y, z', c) - gamma (1 - b1)(1 - c) d, equal to the authors'
        # lerp(y, z, c) + gamma (b1 (1 - c) - 1) d; reading z' rather than z orders the two
        # updates, so that each can overwrite its own buffer.
        y_rate = -rate * (1 - b1_t) * (1 - c)

        def leaf(d, y, z):
            if not is_trainable(y):
                return frozen_update(d, y), z
            dtype = compute_dtype(jnp.result_type(y))
            d, y32, z32 = (jnp.asarray(a).astype(dtype) for a in (d, y, z))
            z_new = z32 - rate.astype(dtype) * d
            y_new = lerp(y32, z_new, c.astype(dtype)) + y_rate.astype(dtype) * d
            return (y_new - y32).astype(jnp.result_type(y)), z_new.astype(z.dtype)

        treedef = jax.tree.structure(updates)
        trees = (directions, params, state.z)
        pairs = [leaf(*args) for args in zip(*(treedef.flatten_up_to(t) for t in trees))]
        new_updates = treedef.unflatten([p[0] for p in pairs])
        z = treedef.unflatten([p[1] for p in pairs])
        return new_updates, ScheduleFreeState(
            step, b1_t, z, weight_sum, lr_max, overwrite(state.c_t, c),
            overwrite(state.learning_rate, rate), inner_state,
        )

    return optax.GradientTransformation(init_fn, update_fn)


def schedule_free_eval_params(opt_state: Any, params: Any) -> Any:
    """The Schedule-Free evaluation point ``x = (y - (1 - b1) z) / b1``, from the params ``y``.

    Computed as the authors' ``optimizer.eval()`` does,
    ``lerp(y, z, 1 - 1 / b1)``. Finds the ``ScheduleFreeState`` anywhere in
    ``opt_state`` (inside ``optax.chain``, ``inject_hyperparams``, ...).
    ``optaxtra.evaluation_params`` (and ``evaluation_state``,
    ``evaluation_model``) return it too.

    Args:
      opt_state: the state of an optimizer containing ``schedule_free``.
      params: the params being trained (``y``).

    Returns:
      A pytree like ``params``.

    Raises:
      ValueError: if ``opt_state`` holds no ``ScheduleFreeState``, or several.
    """
    found = find_states(opt_state, ScheduleFreeState)
    if len(found) != 1:
        raise ValueError(
            f"schedule_free_eval_params needs one ScheduleFreeState in the state; found {len(found)}."
        )
    state = found[0][1]

    def leaf(y, z):
        if not is_trainable(y):
            return y
        y = jnp.asarray(y)
        dtype = compute_dtype(y.dtype)
        weight = (1 - 1 / state.b1).astype(dtype)
        return lerp(y.astype(dtype), jnp.asarray(z).astype(dtype), weight).astype(y.dtype)

    return jax.tree.map(leaf, params, state.z)


register_diagnostics(
    ScheduleFreeState,
    lambda s: {"schedule_free/c_t": s.c_t, "schedule_free/learning_rate": s.learning_rate},
)
