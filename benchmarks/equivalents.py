"""optax's counterpart of each optaxtra optimizer, with the settings that make them comparable.

``OPTAX_EQUIVALENTS[name](learning_rate)`` builds the optax optimizer that
computes what ``optaxtra.OPTIMIZERS[name]`` computes, up to documented
convention differences (eps placement in RAdam, the AMSGrad maximum): the
benchmark compares speed, not numbers. ``None`` where optax has none.
Lookahead in optax keeps the slow weights in the params (``LookaheadParams``);
``Entry`` hides that difference from the timing loop.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["OPTAX_EQUIVALENTS", "Entry", "optaxtra_entry", "optax_entry"]


def _lookahead(inner: optax.GradientTransformation, sync_period: int) -> optax.GradientTransformation:
    return optax.lookahead(inner, sync_period=sync_period, slow_step_size=0.5)


OPTAX_EQUIVALENTS: dict[str, Callable[[float], optax.GradientTransformation] | None] = {
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr, weight_decay=1e-2),
    "amsgrad": lambda lr: optax.amsgrad(lr),
    "radam": lambda lr: optax.radam(lr),
    "ranger": lambda lr: _lookahead(optax.radam(lr, b1=0.95, eps=1e-5), 6),
    "lamb": lambda lr: optax.lamb(lr, weight_decay=1e-2),
    "ralamb": lambda lr: optax.chain(
        optax.scale_by_radam(eps=1e-6),
        optax.add_decayed_weights(1e-2),
        optax.scale_by_trust_ratio(),
        optax.scale_by_learning_rate(lr),
    ),
    "lars": lambda lr: optax.lars(lr, weight_decay=1e-4),
    "sgd": lambda lr: optax.sgd(lr),
    "sgd_momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "sgd_nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "lookahead_adam": lambda lr: _lookahead(optax.adam(lr), 5),
    "adam_2k": None,
    "adam_eps": lambda lr: optax.adam(lr, eps=1e-4),
    "adopt": lambda lr: optax.contrib.adopt(lr),
    "ademamix": lambda lr: optax.contrib.ademamix(lr),
    "simplified_ademamix": lambda lr: optax.contrib.simplified_ademamix(lr),
    # optax.nadam has no momentum schedule (optaxtra's momentum_decay=None): the same work.
    "nadam": lambda lr: optax.nadam(lr),
    "nadamw": lambda lr: optax.nadamw(lr, weight_decay=1e-2),
    "adamax": lambda lr: optax.adamax(lr),
    "lion": lambda lr: optax.lion(lr, weight_decay=0.0),
    "stable_adamw": None,
    "adamc": lambda lr: optax.adamw(lr, weight_decay=1e-2),
    "cautious_adamw": None,
    "cautious_lion": None,
    "schedule_free_adamw": lambda lr: optax.contrib.schedule_free_adamw(lr, b1=0.9, weight_decay=0.0),
    "schedule_free_sgd": lambda lr: optax.contrib.schedule_free_sgd(lr, b1=0.9),
    "schedule_free_radam": None,  # optax's schedule_free around optax.radam rectifies the direction, not the LR
    # optax runs Newton-Schulz in the params' dtype (float32); optaxtra's default is torch's bfloat16.
    "muon": lambda lr: optax.contrib.muon(lr, weight_decay=0.1, adam_weight_decay=1e-2),
}


class Entry(NamedTuple):
    """What the timing loop needs: ``step(params, state, grads) -> (params, state)`` and its inputs.

    ``state_bytes_extra`` counts optimizer memory kept outside ``state`` (the
    slow weights that optax's lookahead keeps in the params).
    """

    step: Callable[[Any, Any, Any], tuple[Any, Any]]
    params: Any
    state: Any
    state_bytes_extra: int


def _copy(tree: Any) -> Any:
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def _apply_step(tx: optax.GradientTransformation):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def optaxtra_entry(tx: optax.GradientTransformation, params: Any) -> Entry:
    """An optaxtra optimizer on fresh copies of ``params``; the state comes from ``tx.init``."""
    params = _copy(params)
    return Entry(_apply_step(tx), params, tx.init(params), 0)


def optax_entry(tx: optax.GradientTransformation, params: Any, name: str) -> Entry:
    """optax's optimizer; lookahead ones get ``LookaheadParams`` and gradients of the fast weights."""
    params = _copy(params)
    if name not in ("ranger", "lookahead_adam"):
        return Entry(_apply_step(tx), params, tx.init(params), 0)
    both = optax.LookaheadParams(fast=params, slow=_copy(params))

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    extra = sum(x.nbytes for x in jax.tree.leaves(both.slow))
    return Entry(step, both, tx.init(both), extra)
