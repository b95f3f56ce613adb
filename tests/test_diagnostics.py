"""``optaxtra.diagnostics`` reads every optimizer's state, plain or held by ``flax.nnx.Optimizer``.

An ``nnx.Optimizer`` keeps the optax state with each array wrapped in an
``OptArray``; ``diagnostics`` must give the same keys and values as for the
plain state, for every optimizer in ``OPTIMIZERS`` and every wrapper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import optaxtra


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.dense = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dense(x)


X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)


def loss(model: Model) -> jax.Array:
    return jnp.mean((model(X) - 1.0) ** 2)


WRAPPERS = {
    "lookahead": lambda lr: optaxtra.lookahead(optaxtra.adam(lr), sync_period=2),
    "ema_averaging": lambda lr: optaxtra.ema_averaging(optaxtra.radam(lr), decay=0.9),
    "swa_averaging": lambda lr: optaxtra.swa_averaging(optaxtra.lamb(lr), start_step=1),
    "switch": lambda lr: optaxtra.switch(optaxtra.adam(lr), optaxtra.sgd(lr, momentum=0.9), 2),
    "swats": lambda lr: optaxtra.swats(lr),
    "skip_nonfinite": lambda lr: optaxtra.skip_nonfinite(optaxtra.ranger(lr)),
    "inject_hyperparams": lambda lr: optax.inject_hyperparams(optaxtra.ralamb)(learning_rate=lr),
}
FACTORIES = {**optaxtra.OPTIMIZERS, **WRAPPERS}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_diagnostics_of_an_nnx_optimizer_equal_those_of_the_plain_state(name):
    tx = FACTORIES[name](1e-2)
    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    params = nnx.state(model, nnx.Param)
    plain_params = jax.tree.map(lambda x: x, nnx.to_pure_dict(params))
    state = tx.init(plain_params)
    for _ in range(3):
        grads = nnx.grad(loss)(model)
        plain_grads = nnx.to_pure_dict(grads)
        updates, state = tx.update(plain_grads, state, plain_params)
        plain_params = optax.apply_updates(plain_params, updates)
        optimizer.update(model, grads)
    ours, expected = optaxtra.diagnostics(optimizer.opt_state), optaxtra.diagnostics(state)
    assert expected and sorted(ours) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-6, err_msg=key)


def test_diagnostics_docstring_names_every_key_family():
    """Each registered reader's keys are listed in ``diagnostics``' docstring."""
    from optaxtra._diagnostics import _REGISTRY  # the readers; their names, without path prefixes
    from optaxtra._trees import find_states

    documented = optaxtra.diagnostics.__doc__
    params = {"w": jnp.ones(3)}
    keys = set()
    for factory in FACTORIES.values():
        tx = factory(1e-2)
        state = tx.init(params)
        _, state = tx.update({"w": jnp.ones(3)}, state, params)
        for _, found in find_states(state, tuple(_REGISTRY)):
            keys |= {key.split("/")[0] for key in _REGISTRY[type(found)](found)}
    missing = {key for key in keys if f"``{key}" not in documented}
    assert not missing, missing
