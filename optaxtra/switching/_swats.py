"""SWATS: Adam that switches to SGD once its projected SGD learning rate settles, as one piece.

Keskar & Socher's algorithm is a switch between two phases, Adam and momentum
SGD; ``scale_by_swats`` writes both out in one update, selecting the state leaf
by leaf (``jnp.where``) and computing the updates from the selected, stored
moments. Branching between the phases with ``lax.cond`` (``switch_when``, the
readable form ``tests/_oracles.py`` keeps and checks this against, switch
included) makes XLA store every array that crosses the conditional, the
updates and both phases' states, and copy those passed through unchanged.
Adam's step is computed here with the moment functions of
``transforms/_moments.py`` (the interface every moment-carrying piece shares),
from the moments after the selection, rather than by calling
``scale_by_adam``'s ``update``: that form keeps one more param-sized temporary
(``tests/test_fast_paths.py::test_fast_swats_keeps_only_adams_step``).
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._validation import check_real
from .._xla import combine_apart, increment
from ..transforms._adam import ScaleByAdamState, scale_by_adam
from ..transforms._learning_rate import ScaleByLearningRateState, scale_by_learning_rate
from ..transforms._masking import Mask
from ..transforms._moments import adaptive_step, check_moments, default_estimator, update_moments
from ..transforms._weight_decay import add_decayed_weights
from ._swats_phases import SwatsAdamState, SwatsSgdState, momentum_step, products, projection, total
from ._switch import SwitchState

__all__ = ["scale_by_swats", "swats"]


def scale_by_swats(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-9,
    *,
    switch_atol: float = 1e-9,
    switch_rtol: float = 0.0,
    eps_placement: Literal["corrected", "uncorrected"] = "uncorrected",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""SWATS's two phases and the switch between them (see ``swats`` for the algorithm).

    The learning rate is an argument of this piece, not of a
    ``scale_by_learning_rate`` after it: the SGD phase steps at the rate the
    Adam phase projected, which the piece decides.

    Args:
      learning_rate: Adam's rate, a number, array or schedule.
      b1: first-moment decay, also SGD's momentum, in [0, 1).
      b2: second-moment decay, also the decay of ``lambda``, in [0, 1).
      eps: Adam's eps.
      switch_atol: absolute tolerance of the switching criterion, >= 0.
      switch_rtol: relative tolerance of the switching criterion, >= 0.
      eps_placement: ``"uncorrected"`` or ``"corrected"`` (see ``swats``).
      mu_dtype: storage dtype of Adam's moments.

    Returns:
      An ``optax.GradientTransformation`` whose state is a ``SwitchState`` of a
      ``SwatsAdamState`` and a ``SwatsSgdState``.
    """
    check_real("switch_atol", switch_atol, 0.0, allow_schedule=False)
    check_real("switch_rtol", switch_rtol, 0.0, allow_schedule=False)
    adam = (scale_by_adam(b1, b2, eps, eps_placement=eps_placement, mu_dtype=mu_dtype),
            scale_by_learning_rate(learning_rate))
    estimator = default_estimator(None)
    project = projection(b2, switch_atol, switch_rtol)

    def init_fn(params):
        zero = lambda: jnp.zeros([], jnp.float32)  # one array per field: each can be donated
        first = SwatsAdamState(
            jnp.zeros([], jnp.int32), tuple(piece.init(params) for piece in adam),
            zero(), zero(), zero(), jnp.bool_(False),
        )
        params = jax.tree.map(jnp.asarray, params)
        momentum = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=compute_dtype(p.dtype)), params)
        second = SwatsSgdState(jnp.zeros([], jnp.int32), momentum, zero())
        return SwitchState(jnp.zeros([], jnp.int32), jnp.full([], -1, jnp.int32), first, second)

    def update_fn(grads, state, params=None):
        del params
        check_state_type(state, SwitchState, "swats")
        adam_state, sgd_state = state.first, state.second
        moments_state, rate_state = adam_state.inner
        check_moments(grads, moments_state.mu, moments_state.nu, estimator, mu_dtype, "swats")
        switched = state.switched_at >= 0
        select = lambda flag, a, b: jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)

        moments = update_moments(
            grads, moments_state.count, moments_state.mu, moments_state.nu,
            b1=b1, b2=b2, eps=eps, estimator=estimator, eps_placement=eps_placement,
            bias_correction=True, freeze_steps=0,
        )
        mu = select(switched, moments_state.mu, moments.mu)
        nu = select(switched, moments_state.nu, moments.nu)
        momentum, momentum_update = momentum_step(b1, sgd_state, grads)
        momentum = select(switched, momentum, sgd_state.momentum)
        # The updates below read the stored moments: without the barrier XLA recomputes the new
        # moments from the old ones in each consumer, and copies the donated old ones to do so.
        mu, nu, momentum = jax.lax.optimization_barrier((mu, nu, momentum))

        rate = resolve(learning_rate, rate_state.count)

        def adam_step(g, m, v):
            if not is_trainable(m):
                return frozen_update(g, m)
            dtype = compute_dtype(g.dtype)
            m_hat = m.astype(dtype) / moments.bias_correction1.astype(dtype)
            v_hat = estimator.corrected(v, moments.bias_correction2)  # v is stored in >= float32
            return adaptive_step(m_hat, v_hat, moments.eps, None).astype(g.dtype)

        # The dot products take Adam's step before the learning rate (the step is then the
        # only array XLA stores, once for the products and the update) and are scaled after.
        directions = jax.tree.map(adam_step, grads, mu, nu)
        steps = jax.tree.map(lambda d: (-rate).astype(d.dtype) * d, directions)
        # Summed apart from the per-leaf products (see optaxtra._xla.combine_apart), and only before the
        # switch: after it the projection is discarded.
        zero = jnp.zeros([], jnp.float32)
        step_dot_grad, step_dot_step = combine_apart(
            lambda t: (total(t[0]), total(t[1])),
            (products(directions, grads), products(directions, directions)),
            unless=switched, otherwise=(zero, zero),
        )
        dots = (-rate * step_dot_grad, rate**2 * step_dot_step)
        inner = (
            ScaleByAdamState(moments.count, mu, nu),
            ScaleByLearningRateState(increment(rate_state.count), rate),
        )
        projected = project(*dots, adam_state._replace(inner=inner))
        # The moments are selected already: their leaves are the same on both sides.
        kept = adam_state._replace(inner=(moments_state._replace(mu=mu, nu=nu), rate_state))
        first = select(switched, kept, projected)
        switch_now = ~switched & projected.settled
        done = increment(state.count)
        handed = sgd_state._replace(count=projected.count, learning_rate=projected.sgd_learning_rate)
        advanced = sgd_state._replace(count=increment(sgd_state.count))
        second = select(switched, advanced, select(switch_now, handed, sgd_state))._replace(
            momentum=momentum
        )
        updates = select(switched, jax.tree.map(momentum_update, momentum, grads), steps)
        switched_at = jnp.where(switched, state.switched_at, jnp.where(switch_now, done, -1))
        return updates, SwitchState(done, switched_at, first, second)

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
    0), ``p <- p - (1 - b_1) Lambda v``. ``swats`` is
    ``chain(add_decayed_weights(weight_decay, mask=mask), scale_by_swats(...))``.
    ``optaxtra.diagnostics`` reports ``swats/sgd_learning_rate``
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
    return optax.chain(
        add_decayed_weights(weight_decay, mask=mask),
        scale_by_swats(
            learning_rate, b1, b2, eps, switch_atol=switch_atol, switch_rtol=switch_rtol,
            eps_placement=eps_placement, mu_dtype=mu_dtype,
        ),
    )
