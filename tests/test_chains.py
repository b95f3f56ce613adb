"""Every alias is exactly the chain the README's "The optimizers" block prints, in that order.

Each line of the block is evaluated as Python, its symbols (``lr``, ``b1``,
``wd``, ...) bound to the alias's own defaults, and the state it builds must
have the alias's state structure: the same pieces (state types), in the same
order, nested the same way. A piece left out, added or moved by the alias
fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
import pytest

import optaxtra
from optaxtra.optimizers._muon import _labels

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
(LISTING,) = [block for block in re.findall(r"```python\n(.*?)```", README, re.S) if block.startswith("adam    = chain(")]
LINES = {node.targets[0].id: ast.get_source_segment(LISTING, node.value) for node in ast.parse(LISTING).body}
PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
# The block's short names for the aliases' arguments.
SHORT = {"lr": "learning_rate", "wd": "weight_decay", "psi": "momentum_decay", "l2": "weight_decay"}


class Symbols(dict):
    """The names a line may use: optaxtra's, optax's ``chain``/``partition``, and the alias's defaults."""

    def __missing__(self, name):
        raise NameError(f"the README line uses {name!r}, which is neither a piece nor an argument of the alias")


def symbols(alias) -> Symbols:
    defaults = {name: (0.1 if p.default is inspect.Parameter.empty else p.default)
                for name, p in inspect.signature(alias).parameters.items()}
    names = Symbols({name: getattr(optaxtra, name) for name in optaxtra.__all__})
    names.update(chain=optax.chain, partition=optax.partition, matrices_to_muon_the_rest_to_adamw=_labels(None))
    names.update(defaults)
    names.update({short: defaults[long] for short, long in SHORT.items() if long in defaults})
    return names


def test_the_block_lists_the_optimizers():
    assert set(optaxtra.OPTIMIZERS) - {"sgd_momentum", "sgd_nesterov", "lookahead_adam", "adam_2k", "adam_eps"} <= set(LINES)


@pytest.mark.parametrize("name", sorted(LINES))
def test_alias_is_its_readme_chain(name):
    alias = getattr(optaxtra, name)
    from_readme = eval(LINES[name], {}, symbols(alias))  # noqa: S307 - the README's own listing
    expected = jax.tree.structure(alias(0.1).init(PARAMS))
    assert jax.tree.structure(from_readme.init(PARAMS)) == expected


def test_the_check_sees_a_piece_out_of_place():
    swapped = "chain(add_decayed_weights(wd, mask=mask), scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))"
    built = eval(swapped, {}, symbols(optaxtra.adamw))  # noqa: S307
    assert jax.tree.structure(built.init(PARAMS)) != jax.tree.structure(optaxtra.adamw(0.1).init(PARAMS))


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
