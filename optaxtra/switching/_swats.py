"""SWATS: Adam that switches to SGD once its projected SGD learning rate settles."""

from __future__ import annotations

import functools
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics
from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve_decay
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_tree_matches
from .._validation import check_real
from ..optimizers._chain import unless_zero
from ..transforms._adam import scale_by_adam
from ..transforms._learning_rate import scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._weight_decay import add_decayed_weights
from ._switch import switching
from ._swats_fused import fused_swats_switch

__all__ = ["SwatsAdamState", "SwatsSgdState", "swats"]


class SwatsAdamState(NamedTuple):
    """State of SWATS's Adam phase.

    Attributes:
      count: number of Adam updates applied (int32).
      inner: the Adam chain's state.
      ema: ``lambda_k``, the moving average of the projected rates (float32).
      sgd_learning_rate: ``Lambda_k = lambda_k / (1 - b2**k)``, the SGD rate
        SWATS switches to (float32).
      projected_learning_rate: ``gamma_k`` of the last Adam step (float32).
      settled: whether the last update met the switching criterion (bool).
    """

    count: jax.Array
    inner: Any
    ema: jax.Array
    sgd_learning_rate: jax.Array
    projected_learning_rate: jax.Array
    settled: jax.Array


class SwatsSgdState(NamedTuple):
    """State of SWATS's SGD phase.

    Attributes:
      count: number of updates applied, Adam phase included (int32).
      momentum: ``v``, a pytree like the params (float32 for half precision).
      learning_rate: ``Lambda``, fixed at the switch (float32).
    """

    count: jax.Array
    momentum: Any
    learning_rate: jax.Array


def _sum_of_products(a: Any, b: Any) -> jax.Array:
    """``sum(a * b)`` over every floating leaf, in float32.

    As dot products (``jnp.vdot``): XLA reads both operands in place, where a
    sum of an elementwise product stores the product when an operand is also
    used elsewhere (Adam's step, in SWATS).
    """
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    terms = [jnp.vdot(x.astype(jnp.float32).ravel(), y.astype(jnp.float32).ravel()) for x, y in pairs
             if jnp.issubdtype(x.dtype, jnp.floating)]
    return sum(terms, jnp.zeros([], jnp.float32))


Projection = Callable[[jax.Array, jax.Array, SwatsAdamState], SwatsAdamState]


def _projection(b2: ScalarOrSchedule, atol: float, rtol: float) -> Projection:
    """``(p.g, p.p, state) -> state``: one projection of Adam's step ``p`` onto the gradient.

    ``gamma = p.p / -p.g``, its moving average and bias-corrected estimate, and
    the switching criterion; ``state.inner`` is kept as given.
    """

    def project(step_dot_grad: jax.Array, step_dot_step: jax.Array, state: SwatsAdamState):
        projecting = step_dot_grad != 0
        gamma = step_dot_step / jnp.where(projecting, -step_dot_grad, 1.0)
        beta = resolve_decay(b2, state.count)
        count = state.count + 1
        ema = jnp.where(projecting, beta.rate * state.ema + beta.complement * gamma, state.ema)
        estimate = jnp.where(projecting, ema / beta.debias(count), state.sgd_learning_rate)
        settled = (projecting & (count > 1) & (estimate > 0)
                   & (jnp.abs(estimate - gamma) <= atol + rtol * jnp.abs(gamma)))
        gamma = jnp.where(projecting, gamma, state.projected_learning_rate)
        return SwatsAdamState(count, state.inner, ema, estimate, gamma, settled)

    return project


def _adam_phase(adam: optax.GradientTransformation, project: Projection) -> optax.GradientTransformation:
    """``adam``'s updates, with the projected SGD rate and the switching criterion in the state."""

    def init_fn(params):
        zero = lambda: jnp.zeros([], jnp.float32)  # one array per field: each can be donated
        return SwatsAdamState(
            jnp.zeros([], jnp.int32), adam.init(params), zero(), zero(), zero(), jnp.bool_(False)
        )

    def update_fn(grads, state, params=None):
        steps, inner = adam.update(grads, state.inner, params)
        dots = _sum_of_products(steps, grads), _sum_of_products(steps, steps)
        return steps, project(*dots, state._replace(inner=inner))

    return optax.GradientTransformation(init_fn, update_fn)


def _momentum_step(
    b1: ScalarOrSchedule, state: SwatsSgdState, grads: Any
) -> tuple[Any, Callable[[jax.Array, jax.Array], jax.Array]]:
    """The SGD phase's ``v = b1 v + g``, and ``(v, g) -> -(1 - b1) * learning_rate * v``."""
    check_tree_matches(grads, state.momentum, piece="swats", against="the momentum in the state",
                       expected_dtype=compute_dtype)
    beta = resolve_decay(b1, state.count)
    factor = -beta.complement * state.learning_rate

    def accumulate(v, g):
        return beta.rate.astype(v.dtype) * v + g.astype(v.dtype) if is_trainable(v) else v

    def step(v, g):
        return (factor.astype(v.dtype) * v).astype(g.dtype) if is_trainable(v) else frozen_update(g, v)

    return jax.tree.map(accumulate, state.momentum, grads), step


def _sgd_phase(b1: ScalarOrSchedule) -> optax.GradientTransformation:
    """``v = b1 v + g``, update ``-(1 - b1) * learning_rate * v``, the rate read from the state."""

    def init_fn(params):
        params = jax.tree.map(jnp.asarray, params)
        momentum = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=compute_dtype(p.dtype)), params)
        return SwatsSgdState(jnp.zeros([], jnp.int32), momentum, jnp.zeros([], jnp.float32))

    def update_fn(grads, state, params=None):
        del params
        momentum, step = _momentum_step(b1, state, grads)
        updates = jax.tree.map(step, momentum, grads)
        return updates, SwatsSgdState(state.count + 1, momentum, state.learning_rate)

    return optax.GradientTransformation(init_fn, update_fn)


def swats(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-9,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask | None = None,
    *,
    switch_atol: float = 1e-9,
    switch_rtol: float = 0.0,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""SWATS: Adam until its projected SGD learning rate settles, then momentum SGD at that rate.

    Keskar & Socher's Algorithm 1, with ``g_k`` the gradient (plus
    ``weight_decay * p``, L2 as in torch-optimizer) and ``p_k`` Adam's step:

    .. math::
      \gamma_k = \frac{p_k^\top p_k}{-p_k^\top g_k},\quad
      \lambda_k = b_2 \lambda_{k-1} + (1 - b_2)\gamma_k,\quad
      \Lambda_k = \frac{\lambda_k}{1 - b_2^k}

    (skipped when ``p_k . g_k = 0``). After a step with ``k > 1``,
    ``Lambda_k > 0`` and ``|Lambda_k - gamma_k| <= switch_atol + switch_rtol
    |gamma_k|``, every later update is ``v = b_1 v + g`` (``v`` starting at
    0), ``p <- p - (1 - b_1) Lambda v``. Built as ``switch_when`` of the two
    phases, and compiled as one fused step with the same state (no array
    through ``lax.cond``; ``optaxtra.plain_paths()`` gives the
    ``switch_when`` form). ``optaxtra.diagnostics`` reports ``swats/sgd_learning_rate``
    (``Lambda``), ``swats/projected_learning_rate`` and ``switch/switched``.

    The dot products run over the whole parameter vector, as in the paper's
    Algorithm 1. torch-optimizer 0.3.0's ``SWATS`` differs in three ways:

    * it keeps ``lambda`` per parameter tensor and switches the whole group
      when any one tensor settles, at that tensor's ``Lambda`` (the same for
      a model with a single tensor);
    * its criterion is ``allclose(Lambda, gamma)``: ``switch_atol=1e-8,
      switch_rtol=1e-6`` here (the paper's is ``< 1e-9``); its ``eps``
      defaults to 1e-3;
    * from its second SGD step on, ``grad = buf; grad.mul_(1 - beta1)``
      rescales the momentum buffer itself in place, so it keeps
      ``b = (1 - b_1)(b_1 b + g)`` and steps ``-Lambda b``: an effective
      momentum of ``b_1 (1 - b_1) = 0.09`` instead of the paper's 0.9. Its
      first two SGD steps equal the paper's; the third and later differ.

    Args:
      learning_rate: Adam's rate, a number, array or schedule.
      b1: first-moment decay, also SGD's momentum, in [0, 1).
      b2: second-moment decay, also the decay of ``lambda``, in [0, 1).
      eps: Adam's eps (the paper uses 1e-9 for both eps and the criterion).
      weight_decay: L2 coefficient >= 0, in both phases.
      mask: which params get the L2 term.
      switch_atol: absolute tolerance of the criterion, >= 0. The paper's
        1e-9 is about 8 float32 ulps of ``Lambda ~ 1e-3`` (Adam's rate 1e-3)
        but less than one ulp of ``Lambda ~ 0.1``: scale it with the
        learning rate, or use ``switch_rtol``.
      switch_rtol: relative tolerance of the criterion, >= 0.
      eps_placement: ``"uncorrected"`` (paper and torch-optimizer:
        ``sqrt(v) + eps`` before the bias correction) or ``"corrected"``.
      mu_dtype: storage dtype of Adam's moments.

    Returns:
      An ``optax.GradientTransformation`` with a ``SwitchState`` inside.

    Example:
      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.swats(0.1, switch_atol=1e-8, switch_rtol=1e-6)
      >>> params = jnp.zeros(3)
      >>> state = tx.init(params)
      >>> for _ in range(3):  # a constant gradient: the estimate settles at step 2
      ...     updates, state = tx.update(jnp.array([1.0, 2.0, 4.0]), state, params)
      >>> stats = optaxtra.diagnostics(state)
      >>> float(stats["switch/switched"]), round(float(stats["swats/sgd_learning_rate"]), 4)
      (1.0, 0.0429)

    References:
      Keskar & Socher, "Improving Generalization Performance by Switching
      from Adam to SGD", 2017. https://arxiv.org/abs/1712.07628
    """
    check_real("switch_atol", switch_atol, 0.0, allow_schedule=False)
    check_real("switch_rtol", switch_rtol, 0.0, allow_schedule=False)
    adam = optax.chain(
        scale_by_adam(b1, b2, eps, eps_placement=eps_placement, mu_dtype=mu_dtype),
        scale_by_learning_rate(learning_rate),
    )
    project = _projection(b2, switch_atol, switch_rtol)
    phases = switching(
        "swats",
        _adam_phase(adam, project),
        _sgd_phase(b1),
        should_switch=lambda adam_state, _: adam_state.settled,
        hand_off=lambda adam_state, sgd_state: sgd_state._replace(
            count=adam_state.count, learning_rate=adam_state.sgd_learning_rate
        ),
    )
    return optax.chain(
        unless_zero(weight_decay, lambda: add_decayed_weights(weight_decay, mask=mask)),
        fused_swats_switch(
            phases, learning_rate=learning_rate, b1=b1, b2=b2, eps=eps,
            eps_placement=eps_placement, mu_dtype=mu_dtype, project=project,
            sum_of_products=_sum_of_products,
            momentum_step=functools.partial(_momentum_step, b1),
        ),
    )


register_diagnostics(
    SwatsAdamState,
    lambda s: {
        "swats/sgd_learning_rate": s.sgd_learning_rate,
        "swats/projected_learning_rate": s.projected_learning_rate,
    },
)
