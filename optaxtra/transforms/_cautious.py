"""``cautious``: zero the update entries that point against the gradient, for any optimizer."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .._diagnostics import register_diagnostics, spread
from .._hyperparams import compute_dtype, is_exactly_zero
from .._leaves import frozen_update, is_trainable
from .._tree_checks import check_state_type
from .._validation import check_choice, check_real
from .._xla import overwrite

__all__ = ["CautiousState", "cautious"]

Orientation = Literal["descent", "direction"]
Rescale = Literal["mean", "count_plus_one"]


class CautiousState(NamedTuple):
    """State of ``cautious``.

    Attributes:
      inner: the wrapped transformation's state.
      kept: for each trainable leaf, the fraction of its entries the last
        update kept (float32 scalars, 1 before the first update), None for
        frozen (integer, boolean) leaves. Read by ``optaxtra.diagnostics``.
    """

    inner: Any
    kept: Any


def cautious(
    inner: optax.GradientTransformation,
    *,
    orientation: Orientation = "descent",
    rescale: Rescale = "mean",
    floor: float = 1e-3,
    factor: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Keeps only the entries of ``inner``'s update that agree with the gradient.

    Per leaf, with ``g`` the updates this wrapper receives and ``u`` what
    ``inner`` returns for them:

    .. math::
      \phi = [\,s\,\mathrm{Re}(u \bar g) > 0\,],\quad
      w = \phi + f (1 - \phi),\quad
      u \leftarrow u\, w / \max(\mathrm{mean}(w), \text{floor})

    with ``s = -1`` for ``orientation="descent"`` (``u`` is a step to add to
    the params: the output of a whole optimizer, ``optax.adamw(...)``) and
    ``s = +1`` for ``"direction"`` (``u`` has the gradient's sign: a
    direction such as ``scale_by_adam()`` before ``scale_by_learning_rate``).
    ``f`` is ``factor`` (0: the masked entries are zeroed). The rescaling
    keeps the update's average size; ``rescale="count_plus_one"`` uses
    pytorch-optimizer's ``numel / (sum(w) + 1)`` instead.

    The mask needs the gradient, which a piece further down an
    ``optax.chain`` never sees; so caution wraps what it masks. Wrapping a
    whole optimizer masks its weight decay too; the authors' rule (timm's
    ``cadamw``, lion-pytorch) leaves decoupled decay unmasked, which is
    ``chain(cautious(direction, orientation="direction"),
    add_decayed_weights(wd), scale_by_learning_rate(lr))``, as
    ``cautious_adamw`` does.

    For a complex leaf, an entry agrees when ``Re(u conj(g)) > 0`` (the dot
    product of the two as vectors in the plane), so that a phase rotation of
    params and gradients rotates the trajectory.

    Args:
      inner: the transformation whose updates are masked.
      orientation: ``"descent"`` (default: ``inner`` is a whole optimizer,
        its updates point against the gradient) or ``"direction"`` (its
        updates point along it).
      rescale: ``"mean"`` (default; Liang et al.'s code, timm):
        ``1 / max(mean(w), floor)``; ``"count_plus_one"``
        (pytorch-optimizer's ``cautious=True``): ``numel / (sum(w) + 1)``,
        which is not 1 when every entry is kept.
      floor: the least ``mean(w)`` divided by under ``"mean"``, > 0: timm's
        1e-3 by default, lion-pytorch's 1e-5.
      factor: what the masked entries are multiplied by before rescaling, in
        [0, 1] (lion-pytorch's ``cautious_factor``); a number or array.

    Returns:
      An ``optax.GradientTransformation`` with state ``CautiousState``.

    Example:
      The second entry of the momentum points against its gradient and is
      dropped:

      >>> import jax.numpy as jnp, optax, optaxtra
      >>> tx = optaxtra.cautious(optax.trace(decay=0.9), orientation="direction")
      >>> state = tx.init(jnp.zeros(3))
      >>> _, state = tx.update(jnp.array([1.0, 1.0, 1.0]), state)
      >>> updates, state = tx.update(jnp.array([1.0, -0.5, -2.0]), state)
      >>> print(jnp.round(updates, 4))  # momentum [1.9, 0.4, -1.1]; 2 of 3 kept: times 3/2
      [ 2.85  0.   -1.65]
      >>> optaxtra.diagnostics(state)["cautious/kept_mean"]
      Array(0.6666667, dtype=float32)

    References:
      Liang, Chen, Liu & Liu, "Cautious Optimizers: Improving Training with
      One Line of Code", 2024. https://arxiv.org/abs/2411.16085
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}.")
    check_choice("orientation", orientation, ("descent", "direction"))
    check_choice("rescale", rescale, ("mean", "count_plus_one"))
    check_real("floor", floor, 0.0, low_open=True, allow_schedule=False)
    check_real("factor", factor, 0.0, 1.0, allow_schedule=False)
    sign = -1.0 if orientation == "descent" else 1.0

    def init_fn(params):
        kept = jax.tree.map(
            lambda p: jnp.ones([], jnp.float32) if is_trainable(p) else None, params
        )
        return CautiousState(inner.init(params), kept)

    def update_fn(updates, state, params=None):
        check_state_type(state, CautiousState, "cautious")
        new_updates, new_inner = inner.update(updates, state.inner, params)
        f = None if is_exactly_zero(factor) else jnp.asarray(factor, jnp.float32)

        def leaf(u, g, previous):
            if not is_trainable(u):
                return frozen_update(u), None
            dtype = compute_dtype(u.dtype)
            wide = u.astype(dtype)
            alignment = sign * jnp.real(wide * jnp.conj(jnp.asarray(g).astype(dtype)))
            aligned = alignment > 0
            if aligned.size == 0:
                return u, previous
            size = aligned.size
            count = jnp.sum(aligned, dtype=jnp.int32).astype(jnp.float32)
            kept = count / size
            real = jnp.finfo(dtype).dtype
            if f is None:
                weights, weight_sum = aligned.astype(real), count
            else:
                weights = jnp.where(aligned, 1, f).astype(real)
                weight_sum = count + f * (size - count)
            if rescale == "mean":
                scale = weights / jnp.maximum(weight_sum / size, floor).astype(real)
            else:
                scale = weights * (size / (weight_sum + 1)).astype(real)
            # A product, not a select: a non-finite entry stays non-finite where it is masked.
            return (wide * scale.astype(dtype)).astype(u.dtype), overwrite(previous, kept)

        treedef = jax.tree.structure(new_updates)
        flat = [treedef.flatten_up_to(t) for t in (new_updates, updates)]
        kept_flat = treedef.flatten_up_to(state.kept)
        pairs = [leaf(u, g, k) for u, g, k in zip(*flat, kept_flat)]
        return (
            treedef.unflatten([p[0] for p in pairs]),
            CautiousState(new_inner, treedef.unflatten([p[1] for p in pairs])),
        )

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(CautiousState, lambda s: spread("cautious/kept_", jax.tree.leaves(s.kept)))
