"""Every alias is exactly the chain the README's "The optimizers" block prints, in that order.

The block is parsed; for each line the alias is built with its defaults and
its state is compared, piece by piece, with the states of the pieces the line
names. A piece left out (or added, or moved) by the alias fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import optaxtra

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
(LISTING,) = [block for block in re.findall(r"```python\n(.*?)```", README, re.S) if block.startswith("adam    = chain(")]
LINES = {node.targets[0].id: node.value for node in ast.parse(LISTING).body}
PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
# Arguments a piece cannot be built without.
PIECE_ARGS = {"scale_by_learning_rate": (0.1,), "add_decayed_weights": (0.0,), "decoupled_weight_decay": (0.0,),
              "trace": (0.9,), "lookahead_state": (optaxtra.scale_by_adam(),),
              "clip_by_update_rms": (optaxtra.scale_by_stable_adam(),)}


def piece_state_type(name: str) -> type:
    return type(getattr(optaxtra, name)(*PIECE_ARGS.get(name, ())).init(PARAMS))


def test_the_block_lists_the_optimizers():
    assert {"adam", "adamw", "amsgrad", "radam", "ranger", "lamb", "ralamb", "lars", "sgd", "swats"} <= set(LINES)


@pytest.mark.parametrize("name", sorted(LINES))
def test_alias_is_its_readme_chain(name):
    call = LINES[name]
    state = getattr(optaxtra, name)(0.1).init(PARAMS)
    if call.func.id == "chain":
        pieces = [argument.func.id for argument in call.args]
        assert [type(s) for s in state] == [piece_state_type(piece) for piece in pieces], pieces
    else:  # a wrapper around another alias: ranger = lookahead_state(radam(...), ...)
        assert type(state) is piece_state_type(call.func.id)
        inner = call.args[0]
        keywords = {k.arg: ast.literal_eval(k.value) for k in inner.keywords}
        expected = getattr(optaxtra, inner.func.id)(0.1, **keywords).init(PARAMS)
        assert jax.tree.structure(state.inner) == jax.tree.structure(expected)


def test_adamw_with_decay_independent_of_the_lr_moves_the_decay_after_the_lr():
    state = optaxtra.adamw(0.1, scale_decay_by_lr=False).init(PARAMS)
    assert [type(s) for s in state] == [optaxtra.ScaleByAdamState, optaxtra.ScaleByLearningRateState,
                                        optaxtra.DecoupledWeightDecayState]


@pytest.mark.parametrize("name", ["adam", "adamw", "radam", "lamb", "sgd", "amsgrad", "ralamb", "ranger", "swats"])
def test_a_zero_decay_keeps_the_state_of_any_other_value(name):
    """A piece given the number 0 does nothing but keeps its state, so the chain does not change
    shape between a Python 0 and an array 0 (``inject_hyperparams``, a sweep that includes 0)."""
    zero = getattr(optaxtra, name)(0.1, weight_decay=0.0).init(PARAMS)
    array_zero = getattr(optaxtra, name)(0.1, weight_decay=jnp.asarray(0.0)).init(PARAMS)
    assert jax.tree.structure(zero) == jax.tree.structure(array_zero)


def test_a_zero_decay_reads_no_params():
    tx = optaxtra.add_decayed_weights(0.0)
    updates, _ = tx.update(PARAMS, tx.init(PARAMS))  # no params: nothing to decay
    assert updates is PARAMS
