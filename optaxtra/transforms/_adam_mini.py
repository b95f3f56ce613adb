"""``scale_by_adam_mini``: Adam with one second moment per block of entries."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from .._hyperparams import ScalarOrSchedule, compute_dtype, resolve, resolve_decay
from .._leaves import first_moment_dtype, frozen_update, is_trainable, second_moment_dtype
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_dtype, check_real
from .._xla import increment
from ._adam_mini_blocks import ADAM_MINI_FLAX_RULES, BlockLayout, Blocks, adam_mini_layouts, check_rules
from ._second_moment import abs_squared

__all__ = ["ScaleByAdamMiniState", "scale_by_adam_mini"]


class ScaleByAdamMiniState(NamedTuple):
    """State of ``scale_by_adam_mini``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: first moment, a pytree like the params.
      nu: one second moment per block: for each param an array of its block
        shape (the param's shape with the averaged axes set to 1; for
        ``AdamMiniHeads``, with the heads axis split first), real, at least
        float32. Frozen leaves keep a zero array like the param.
    """

    count: jax.Array
    mu: Any
    nu: Any


def _nu_like(param: Any, layout: BlockLayout | None, mu_dtype: Any) -> jax.Array:
    if layout is None:
        return jnp.zeros_like(param)
    dtype = second_moment_dtype(jnp.result_type(param), mu_dtype)
    if layout.nu_shape == jnp.shape(param):  # per entry: laid out, and sharded, like the param
        return jnp.zeros_like(param, dtype=dtype)
    return jnp.zeros(layout.nu_shape, dtype)


def _nu_struct(g: Any, m: Any, layout: BlockLayout | None, mu_dtype: Any) -> jax.ShapeDtypeStruct:
    """What ``_nu_like`` makes for the param of gradient ``g`` and first moment ``m``."""
    if layout is None:
        return jax.ShapeDtypeStruct(jnp.shape(m), m.dtype)
    return jax.ShapeDtypeStruct(layout.nu_shape, second_moment_dtype(jnp.result_type(g), mu_dtype))


def scale_by_adam_mini(
    b1: ScalarOrSchedule = 0.9,
    b2: ScalarOrSchedule = 0.999,
    eps: ScalarOrSchedule = 1e-8,
    *,
    rules: Sequence[tuple[str, Blocks]] = ADAM_MINI_FLAX_RULES,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Adam's direction with one second moment per block (Adam-mini).

    .. math::
      m_t = b_1 m_{t-1} + (1 - b_1) g_t,\quad
      v_{B,t} = b_2 v_{B,t-1} + (1 - b_2)\, \mathrm{mean}_{i \in B}\, g_{t,i}^2,\\
      u_{t,i} = \frac{m_t / (1 - b_1^t)}{\sqrt{v_{B,t} / (1 - b_2^t)} + \epsilon}
      \quad (i \in B)

    Each param is cut into blocks by ``rules`` (``adam_mini_blocks``): the
    first ``(pattern, blocks)`` whose regular expression is found in the
    param's ``"/"``-joined path decides; a param no rule matches is one block.
    The default, ``ADAM_MINI_FLAX_RULES``, is the authors' partition in Flax's
    layouts: one block per head for the query and key kernels of
    ``MultiHeadDotProductAttention`` ``(d_model, heads, head_dim)``, one per
    output neuron for the value kernel and every other kernel, one per token
    for an ``Embed`` table, Adam's per-entry ``v`` for biases, one per param
    for norm scales. Write rules for other layouts: PyTorch-style ``(out, in)``
    weights keep axis 0; a Dense query ``(d_model, heads * head_dim)`` is
    ``AdamMiniHeads(heads, axis=-1)``.

    ``eps`` is added to ``sqrt(v_hat)`` after the bias correction, and both
    moments are bias-corrected, as in the authors' ``adam_mini`` 1.1.1. The
    state is ``mu`` (the params' size) and ``nu``: 4 bytes per block (float32),
    e.g. ``heads`` per query kernel and ``out`` per ``Dense`` kernel. Complex
    leaves use ``|g|**2``. Follow with ``scale_by_learning_rate``.

    Args:
      b1: decay of the first moment, in [0, 1); a number, array or schedule.
      b2: decay of the second moments, in [0, 1).
      eps: added to ``sqrt(v_hat)``, >= 0.
      rules: ``(pattern, blocks)`` pairs; ``blocks`` is ``"element"``,
        ``"tensor"``, a tuple of the axes that index the blocks, or an
        ``AdamMiniHeads``.
      mu_dtype: storage dtype of the first moment; None keeps the params'
        dtype. The second moments are kept in at least float32.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByAdamMiniState``.

    Example:
      One block per output neuron: the first step divides each column of the
      kernel by its root mean square (``sqrt((1 + 49) / 2) = 5`` and 2).

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_adam_mini()
      >>> params = {"Dense_0": {"kernel": jnp.zeros((2, 2))}}
      >>> grads = {"Dense_0": {"kernel": jnp.array([[1.0, 2.0], [7.0, -2.0]])}}
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates["Dense_0"]["kernel"], state.nu["Dense_0"]["kernel"].shape)
      [[ 0.2  1. ]
       [ 1.4 -1. ]] (1, 2)

    References:
      Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More",
      ICLR 2025. https://arxiv.org/abs/2406.16793
    """
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0)
    check_rules(rules)
    check_dtype("mu_dtype", mu_dtype, allow_complex=True)

    def init_fn(params):
        params = jax.tree.map(jnp.asarray, params)
        treedef = jax.tree.structure(params)
        layouts = adam_mini_layouts(params, rules)
        mu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=first_moment_dtype(p.dtype, mu_dtype)), params)
        nu = treedef.unflatten(
            [_nu_like(p, layout, mu_dtype) for p, layout in zip(treedef.flatten_up_to(params), layouts)]
        )
        return ScaleByAdamMiniState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByAdamMiniState, "scale_by_adam_mini")
        check_tree_matches(
            updates, state.mu, piece="scale_by_adam_mini", against="the optimizer state's first moments",
            expected_dtype=lambda dtype: first_moment_dtype(dtype, mu_dtype),
        )
        treedef = jax.tree.structure(updates)
        layouts = adam_mini_layouts(updates, rules)
        leaves = zip(treedef.flatten_up_to(updates), treedef.flatten_up_to(state.mu), layouts)
        expected = treedef.unflatten([_nu_struct(g, m, layout, mu_dtype) for g, m, layout in leaves])
        check_tree_matches(
            state.nu, expected, piece="scale_by_adam_mini", what="the second moments in the state",
            against="the blocks the partition rules give",
        )
        b1_t, b2_t, eps_t = resolve_decay(b1, state.count), resolve_decay(b2, state.count), resolve(eps, state.count)
        step = increment(state.count)
        correction1, correction2 = b1_t.debias(step), b2_t.debias(step)

        def leaf(g, m, v, layout):
            if layout is None:
                return m, v, frozen_update(g, m)
            out_dtype, dtype = g.dtype, compute_dtype(g.dtype)
            g = g.astype(dtype)
            m_new = b1_t.rate.astype(dtype) * m.astype(dtype) + b1_t.complement.astype(dtype) * g
            squares = abs_squared(g).reshape(layout.view).astype(v.dtype)
            # A sum over no entries is 0 (a zero-size param): divide by at least 1.
            block_mean = jnp.sum(squares, axis=layout.reduce, keepdims=True) / max(layout.size, 1)
            v_new = b2_t.rate.astype(v.dtype) * v + b2_t.complement.astype(v.dtype) * block_mean
            denominator = jnp.sqrt(v_new / correction2.astype(v.dtype)) + eps_t.astype(v.dtype)
            m_hat = (m_new / correction1.astype(dtype)).reshape(layout.view)
            direction = (m_hat / denominator.astype(dtype)).reshape(g.shape)
            return m_new.astype(m.dtype), v_new, direction.astype(out_dtype)

        flat = (treedef.flatten_up_to(tree) for tree in (updates, state.mu, state.nu))
        results = [leaf(g, m, v, layout) for g, m, v, layout in zip(*flat, layouts)]
        mu, nu, out = (treedef.unflatten([r[i] for r in results]) for i in range(3))
        return out, ScaleByAdamMiniState(step, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)
