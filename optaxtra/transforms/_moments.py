"""The moment estimates shared by the adaptive pieces (Adam, AMSGrad, RAdam, ...).

This module is the one place where first and second moments are updated and
bias-corrected; ``scale_by_adam`` and ``scale_by_radam_rectifier`` only decide
what to do with ``m_hat`` and ``v_hat``.

Conventions:

* Step ``t`` is the 1-based index of the update being computed
  (``t = count + 1``), as in the papers and PyTorch.
* Scheduled ``b1``/``b2`` are evaluated at ``count`` and bias-corrected with
  ``1 - b**t`` of the current value, as PyTorch does when ``OneCycleLR`` cycles
  Adam's betas and as fastai's ``debias`` does.
* ``eps_placement="corrected"`` (torch ``Adam``/``AdamW``, optax, Kingma & Ba):
  ``m_hat / (sqrt(v_hat) + eps)``. ``"uncorrected"`` (torch ``RAdam``,
  pytorch_ranger, the official RAdam code, torch-optimizer's ``Lamb``):
  ``eps`` is added to ``sqrt(v)`` before the bias correction, which equals
  ``m_hat / (sqrt(v_hat) + eps / sqrt(1 - b2**t))``; on the ``v_hat`` scale
  that is about 13x ``eps`` at ``t = 6`` for ``b2 = 0.999``.
* 8-bit storage (``mu_dtype``/``nu_dtype`` of ``jnp.int8`` or
  ``blockwise_int8(...)``): a moment leaf is a ``QuantizedArray``; the step
  dequantizes it, updates it in float32, requantizes it and uses the float32
  values it computed (``optaxtra._quantized_storage``).
* ``freeze_steps = N`` (the RAdam paper's Adam-2k baseline): for the first
  ``N`` steps only the second moment is updated; the first moment stays zero,
  the updates are zero, and the first moment's bias correction counts from
  step ``N + 1``.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from .._hyperparams import ScalarOrSchedule, compute_dtype, is_exactly_zero, resolve, resolve_decay
from .._xla import increment
from .._leaves import first_moment_dtype, frozen_update, is_trainable, leaf_dtype, second_moment_dtype
from .._quantization import is_quantized
from .._quantized_storage import float_dtype, load, storage_spec, store, zeros
from .._stochastic_rounding import stochastic_round_to_bfloat16
from .._tree_checks import check_tree_matches
from .._validation import check_bool, check_choice, check_int, check_real
from ._second_moment import SecondMoment, ema_second_moment

EpsPlacement = Literal["corrected", "uncorrected"]


class MomentEstimates(NamedTuple):
    """What one update of the moments yields (not a state; never stored)."""

    count: jax.Array
    mu: Any
    nu: Any
    m_hat: Any
    v_hat: Any
    eps: jax.Array
    active: bool | jax.Array  # Python True where no step can be frozen (fast path)
    bias_correction1: jax.Array
    bias_correction2: jax.Array


def validate_moment_hyperparams(
    b1: ScalarOrSchedule,
    b2: ScalarOrSchedule,
    eps: ScalarOrSchedule,
    eps_root: ScalarOrSchedule,
    eps_placement: str,
    bias_correction: bool,
    freeze_steps: int,
) -> None:
    check_real("b1", b1, 0.0, 1.0, high_open=True)
    check_real("b2", b2, 0.0, 1.0, high_open=True)
    check_real("eps", eps, 0.0)
    check_real("eps_root", eps_root, 0.0)
    check_choice("eps_placement", eps_placement, ("corrected", "uncorrected"))
    check_bool("bias_correction", bias_correction)
    check_int("freeze_steps", freeze_steps, 0, allow_array=True)


def init_moments(
    params: Any, estimator: SecondMoment, mu_dtype: Any, nu_dtype: Any = None, *, first_moment: bool = True
) -> tuple[Any, Any]:
    """Zero first moments (in ``mu_dtype`` or the params' dtype) and estimator state.

    ``zeros_like`` rather than ``zeros(shape)``: the moments take each param's
    sharding instead of landing on the default device (optax issue #548).
    With ``first_moment=False`` (``b1`` the number 0: ``m`` would be ``g``)
    there is no first moment: ``mu`` is None.
    """
    params = jax.tree.map(jnp.asarray, params)
    mu_float, nu_float = float_dtype(mu_dtype), float_dtype(nu_dtype)
    mu = None
    if first_moment:
        mu = jax.tree.map(
            lambda p: zeros(jnp.zeros_like(p, dtype=first_moment_dtype(p.dtype, mu_float)), mu_dtype, signed=True),
            params,
        )

    def second(p):
        state = estimator.init(p, second_moment_dtype(p.dtype, mu_float, nu_float))
        return jax.tree.map(lambda z: zeros(z, nu_dtype, signed=False), state)

    nu = jax.tree.map(second, params)
    return mu, _by_component(nu, jax.tree.structure(params), estimator)


def _leaf_state_structure(estimator: SecondMoment) -> Any:
    scalar = jnp.zeros((), jnp.float32)
    return jax.tree.structure(jax.eval_shape(lambda: estimator.init(scalar, jnp.dtype(jnp.float32))))


def _by_component(per_leaf: Any, params_structure: Any, estimator: SecondMoment) -> Any:
    """Stores an estimator's per-leaf pairs as a pair of param-like trees.

    AMSGrad keeps ``(v, v_max)`` for each leaf. Kept as a tree of pairs, Flax
    NNX turns the pairs inside its ``State`` into ``State`` objects after the
    first update, and a sharding rule written for the params would not apply.
    Kept as ``(tree of v, tree of v_max)``, every part is laid out like the params.
    """
    inner = _leaf_state_structure(estimator)
    if inner == jax.tree.structure(0):
        return per_leaf
    # Not jax.tree.transpose: an 8-bit leaf is a subtree (codes, absmax, error), not one array.
    pairs = [inner.flatten_up_to(pair) for pair in params_structure.flatten_up_to(per_leaf)]
    return inner.unflatten([params_structure.unflatten([pair[j] for pair in pairs]) for j in range(inner.num_leaves)])


def _by_leaf(nu: Any, params_structure: Any, estimator: SecondMoment) -> Any:
    """The inverse of ``_by_component``: per-leaf states, as the estimator takes them."""
    inner = _leaf_state_structure(estimator)
    if inner == jax.tree.structure(0):
        return nu
    components = [params_structure.flatten_up_to(tree) for tree in inner.flatten_up_to(nu)]
    return params_structure.unflatten([inner.unflatten(parts) for parts in zip(*components)])


def check_moments(
    updates: Any, mu: Any, nu: Any, estimator: SecondMoment, mu_dtype: Any, piece: str, nu_dtype: Any = None
) -> None:
    """Raises unless ``updates`` match the first moments and ``nu`` is ``estimator``'s state.

    ``nu`` is compared with what ``init_moments`` would make for ``mu``, so a
    state restored from an optimizer with another estimator (Adam's into
    AMSGrad) fails here rather than unpacking rows of ``v`` as a pair. Without
    a first moment (``mu`` None) the updates are checked against ``v``. With
    8-bit storage the state is compared with what ``init_moments`` makes for
    the updates (the codes have the params' shapes).
    """
    if storage_spec(mu_dtype) is not None or storage_spec(nu_dtype) is not None:
        _check_stored_moments(updates, mu, nu, estimator, mu_dtype, piece, nu_dtype)
        return
    if mu is None:
        components = _leaf_state_structure(estimator).num_leaves
        v = nu[0] if components > 1 and isinstance(nu, tuple) and len(nu) == components else nu
        check_tree_matches(
            updates, v, piece=piece, against="the optimizer state's second moments",
            expected_dtype=lambda dtype: second_moment_dtype(dtype, mu_dtype, nu_dtype),
        )
        mu = jax.tree.map(lambda u: jax.ShapeDtypeStruct(jnp.shape(u), first_moment_dtype(leaf_dtype(u), mu_dtype)),
                          updates)
    check_tree_matches(
        updates, mu, piece=piece, against="the optimizer state's first moments",
        expected_dtype=lambda dtype: first_moment_dtype(dtype, mu_dtype),
    )
    expected = jax.eval_shape(
        lambda mu: _by_component(
            jax.tree.map(lambda m: estimator.init(m, second_moment_dtype(m.dtype, mu_dtype, nu_dtype)), mu),
            jax.tree.structure(mu), estimator,
        ),
        mu,
    )
    check_tree_matches(
        nu, expected, piece=piece, what="the second moments in the state",
        against="those this optimizer's second-moment estimator keeps",
    )


def _check_stored_moments(
    updates: Any, mu: Any, nu: Any, estimator: SecondMoment, mu_dtype: Any, piece: str, nu_dtype: Any
) -> None:
    def like_param(u):
        dtype = leaf_dtype(u)
        return jax.ShapeDtypeStruct(jnp.shape(u), dtype if is_trainable(u) else jnp.bool_)

    check_tree_matches(updates, updates, piece=piece)  # arrays only, before the abstract init
    abstract = jax.tree.map(like_param, updates)
    expected_mu, expected_nu = jax.eval_shape(
        lambda p: init_moments(p, estimator, mu_dtype, nu_dtype, first_moment=mu is not None), abstract
    )
    if mu is not None:
        check_tree_matches(
            mu, expected_mu, piece=piece, what="the first moments in the state",
            against="those these updates need",
        )
    check_tree_matches(
        nu, expected_nu, piece=piece, what="the second moments in the state",
        against="those these updates need",
    )


def update_moments(
    grads: Any,
    count: jax.Array,
    mu: Any,
    nu: Any,
    *,
    b1: ScalarOrSchedule,
    b2: ScalarOrSchedule,
    eps: ScalarOrSchedule,
    estimator: SecondMoment,
    eps_placement: EpsPlacement,
    bias_correction: bool,
    freeze_steps: int,
) -> MomentEstimates:
    """Updates both moments for one step and returns their corrected estimates.

    ``m_hat`` and ``v_hat`` are in each leaf's compute dtype (float32 for
    half-precision leaves); the returned ``mu`` and ``nu`` keep their storage
    dtypes. A second moment stored in bfloat16 is rounded stochastically (see
    ``optaxtra._stochastic_rounding``). Moments stored narrower than the
    maths enter ``m_hat`` and ``v_hat`` as stored, not as computed: the
    computed float32 values would otherwise be kept as param-sized temporaries
    for the step. ``eps`` is returned on the ``v_hat`` scale
    for the given placement.
    """
    b1_t, b2_t, eps_t = resolve_decay(b1, count), resolve_decay(b2, count), resolve(eps, count)
    step = increment(count)
    # Without frozen steps every step is active: a Python constant, so that the selects
    # for frozen steps are not even traced.
    never_frozen = isinstance(freeze_steps, numbers.Integral) and freeze_steps == 0
    active = True if never_frozen else step > freeze_steps
    if bias_correction:
        bias_correction1 = b1_t.debias(jnp.maximum(step - freeze_steps, 1))
        bias_correction2 = b2_t.debias(step)
    else:
        bias_correction1 = bias_correction2 = jnp.ones((), jnp.float32)
    if eps_placement == "uncorrected":
        eps_t = eps_t / jnp.sqrt(bias_correction2)

    def round_to(new: jax.Array, old: Any, salt: int) -> Any:
        if is_quantized(old):
            return store(new, old)
        if old.dtype == jnp.bfloat16 and new.dtype == jnp.float32:
            return stochastic_round_to_bfloat16(new, step, salt)
        return new.astype(old.dtype)

    def leaf(g, m, n, index):
        like = jax.tree.leaves(n, is_leaf=is_quantized)[0] if m is None else m
        if not is_quantized(like) and not is_trainable(like):
            return m, n, frozen_update(g, like), frozen_update(g, like)
        dtype = compute_dtype(g.dtype)
        g = g.astype(dtype)
        m_old = None if m is None else load(m)
        if m is None:  # b1 = 0: m_t = g_t, and nothing to store
            m_new = g if active is True else jnp.where(active, g, jnp.zeros_like(g))
        else:
            m_new = b1_t.rate.astype(dtype) * m_old.astype(dtype) + b1_t.complement.astype(dtype) * g
        if active is not True and m is not None:
            m_new = jnp.where(active, m_new, m_old.astype(dtype))
        n_new = estimator.update(g, m_new, jax.tree.map(load, n, is_leaf=is_quantized), b2_t, bias_correction2)
        parts, structure = jax.tree.flatten(n_new)
        olds = structure.flatten_up_to(n)
        n_stored = structure.unflatten(
            [round_to(new, old, index * len(parts) + j) for j, (new, old) in enumerate(zip(parts, olds))]
        )

        # Moments stored narrower than the maths (bfloat16) are read back as stored;
        # 8-bit ones are not (the paper's step uses the values it computed).
        def widen(stored, new):
            if is_quantized(stored) or stored.dtype == new.dtype:
                return new
            return stored.astype(new.dtype)

        if m is None:
            m_stored = None
        else:  # the first moment is rounded to nearest (bfloat16 m does not stall: b1 is far from 1)
            m_stored = store(m_new, m) if is_quantized(m) else m_new.astype(m.dtype)
        m_new = m_new if m is None else widen(m_stored, m_new)
        n_new = structure.unflatten([widen(a, b) for a, b in zip(structure.flatten_up_to(n_stored), parts)])
        m_hat = m_new / bias_correction1.astype(dtype)
        v_hat = estimator.corrected(n_new, bias_correction2)
        return m_stored, n_stored, m_hat, v_hat

    treedef = jax.tree.structure(grads)
    firsts = [None] * treedef.num_leaves if mu is None else treedef.flatten_up_to(mu)
    seconds = treedef.flatten_up_to(_by_leaf(nu, treedef, estimator))
    per_leaf = [leaf(*args) for args in zip(treedef.flatten_up_to(grads), firsts, seconds, range(treedef.num_leaves))]
    unzip = lambda i: treedef.unflatten([r[i] for r in per_leaf])
    return MomentEstimates(
        count=step.astype(jnp.int32),
        mu=None if mu is None else unzip(0),
        nu=_by_component(unzip(1), treedef, estimator),
        m_hat=unzip(2),
        v_hat=unzip(3),
        eps=eps_t,
        active=active,
        bias_correction1=bias_correction1,
        bias_correction2=bias_correction2,
    )


def resolve_eps_root(eps_root: ScalarOrSchedule, count: jax.Array) -> jax.Array | None:
    """``eps_root`` at step ``count``, or None where it is the constant 0 (nothing to add)."""
    if is_exactly_zero(eps_root):
        return None
    return resolve(eps_root, count)


def adaptive_step(m_hat: jax.Array, v_hat: jax.Array, eps: jax.Array, eps_root: jax.Array | None):
    """``m_hat / (sqrt(v_hat + eps_root) + eps)`` in ``m_hat``'s dtype (``eps_root`` None: 0)."""
    real = jnp.finfo(m_hat.dtype).dtype
    if eps_root is not None:
        v_hat = v_hat + eps_root.astype(real)
    return m_hat / (jnp.sqrt(v_hat) + eps.astype(real)).astype(m_hat.dtype)


def default_estimator(second_moment: SecondMoment | None) -> SecondMoment:
    if second_moment is None:
        return ema_second_moment()
    if not isinstance(second_moment, SecondMoment):
        raise TypeError(
            "second_moment must be a SecondMoment (e.g. optaxtra.amsgrad_second_moment()), "
            f"got {type(second_moment).__name__}."
        )
    return second_moment
