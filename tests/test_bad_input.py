"""Bad input gets a clear error, at construction, ``init`` or the first ``update``; nothing is mutated.

One table, ``CASES``: each row is a bad input, the exception it must raise,
and fragments its message must contain: the argument's name (or the first
mismatching path in the tree), the value given and the valid range. The list
in ``docs/robustness.md`` is this table in prose.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optaxtra
from optaxtra.compare import charlm_task, digits_task

NAN, INF = math.nan, math.inf


def make_params() -> dict[str, Any]:
    return {
        "dense": {"bias": jnp.zeros(2), "kernel": jnp.ones((3, 2))},
        "scale": jnp.asarray(1.0),
    }


def grads_like(params: Any) -> Any:
    return jax.tree.map(lambda p: jnp.full(jnp.shape(p), 0.5, jnp.result_type(p)), params)


def with_leaf(tree: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of a nested dict with ``path`` ("a/b") set to ``value`` (or removed for ``...``)."""
    tree = jax.tree.map(lambda x: x, tree)
    *parents, last = path.split("/")
    node = tree
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return tree


def update_with(tx: optax.GradientTransformation, grads: Any, params: Any = None, state: Any = None):
    """One update of ``tx`` (initialised on the standard params) with ``grads``."""
    reference = make_params()
    state = tx.init(reference) if state is None else state
    return tx.update(grads, state, reference if params is None else params)


def restore(source: optax.GradientTransformation, target: optax.GradientTransformation):
    """``target.update`` given a state made by ``source.init``."""
    params = make_params()
    return target.update(grads_like(params), source.init(params), params)


class Case(NamedTuple):
    id: str
    call: Callable[[], Any]
    error: type[Exception]
    fragments: tuple[str, ...]


G = grads_like(make_params())

CASES = [
    # Real hyperparameters: name, value, range.
    Case("lr_negative", lambda: optaxtra.adam(-1e-3), ValueError, ("learning_rate", "-0.001", "[0, inf)")),
    Case("lr_nan", lambda: optaxtra.adam(NAN), ValueError, ("learning_rate", "NaN", "[0, inf)")),
    Case("lr_inf", lambda: optaxtra.sgd(INF), ValueError, ("learning_rate", "finite", "inf")),
    Case("lr_string", lambda: optaxtra.adam("1e-3"), TypeError, ("learning_rate", "'1e-3'")),
    Case("lr_bool", lambda: optaxtra.adamw(True), TypeError, ("learning_rate", "boolean", "True")),
    Case("lr_none", lambda: optaxtra.radam(None), TypeError, ("learning_rate", "None")),
    Case("lr_complex", lambda: optaxtra.lamb(1e-3 + 1j), TypeError, ("learning_rate", "complex")),
    Case("lr_array_entry_negative", lambda: optaxtra.adam(jnp.array([1e-3, -1e-3])), ValueError,
         ("learning_rate", "-0.001", "[0, inf)")),
    Case("lr_complex_array", lambda: optaxtra.adam(jnp.ones(2, jnp.complex64)), TypeError,
         ("learning_rate", "complex64")),
    Case("b1_one", lambda: optaxtra.adam(b1=1.0), ValueError, ("b1", "1.0", "[0, 1)")),
    Case("b1_negative", lambda: optaxtra.amsgrad(b1=-0.1), ValueError, ("b1", "-0.1", "[0, 1)")),
    Case("b2_above_one", lambda: optaxtra.adamw(b2=1.5), ValueError, ("b2", "1.5", "[0, 1)")),
    Case("b2_nan", lambda: optaxtra.radam(b2=NAN), ValueError, ("b2", "NaN", "[0, 1)")),
    Case("b2_string", lambda: optaxtra.lamb(b2="0.999"), TypeError, ("b2", "'0.999'")),
    Case("eps_negative", lambda: optaxtra.adam(eps=-1e-8), ValueError, ("eps", "-1e-08", "[0, inf)")),
    Case("eps_root_negative", lambda: optaxtra.adam(eps_root=-1.0), ValueError, ("eps_root", "-1.0", "[0, inf)")),
    Case("eps_nan_ralamb", lambda: optaxtra.ralamb(eps=NAN), ValueError, ("eps", "NaN")),
    Case("weight_decay_negative", lambda: optaxtra.adamw(weight_decay=-0.01), ValueError,
         ("weight_decay", "-0.01", "[0, inf)")),
    Case("weight_decay_nan", lambda: optaxtra.sgd(0.1, weight_decay=NAN), ValueError, ("weight_decay", "NaN")),
    Case("weight_decay_inf", lambda: optaxtra.lamb(weight_decay=INF), ValueError, ("weight_decay", "finite", "inf")),
    Case("decoupled_decay_negative", lambda: optaxtra.decoupled_weight_decay(-0.1), ValueError,
         ("weight_decay", "-0.1", "[0, inf)")),
    Case("momentum_one", lambda: optaxtra.sgd(0.1, momentum=1.0), ValueError, ("momentum", "1.0", "[0, 1)")),
    Case("momentum_negative", lambda: optaxtra.sgd(0.1, momentum=-0.5), ValueError, ("momentum", "-0.5", "[0, 1)")),
    Case("lars_momentum_above_one", lambda: optaxtra.lars(0.1, momentum=1.1), ValueError, ("momentum", "1.1", "[0, 1)")),
    Case("trace_decay_one", lambda: optaxtra.trace(1.0), ValueError, ("decay", "1.0", "[0, 1)")),
    Case("trust_coefficient_zero", lambda: optaxtra.lars(0.1, trust_coefficient=0.0), ValueError,
         ("trust_coefficient", "0.0", "(0, inf)")),
    Case("lars_eps_negative", lambda: optaxtra.lars(0.1, eps=-1.0), ValueError, ("eps", "-1.0", "[0, inf)")),
    Case("max_weight_norm_zero", lambda: optaxtra.lamb(max_weight_norm=0.0), ValueError,
         ("max_weight_norm", "0.0", "(0, inf)")),
    Case("max_ratio_negative", lambda: optaxtra.ralamb(max_ratio=-10.0), ValueError, ("max_ratio", "-10.0", "(0, inf)")),
    Case("threshold_below_four", lambda: optaxtra.radam(threshold=3.0), ValueError, ("threshold", "3.0", "[4, inf)")),
    Case("b2_too_small_for_threshold", lambda: optaxtra.radam(b2=0.5), ValueError, ("b2=0.5", "rho_inf", "threshold")),
    Case("b2_zero_for_rectifier", lambda: optaxtra.radam(b2=0.0), ValueError, ("b2=0.0", "rho_inf=1", "threshold")),
    Case("b2_array_too_small_for_threshold", lambda: optaxtra.ranger(b2=jnp.array(0.5)), ValueError,
         ("rho_inf=3", "threshold")),
    Case("radam_rho_step_zero", lambda: optaxtra.radam_rho(0, 0.999), ValueError, ("step", "0", "[1, inf)")),
    Case("radam_rho_b2_above_one", lambda: optaxtra.radam_rho(5, 1.5), ValueError, ("b2", "1.5", "[0, 1)")),
    Case("radam_rho_b2_nan", lambda: optaxtra.radam_rho(5, NAN), ValueError, ("b2", "NaN")),
    Case("threshold_string", lambda: optaxtra.radam(threshold="5"), TypeError,
         ("threshold", "'5'", "not a schedule")),
    Case("belief_eps_negative", lambda: optaxtra.belief_second_moment(eps=-1.0), ValueError, ("eps", "-1.0", "[0, inf)")),
    # Cautious, Schedule-Free, Muon.
    Case("cautious_floor_zero", lambda: optaxtra.cautious(optaxtra.adam(), floor=0.0), ValueError,
         ("floor", "0.0", "(0, inf)")),
    Case("cautious_factor_above_one", lambda: optaxtra.cautious_lion(factor=1.5), ValueError,
         ("factor", "1.5", "[0, 1]")),
    Case("cautious_orientation", lambda: optaxtra.cautious(optaxtra.adam(), orientation="up"), ValueError,
         ("orientation", "'up'", "'descent'")),
    Case("cautious_rescale", lambda: optaxtra.cautious_adamw(rescale="sum"), ValueError, ("rescale", "'sum'", "'mean'")),
    Case("cautious_inner_string", lambda: optaxtra.cautious("adam"), TypeError, ("inner", "str")),
    Case("cautious_weight_decay_negative", lambda: optaxtra.cautious_weight_decay(-0.1), ValueError,
         ("weight_decay", "-0.1", "[0, inf)")),
    Case("schedule_free_b1_zero", lambda: optaxtra.schedule_free_adamw(b1=0.0), ValueError, ("b1", "0.0", "(0, 1)")),
    Case("schedule_free_lr_negative", lambda: optaxtra.schedule_free_sgd(-1.0), ValueError,
         ("learning_rate", "-1.0", "[0, inf)")),
    Case("schedule_free_warmup_negative", lambda: optaxtra.schedule_free_adamw(warmup_steps=-1), ValueError,
         ("warmup_steps", "-1", ">= 0")),
    Case("schedule_free_r_negative", lambda: optaxtra.schedule_free_radam(r=-1.0), ValueError, ("r", "-1.0", "[0, inf)")),
    Case("schedule_free_weight_lr_power_nan", lambda: optaxtra.schedule_free_sgd(weight_lr_power=NAN), ValueError,
         ("weight_lr_power", "NaN")),
    Case("schedule_free_inner_none", lambda: optaxtra.schedule_free(None, 0.1), TypeError, ("inner", "NoneType")),
    Case("rectified_warmup_b2_one", lambda: optaxtra.rectified_warmup(0.1, b2=1.0), ValueError, ("b2", "1.0", "[0, 1)")),
    Case("muon_momentum_one", lambda: optaxtra.muon(momentum=1.0), ValueError, ("momentum", "1.0", "[0, 1)")),
    Case("muon_ns_steps_100", lambda: optaxtra.muon(ns_steps=100), ValueError, ("ns_steps", "100", "[0, 100)")),
    Case("muon_eps_zero", lambda: optaxtra.muon(eps=0.0), ValueError, ("eps", "0.0", "(0, inf)")),
    Case("muon_layout", lambda: optaxtra.muon(layout="rows"), ValueError, ("layout", "'rows'", "'in_out'")),
    Case("muon_adjust_lr", lambda: optaxtra.muon(adjust_lr="rms"), ValueError, ("adjust_lr", "'rms'", "'original'")),
    Case("muon_weight_decay_negative", lambda: optaxtra.muon(weight_decay=-0.1), ValueError,
         ("weight_decay", "-0.1", "[0, inf)")),
    Case("scale_by_muon_vector", lambda: optaxtra.scale_by_muon().init({"b": jnp.zeros(3)}), ValueError,
         ("matrices", "['b']", "(3,)")),
    # Lookahead.
    Case("sync_period_zero", lambda: optaxtra.lookahead(optaxtra.adam(), sync_period=0), ValueError,
         ("sync_period", "0", ">= 1")),
    Case("sync_period_negative", lambda: optaxtra.ranger(sync_period=-3), ValueError, ("sync_period", "-3", ">= 1")),
    Case("sync_period_float", lambda: optaxtra.lookahead(optaxtra.adam(), sync_period=2.5), TypeError,
         ("sync_period", "2.5", "integer")),
    Case("sync_period_bool", lambda: optaxtra.lookahead(optaxtra.adam(), sync_period=True), TypeError,
         ("sync_period", "True", "integer")),
    Case("slow_step_size_negative", lambda: optaxtra.lookahead(optaxtra.adam(), slow_step_size=-0.1), ValueError,
         ("slow_step_size", "-0.1", "[0, 1]")),
    Case("slow_step_size_above_one", lambda: optaxtra.ranger(slow_step_size=1.5), ValueError,
         ("slow_step_size", "1.5", "[0, 1]")),
    Case("slow_step_size_nan", lambda: optaxtra.lookahead(optaxtra.adam(), slow_step_size=NAN), ValueError,
         ("slow_step_size", "NaN", "[0, 1]")),
    Case("slow_step_size_schedule", lambda: optaxtra.lookahead(optaxtra.adam(), slow_step_size=lambda t: 0.5),
         TypeError, ("slow_step_size", "schedule")),
    Case("lookahead_inner_string", lambda: optaxtra.lookahead("adam"), TypeError, ("inner", "str")),
    Case("skip_nonfinite_inner_none", lambda: optaxtra.skip_nonfinite(None), TypeError, ("inner", "NoneType")),
    # Integers, flags and choices.
    Case("freeze_steps_negative", lambda: optaxtra.adam_2k(freeze_steps=-1), ValueError, ("freeze_steps", "-1", ">= 0")),
    Case("freeze_steps_float", lambda: optaxtra.adam_2k(freeze_steps=10.5), TypeError, ("freeze_steps", "10.5")),
    Case("nesterov_without_momentum", lambda: optaxtra.sgd(0.1, nesterov=True), ValueError, ("nesterov", "momentum")),
    Case("nesterov_without_momentum_lars", lambda: optaxtra.lars(0.1, momentum=None, nesterov=True), ValueError,
         ("nesterov", "momentum")),
    Case("scale_decay_by_lr_string", lambda: optaxtra.adamw(weight_decay=0.1, scale_decay_by_lr="False"), TypeError,
         ("scale_decay_by_lr", "'False'")),
    Case("axis_name_int", lambda: optaxtra.lamb(axis_name=5), TypeError, ("axis_name", "5", "str")),
    Case("axis_name_empty_tuple", lambda: optaxtra.trust_ratio(axis_name=()), TypeError, ("axis_name", "()")),
    Case("switch_when_predicate_int", lambda: optaxtra.switch_when(optaxtra.adam(), optaxtra.sgd(0.1), 5), TypeError,
         ("should_switch", "int", "callable")),
    Case("switch_hand_off_string", lambda: optaxtra.switch(optaxtra.adam(), optaxtra.sgd(0.1), 2, hand_off="x"),
         TypeError, ("hand_off", "'x'", "callable")),
    Case("register_diagnostics_reader_int", lambda: optaxtra.register_diagnostics(optaxtra.TrustRatioState, 5), TypeError,
         ("reader", "5")),
    Case("register_diagnostics_type_string", lambda: optaxtra.register_diagnostics("x", dict), TypeError,
         ("state_type", "'x'")),
    Case("register_evaluation_priority_string", lambda: optaxtra.register_evaluation_params(
        optaxtra.TrustRatioState, lambda s: s, priority="hi"), TypeError, ("priority", "'hi'")),
    Case("charlm_heads_zero", lambda: charlm_task(heads=0), ValueError, ("heads", "0", ">= 1")),
    Case("charlm_context_zero", lambda: charlm_task(context=0), ValueError, ("context", "0", ">= 1")),
    Case("charlm_evaluation_windows_zero", lambda: charlm_task(evaluation_windows=0), ValueError,
         ("evaluation_windows", "0", ">= 1")),
    Case("digits_hidden_zero", lambda: digits_task(hidden=(0,)), ValueError, ("hidden[0]", "0", ">= 1")),
    Case("nesterov_string", lambda: optaxtra.sgd(0.1, momentum=0.9, nesterov="yes"), TypeError, ("nesterov", "'yes'")),
    Case("degenerated_to_sgd_int", lambda: optaxtra.radam(degenerated_to_sgd=1), TypeError, ("degenerated_to_sgd", "1")),
    Case("bias_correction_string", lambda: optaxtra.amsgrad(bias_correction="no"), TypeError, ("bias_correction", "'no'")),
    Case("flip_sign_none", lambda: optaxtra.scale_by_learning_rate(0.1, flip_sign=None), TypeError, ("flip_sign", "None")),
    Case("threshold_comparison", lambda: optaxtra.radam(threshold_comparison="=>"), ValueError,
         ("threshold_comparison", "'=>'", "'>'")),
    Case("eps_placement", lambda: optaxtra.lamb(eps_placement="before"), ValueError, ("eps_placement", "'before'", "'corrected'")),
    Case("max_of", lambda: optaxtra.amsgrad(max_of="max"), ValueError, ("max_of", "'max'", "'raw'")),
    Case("mu_dtype_integer", lambda: optaxtra.adam(mu_dtype=jnp.int32), TypeError, ("mu_dtype", "int32", "floating")),
    Case("mu_dtype_unknown", lambda: optaxtra.radam(mu_dtype="float33"), TypeError, ("mu_dtype", "'float33'")),
    Case("accumulator_dtype_integer", lambda: optaxtra.trace(0.9, accumulator_dtype="int8"), TypeError,
         ("accumulator_dtype", "int8")),
    Case("second_moment_string", lambda: optaxtra.scale_by_adam(second_moment="ema"), TypeError, ("second_moment", "str")),
    Case("exclude_paths_bad_regex", lambda: optaxtra.exclude_paths("bias("), ValueError, ("pattern", "'bias('")),
    # Masks: their leaves at construction, even where the piece they belong to is left out
    # (no decay); their structure against the params at init.
    Case("mask_string_without_decay", lambda: optaxtra.adam(1e-3, mask="garbage"), TypeError, ("mask", "'garbage'", "bools")),
    Case("mask_int_list_without_decay", lambda: optaxtra.adamw(weight_decay=0.0, mask=[1, 2]), TypeError,
         ("mask", "1", "'0'")),
    Case("layer_adaptation_mask_string", lambda: optaxtra.lamb(layer_adaptation_mask="x"), TypeError,
         ("mask", "'x'")),
    # Masks, checked at init.
    Case("mask_wrong_structure", lambda: optaxtra.adamw(mask={"dense": True}).init(make_params()), ValueError,
         ("mask", "structure")),
    Case("mask_leaf_not_bool", lambda: optaxtra.adamw(
        mask={"dense": {"bias": False, "kernel": True}, "scale": 1}).init(make_params()), TypeError, ("mask", "'scale'", "1")),
    Case("mask_callable_wrong_structure", lambda: optaxtra.sgd(
        0.1, weight_decay=0.1, mask=lambda p: [True]).init(make_params()), ValueError, ("mask", "structure")),
    Case("exclude_paths_matching_nothing", lambda: optaxtra.adamw(
        weight_decay=0.1, mask=optaxtra.exclude_paths("nonexistent")).init(make_params()), ValueError,
         ("'nonexistent'", "matches none", "'dense/kernel'")),
    Case("select_paths_matching_nothing", lambda: optaxtra.lamb(
        layer_adaptation_mask=optaxtra.select_paths("kernal")).init(make_params()), ValueError,
         ("'kernal'", "matches none", "'dense/bias'")),
    Case("layer_adaptation_mask_wrong_structure", lambda: optaxtra.lamb(
        layer_adaptation_mask={"w": True}).init(make_params()), ValueError, ("mask", "structure")),
    Case("weight_decay_mask_wrong_structure", lambda: optaxtra.lars(
        0.1, weight_decay=0.1, separate_norms=True, mask={"w": True}).init(make_params()), ValueError,
         ("weight_decay_mask", "structure")),
    # Gradients that do not match the params/state: the first mismatching path.
    Case("grads_missing_leaf", lambda: update_with(optaxtra.adam(), with_leaf(G, "scale", ...)), ValueError,
         ("scale_by_adam", "'scale'", "lack")),
    Case("grads_extra_leaf", lambda: update_with(optaxtra.radam(), with_leaf(G, "dense/extra", jnp.ones(2))), ValueError,
         ("scale_by_radam_rectifier", "'dense/extra'")),
    Case("grads_transposed", lambda: update_with(optaxtra.adamw(), with_leaf(G, "dense/kernel", jnp.ones((2, 3)))),
         ValueError, ("'dense/kernel'", "(2, 3)", "(3, 2)")),
    Case("grads_scalar_for_vector", lambda: update_with(optaxtra.lamb(), with_leaf(G, "dense/bias", jnp.asarray(0.5))),
         ValueError, ("'dense/bias'", "()", "(2,)")),
    Case("grads_float16_for_float32", lambda: update_with(
        optaxtra.adam(), with_leaf(G, "dense/bias", jnp.ones(2, jnp.float16))), TypeError, ("'dense/bias'", "float16", "float32")),
    Case("grads_int_for_float", lambda: update_with(optaxtra.amsgrad(), with_leaf(G, "scale", jnp.asarray(1))), TypeError,
         ("'scale'", "int32", "float32")),
    Case("grads_complex_for_real", lambda: update_with(
        optaxtra.adam(), with_leaf(G, "dense/kernel", jnp.ones((3, 2), jnp.complex64))), TypeError, ("'dense/kernel'", "complex64")),
    Case("grads_none_leaf", lambda: update_with(optaxtra.adam(), with_leaf(G, "scale", None)), ValueError,
         ("scale_by_adam", "at 'scale'", "None")),
    Case("grads_string_leaf", lambda: update_with(optaxtra.adam(), with_leaf(G, "scale", "0.5")), TypeError, ("'scale'", "str")),
    Case("grads_list_for_tuple", lambda: optaxtra.adam().update(
        [jnp.ones(2)], optaxtra.adam().init((jnp.ones(2),))), ValueError, ("containers differ", "list")),
    Case("grads_mismatch_sgd", lambda: update_with(optaxtra.sgd(0.1), with_leaf(G, "dense/bias", jnp.ones(3))), ValueError,
         ("scale_by_learning_rate", "'dense/bias'", "(3,)", "(2,)", "the params")),
    Case("grads_mismatch_momentum", lambda: update_with(
        optaxtra.sgd(0.1, momentum=0.9), with_leaf(G, "dense/bias", jnp.ones(3))), ValueError, ("trace", "'dense/bias'")),
    Case("grads_dtype_lars", lambda: update_with(
        optaxtra.lars(0.1, weight_decay=1e-4), with_leaf(G, "scale", jnp.asarray(1.0, jnp.bfloat16))), TypeError,
         ("trust_ratio", "'scale'", "bfloat16")),
    Case("grads_mismatch_lookahead", lambda: update_with(optaxtra.ranger(), with_leaf(G, "dense/kernel", jnp.ones(6))),
         ValueError, ("lookahead_state", "slow weights", "'dense/kernel'")),
    Case("float_grads_for_int_param", lambda: update_with(
        optaxtra.adam(), {**G, "step": jnp.asarray(1.0)}, {**make_params(), "step": jnp.asarray(3)},
        optaxtra.adam().init({**make_params(), "step": jnp.asarray(3)})), TypeError, ("'step'", "float32", "int32")),
    Case("params_mismatch_lookahead", lambda: update_with(
        optaxtra.lookahead(optaxtra.adam()), G, with_leaf(make_params(), "dense/bias", jnp.ones(5))), ValueError,
         ("lookahead_state", "params", "'dense/bias'")),
    Case("params_missing_lookahead", lambda: optaxtra.ranger().update(G, optaxtra.ranger().init(make_params())),
         ValueError, ("lookahead_state", "params")),
    Case("params_missing_lamb", lambda: optaxtra.lamb().update(G, optaxtra.lamb().init(make_params())), ValueError,
         ("trust_ratio", "params")),
    # A state made by another optimizer.
    Case("adam_state_into_radam", lambda: restore(optaxtra.adam(), optaxtra.radam()), TypeError,
         ("scale_by_radam_rectifier", "ScaleByRadamRectifierState", "AddDecayedWeightsState")),
    Case("adam_state_into_adamw", lambda: restore(optaxtra.adam(), optaxtra.adamw()), TypeError,
         ("scale_by_adam", "AddDecayedWeightsState")),
    Case("adam_state_into_amsgrad", lambda: restore(optaxtra.adam(), optaxtra.amsgrad()), ValueError,
         ("scale_by_adam", "second moments", "dense/bias")),
    Case("amsgrad_state_into_adam", lambda: restore(optaxtra.amsgrad(), optaxtra.adam()), ValueError,
         ("scale_by_adam", "second moments", "dense/bias")),
    Case("adam_state_into_lookahead", lambda: restore(optaxtra.adam(), optaxtra.lookahead(optaxtra.adam())), TypeError,
         ("LookaheadState", "tuple")),
    # Chains of different lengths: optax.chain's own check.
    Case("ranger_state_into_radam", lambda: restore(optaxtra.ranger(), optaxtra.radam()), ValueError,
         ("number of updates and states", "chain")),
    Case("radam_state_into_sgd_momentum", lambda: restore(optaxtra.radam(), optaxtra.sgd(0.1, momentum=0.9)), TypeError,
         ("add_decayed_weights", "AddDecayedWeightsState", "ScaleByRadamRectifierState")),
    Case("skip_state_into_plain", lambda: restore(optaxtra.skip_nonfinite(optaxtra.adam()), optaxtra.adam()), TypeError,
         ("add_decayed_weights", "AddDecayedWeightsState", "tuple")),
    Case("state_restored_as_dicts", lambda: optaxtra.adam().update(
        G, tuple(s._asdict() if hasattr(s, "_asdict") else s for s in optaxtra.adam().init(make_params())),
        make_params()), TypeError, ("AddDecayedWeightsState", "dict")),
    Case("state_of_other_params", lambda: update_with(
        optaxtra.adam(), G, state=optaxtra.adam().init(with_leaf(make_params(), "dense/kernel", jnp.ones((4, 2))))),
         ValueError, ("'dense/kernel'", "(3, 2)", "(4, 2)")),
    Case("state_with_other_mu_dtype", lambda: update_with(
        optaxtra.adam(), G, state=optaxtra.adam(mu_dtype=jnp.bfloat16).init(make_params())), TypeError,
         ("'dense/bias'", "bfloat16", "first moments")),
]


def test_at_least_forty_distinct_bad_inputs():
    assert len({case.id for case in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_raises_a_clear_error(case: Case):
    with pytest.raises(case.error) as raised:
        case.call()
    message = str(raised.value)
    missing = [fragment for fragment in case.fragments if fragment not in message]
    assert not missing, f"message lacks {missing}: {message}"


@pytest.mark.parametrize("name", sorted(optaxtra.OPTIMIZERS))
def test_every_optimizer_names_the_mismatching_path_under_jit(name: str):
    """The checks read only structure, shapes and dtypes, so they fire while tracing."""
    tx = optaxtra.OPTIMIZERS[name](1e-3)
    params = make_params()
    step = jax.jit(tx.update)
    with pytest.raises(ValueError, match="'dense/kernel'.*\\(2, 3\\)"):
        step(with_leaf(G, "dense/kernel", jnp.ones((2, 3))), tx.init(params), params)
    with pytest.raises(TypeError, match="'scale'.*float16"):
        step(with_leaf(G, "scale", jnp.asarray(1.0, jnp.float16)), tx.init(params), params)


def test_a_failed_update_mutates_nothing():
    tx = optaxtra.lookahead(optaxtra.adamw(0.1))
    params = {"w": np.arange(6, dtype=np.float32).reshape(3, 2), "b": np.ones(2, np.float32)}
    state = tx.init(params)
    _, state = tx.update({"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}, state, params)
    bad_grads = {"w": np.ones((2, 3), np.float32), "b": np.ones(2, np.float32)}
    copies = [np.array(x, copy=True) for x in jax.tree.leaves((params, state, bad_grads))]
    with pytest.raises(ValueError, match="'w'"):
        tx.update(bad_grads, state, params)
    for before, after in zip(copies, jax.tree.leaves((params, state, bad_grads))):
        np.testing.assert_array_equal(before, np.asarray(after))


def test_schedules_and_traced_hyperparameters_pass_construction():
    """Validation must not reject what it cannot check: schedules and tracers (vmapped sweeps)."""
    optaxtra.adam(optax.linear_schedule(0.0, 1e-3, 10), b1=lambda t: 0.9)
    params = jnp.ones(3)

    def final(lr):
        tx = optaxtra.adam(lr)
        updates, _ = tx.update(jnp.ones(3), tx.init(params), params)
        return updates

    sweep = jax.vmap(final)(jnp.array([1e-3, 1e-2]))
    np.testing.assert_allclose(sweep[:, 0], [-1e-3, -1e-2], rtol=1e-6)
