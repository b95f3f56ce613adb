"""``scale_by_muon``: momentum orthogonalised by a Newton–Schulz iteration, for matrices."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._diagnostics import register_diagnostics, spread
from .._hyperparams import compute_dtype
from .._leaves import accumulator_dtype, frozen_update, is_trainable
from .._quantization import is_quantized
from .._quantized_storage import check_state_dtype, float_dtype, init_shapes, load, storage_spec, store, zeros
from .._tree_checks import check_state_type, check_tree_matches
from .._validation import check_bool, check_choice, check_dtype, check_int, check_real
from .._xla import increment, overwrite
from ._schedule_free import lerp

__all__ = ["ScaleByMuonState", "newton_schulz", "scale_by_muon"]

AdjustLr = Literal["original", "match_rms_adamw", "none"]
Layout = Literal["in_out", "out_in"]

#: Jordan's quintic coefficients (a, b, c), as in torch.optim.Muon and optax.contrib.muon.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


class ScaleByMuonState(NamedTuple):
    """State of ``scale_by_muon``.

    Attributes:
      count: number of updates applied so far (int32).
      mu: the momentum, a pytree like the params.
      update_rms: for each matrix, the root mean square of its last update
        (float32 scalars, 0 before the first), a record for
        ``optaxtra.diagnostics``; None for frozen leaves.
    """

    count: jax.Array
    mu: Any
    update_rms: Any


def newton_schulz(
    x: jax.Array,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    steps: int = 5,
    eps: float = 1e-7,
    dtype: Any = jnp.bfloat16,
) -> jax.Array:
    r"""Jordan's quintic Newton–Schulz iteration towards the orthogonal factor of ``x``, as torch's.

    .. math::
      X_0 = G / \max(\lVert G \rVert_F, \epsilon),\quad
      A = X X^\top,\quad X \leftarrow a X + (b A + c A^2) X

    on the wide orientation of ``x`` (transposed when it has more rows than
    columns), in ``dtype``: each of torch's ``addmm`` is a float32 product
    and sum rounded once to ``dtype``, as PyTorch's CPU kernels round. The
    products run at ``Precision.HIGHEST``, so that ``dtype=jnp.float32`` is
    float32 on accelerators too.

    Args:
      x: a matrix.
      coefficients: ``(a, b, c)``.
      steps: the number of iterations, >= 0.
      eps: the least norm divided by.
      dtype: the dtype the iteration runs in (torch: bfloat16).

    Returns:
      A matrix of ``x``'s shape, in ``dtype``.

    Example:
      ``3 I`` is normalised to singular values ``1/sqrt(2)``, which five
      steps take to about 1.1 (the quintic trades exactness for speed):

      >>> import jax.numpy as jnp, optaxtra
      >>> print(optaxtra.newton_schulz(3 * jnp.eye(2)))
      [[1.125 0]
       [0 1.125]]
      >>> print(optaxtra.newton_schulz(3 * jnp.eye(2), dtype=jnp.float32))
      [[1.1081109 0.       ]
       [0.        1.1081109]]

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural
      networks", 2024. https://kellerjordan.github.io/posts/muon/
    """
    a, b, c = coefficients
    wide = x.shape[0] > x.shape[1]
    x = (x.T if wide else x).astype(dtype)
    f32 = lambda v: v.astype(jnp.float32)
    norm = jnp.sqrt(jnp.sum(jnp.square(f32(x)))).astype(dtype)
    x = (f32(x) / f32(jnp.maximum(norm, jnp.asarray(eps, dtype)))).astype(dtype)
    # HIGHEST: a float32 iteration stays float32 on GPUs and TPUs (which would use TF32 or bfloat16 passes).
    highest = jax.lax.Precision.HIGHEST
    matmul = lambda p, q: jnp.matmul(p, q, precision=highest, preferred_element_type=jnp.float32)
    def step(_, x):
        gram = matmul(x, x.T).astype(dtype)
        update = (b * f32(gram) + c * matmul(gram, gram)).astype(dtype)
        return (a * f32(x) + matmul(update, x)).astype(dtype)

    # A traced count too (optax.inject_hyperparams); a static one is unrolled, as a loop of
    # XLA's would copy its counter in every donated step.
    x = jax.lax.fori_loop(0, steps, step, x, unroll=isinstance(steps, int))
    return x.T if wide else x


def scale_by_muon(
    momentum: float = 0.95,
    *,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_steps: int = 5,
    eps: float = 1e-7,
    ns_dtype: Any = "bfloat16",
    adjust_lr: AdjustLr = "original",
    layout: Layout = "in_out",
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Muon's direction for matrices: the momentum, orthogonalised, scaled for the shape.

    .. math::
      B_t = \mu B_{t-1} + (1 - \mu) g_t,\quad
      \tilde B_t = (1 - \mu) g_t + \mu B_t \text{ (nesterov) or } B_t,\quad
      u_t = s\, \mathrm{NS}_5(\tilde B_t)

    with ``s = sqrt(max(1, fan_out / fan_in))`` (``"original"``, Jordan's),
    ``0.2 sqrt(max(fan_in, fan_out))`` (``"match_rms_adamw"``, Liu et al.)
    or 1. The momentum is an average without bias correction (torch's
    ``buf.lerp_(grad, 1 - momentum)``). Every trainable leaf must be a
    matrix: route the others elsewhere (``muon`` sends them to AdamW).

    Conventions (``tests/test_parity_muon.py`` pins each):

    * ``layout``: which axis of a matrix is ``fan_in``. ``"in_out"`` (default):
      JAX's and Flax's kernels ``(in, out)``, used as ``x @ W``; optax reads
      matrices so. ``"out_in"``: PyTorch's ``(out, in)``; ``torch.optim.Muon``
      reads ``shape[:2]`` as ``(out, in)`` whatever the model.
    * ``ns_dtype``: torch runs the iteration in bfloat16 (the default here);
      float32 gives an iteration two implementations can agree on to float32
      rounding.
    * optax.contrib.muon bias-corrects the momentum (``/ (1 - mu^t)``), adds
      ``eps = 1e-8`` to the norm rather than flooring it at 1e-7, and runs the
      iteration in the params' dtype.

    Args:
      momentum: ``mu`` in [0, 1).
      nesterov: use ``(1 - mu) g + mu B`` rather than ``B``.
      ns_coefficients: the iteration's ``(a, b, c)``.
      ns_steps: the number of iterations, in [0, 100).
      eps: the least norm ``B`` is divided by, > 0.
      ns_dtype: the dtype the iteration runs in: bfloat16 or a wider float.
        The default is the name ``"bfloat16"``, not ``jnp.bfloat16``: a dtype
        class is callable, and ``optax.inject_hyperparams`` would call it as a
        schedule.
      adjust_lr: ``"original"``, ``"match_rms_adamw"`` or ``"none"``.
      layout: ``"in_out"`` or ``"out_in"``.
      mu_dtype: storage dtype of the momentum; None keeps the params' (float32
        for float16 params). ``jnp.int8`` (or ``blockwise_int8(...)``) stores
        it block-wise in 8 bits: read back before the iteration, stored after.

    Returns:
      An ``optax.GradientTransformation`` with state ``ScaleByMuonState``.

    Example:
      The gradient's singular values, 3 and 0.5 here, both end near 1 (the
      quintic's fixed points lie in about [0.7, 1.2]); its singular vectors
      are kept:

      >>> import jax.numpy as jnp, optaxtra
      >>> tx = optaxtra.scale_by_muon(ns_dtype=jnp.float32, adjust_lr="none")
      >>> g = jnp.array([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
      >>> updates, state = tx.update(g, tx.init(g))
      >>> print(jnp.round(updates, 2))
      [[0.71 0.   0.  ]
       [0.   1.04 0.  ]]

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural
      networks", 2024. https://kellerjordan.github.io/posts/muon/

      Liu et al., "Muon is Scalable for LLM Training", 2025.
      https://arxiv.org/abs/2502.16982
    """
    check_real("momentum", momentum, 0.0, 1.0, high_open=True, allow_schedule=False)
    check_bool("nesterov", nesterov)
    if len(ns_coefficients) != 3:
        raise ValueError(f"ns_coefficients must be three numbers (a, b, c), got {ns_coefficients!r}.")
    for name, value in zip("abc", ns_coefficients):
        check_real(f"ns_coefficients[{name}]", value, allow_schedule=False)
    check_int("ns_steps", ns_steps, 0, allow_array=True)
    if isinstance(ns_steps, int) and ns_steps >= 100:
        raise ValueError(f"ns_steps must be in [0, 100), got {ns_steps}.")
    check_real("eps", eps, 0.0, low_open=True, allow_schedule=False)
    check_dtype("ns_dtype", ns_dtype)
    if jnp.dtype(ns_dtype) == jnp.float16:
        raise ValueError("ns_dtype must be bfloat16 or a wider float, got float16 (X X^T overflows it).")
    check_choice("adjust_lr", adjust_lr, ("original", "match_rms_adamw", "none"))
    check_choice("layout", layout, ("in_out", "out_in"))
    check_state_dtype("mu_dtype", mu_dtype)
    float_mu = float_dtype(mu_dtype)
    rate = 1.0 - float(momentum)

    def scale(shape: tuple[int, ...]) -> float:
        fan_in, fan_out = shape if layout == "in_out" else shape[::-1]
        if adjust_lr == "original":
            return float(np.sqrt(max(1.0, fan_out / max(fan_in, 1))))
        if adjust_lr == "match_rms_adamw":
            return 0.2 * float(np.sqrt(max(fan_in, fan_out)))
        return 1.0

    def check_matrices(tree: Any) -> None:
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            if is_trainable(leaf) and np.ndim(leaf) != 2:
                raise ValueError(
                    f"scale_by_muon orthogonalises matrices; the leaf at {jax.tree_util.keystr(path)} has "
                    f"shape {np.shape(leaf)}. Route the other params elsewhere (muon sends them to AdamW)."
                )

    def init_fn(params):
        check_matrices(params)
        stored = lambda p: accumulator_dtype(jnp.result_type(p), float_mu)
        mu = jax.tree.map(lambda p: zeros(jnp.zeros_like(p, dtype=stored(p)), mu_dtype, signed=True), params)
        rms = jax.tree.map(lambda p: jnp.zeros([], jnp.float32) if is_trainable(p) else None, params)
        return ScaleByMuonState(jnp.zeros([], jnp.int32), mu, rms)

    def update_fn(updates, state, params=None):
        del params
        check_state_type(state, ScaleByMuonState, "scale_by_muon")
        if storage_spec(mu_dtype) is None:
            check_tree_matches(updates, state.mu, piece="scale_by_muon", against="the state's momentum",
                               expected_dtype=lambda dtype: accumulator_dtype(dtype, mu_dtype))
        else:  # 8-bit: compare with the state these updates would start from
            check_tree_matches(updates, updates, piece="scale_by_muon")
            expected = init_shapes(init_fn, updates).mu
            check_tree_matches(state.mu, expected, piece="scale_by_muon", what="the momentum in the state",
                               against="the momentum these updates need")

        def leaf(g, m, previous):
            if not is_quantized(m) and not is_trainable(m):
                return frozen_update(g, m), m, previous
            m_wide = load(m)  # 8-bit: float32
            dtype = compute_dtype(m_wide.dtype)
            g32 = g.astype(dtype)
            m_new = lerp(m_wide.astype(dtype), g32, jnp.asarray(rate, dtype))
            blended = lerp(g32, m_new, jnp.asarray(momentum, dtype)) if nesterov else m_new
            ortho = newton_schulz(blended, ns_coefficients, ns_steps, eps, ns_dtype).astype(dtype)
            u = jnp.asarray(scale(g.shape), dtype) * ortho
            rms = jnp.sqrt(jnp.mean(jnp.square(u.astype(jnp.float32)))) if u.size else jnp.float32(0)
            kept = store(m_new, m) if is_quantized(m) else m_new.astype(m.dtype)
            return u.astype(g.dtype), kept, overwrite(previous, rms)

        treedef = jax.tree.structure(updates)
        trees = (updates, state.mu, state.update_rms)
        triples = [leaf(*args) for args in zip(*(treedef.flatten_up_to(t) for t in trees))]
        column = lambda i: treedef.unflatten([t[i] for t in triples])
        return column(0), ScaleByMuonState(increment(state.count), column(1), column(2))

    return optax.GradientTransformation(init_fn, update_fn)


register_diagnostics(ScaleByMuonState, lambda s: spread("muon/update_rms_", jax.tree.leaves(s.update_rms)))
