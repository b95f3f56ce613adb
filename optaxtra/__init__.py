"""optaxtra: the Adam family and what came after it, as composable Optax pieces.

Everything public is importable from here; submodules are private.
"""

from ._diagnostics import diagnostics as diagnostics
from ._diagnostics import register_diagnostics as register_diagnostics
from ._hyperparams import ScalarOrSchedule as ScalarOrSchedule

# The pieces.
from ._fast_paths import plain_paths as plain_paths
from .transforms._adam import ScaleByAdamState as ScaleByAdamState
from .transforms._adam import scale_by_adam as scale_by_adam
from .transforms._learning_rate import ScaleByLearningRateState as ScaleByLearningRateState
from .transforms._learning_rate import scale_by_learning_rate as scale_by_learning_rate
from .transforms._lookahead import LookaheadState as LookaheadState
from .transforms._lookahead import lookahead_state as lookahead_state
from .transforms._lookahead import slow_params as slow_params
from .transforms._masking import exclude_paths as exclude_paths
from .transforms._masking import select_paths as select_paths
from .transforms._rectifier import ScaleByRadamRectifierState as ScaleByRadamRectifierState
from .transforms._rectifier import radam_rectification as radam_rectification
from .transforms._rectifier import radam_rho as radam_rho
from .transforms._rectifier import scale_by_radam_rectifier as scale_by_radam_rectifier
from .transforms._second_moment import SecondMoment as SecondMoment
from .transforms._second_moment import amsgrad_second_moment as amsgrad_second_moment
from .transforms._second_moment import belief_second_moment as belief_second_moment
from .transforms._second_moment import ema_second_moment as ema_second_moment
from .transforms._trust_ratio import TrustRatioState as TrustRatioState
from .transforms._trust_ratio import trust_ratio as trust_ratio
from .transforms._weight_decay import AddDecayedWeightsState as AddDecayedWeightsState
from .transforms._weight_decay import DecoupledWeightDecayState as DecoupledWeightDecayState
from .transforms._weight_decay import add_decayed_weights as add_decayed_weights
from .transforms._weight_decay import decoupled_weight_decay as decoupled_weight_decay

# The optimizers.
from .optimizers._adam import adam as adam
from .optimizers._adam import adam_2k as adam_2k
from .optimizers._adam import adam_eps as adam_eps
from .optimizers._adam import adamw as adamw
from .optimizers._adam import amsgrad as amsgrad
from .optimizers._layerwise import lamb as lamb
from .optimizers._layerwise import lars as lars
from .optimizers._lookahead import lookahead as lookahead
from .optimizers._rectified import radam as radam
from .optimizers._rectified import ralamb as ralamb
from .optimizers._rectified import ranger as ranger
from .optimizers._registry import OPTIMIZERS as OPTIMIZERS
from .optimizers._sgd import sgd as sgd

# Schedules and batch-size scaling (issue 3).
from .schedules._batch_scaling import linear_batch_scaling as linear_batch_scaling
from .schedules._batch_scaling import sqrt_batch_scaling as sqrt_batch_scaling
from .schedules._one_cycle import OneCycle as OneCycle
from .schedules._one_cycle import one_cycle as one_cycle
from .schedules._swa import swa_cyclic_learning_rate as swa_cyclic_learning_rate
from .schedules._swa import swa_learning_rate as swa_learning_rate
from .schedules._trapezoid import warmup_stable_decay as warmup_stable_decay
from .schedules._warmup import linear_warmup as linear_warmup
from .schedules._warmup import untuned_warmup as untuned_warmup
from .schedules._warmup import untuned_warmup_steps as untuned_warmup_steps

# Parameter averaging (issue 3).
from .averaging._ema import EmaAveragingState as EmaAveragingState
from .averaging._ema import ema_averaging as ema_averaging
from .averaging._ema import ema_warmup_decay as ema_warmup_decay
from .averaging._read import averaged_params as averaged_params
from .averaging._swa import SwaAveragingState as SwaAveragingState
from .averaging._swa import swa_averaging as swa_averaging

# Switching between optimizers (issue 3).
from .switching._hand_off import carry_first_moment as carry_first_moment
from .switching._swats_phases import SwatsAdamState as SwatsAdamState
from .switching._swats_phases import SwatsSgdState as SwatsSgdState
from .switching._swats import swats as swats
from .switching._switch import SwitchState as SwitchState
from .switching._switch import switch as switch
from .switching._switch import switch_when as switch_when

# Robustness: non-finite updates, precision (issue 7).
from .transforms._momentum import TraceState as TraceState
from .transforms._momentum import trace as trace
from .transforms._skip_nonfinite import SkipNonfiniteState as SkipNonfiniteState
from .transforms._skip_nonfinite import skip_nonfinite as skip_nonfinite

# Ecosystem helpers: Flax, checkpointing, multi-device (issue 4).
from .ecosystem._checkpoint import check_checkpoint as check_checkpoint
from .ecosystem._evaluation import evaluation_model as evaluation_model
from .ecosystem._evaluation import evaluation_params as evaluation_params
from .ecosystem._evaluation import evaluation_state as evaluation_state
from .ecosystem._evaluation import register_evaluation_params as register_evaluation_params
from .ecosystem._sharding import init_sharded as init_sharded
from .ecosystem._sharding import state_sharding as state_sharding

# The compare command's tasks (issue 8).
from .tasks._charlm import charlm_task as charlm_task
from .tasks._digits import digits_task as digits_task
from .tasks._interface import Task as Task
from .tasks._interface import check_task as check_task

# The public API: every name re-exported above (not the submodules, which are private).
__all__ = [
    "AddDecayedWeightsState",
    "DecoupledWeightDecayState",
    "EmaAveragingState",
    "LookaheadState",
    "OPTIMIZERS",
    "OneCycle",
    "ScalarOrSchedule",
    "ScaleByAdamState",
    "ScaleByLearningRateState",
    "ScaleByRadamRectifierState",
    "SecondMoment",
    "SkipNonfiniteState",
    "SwaAveragingState",
    "SwatsAdamState",
    "SwatsSgdState",
    "SwitchState",
    "Task",
    "TraceState",
    "TrustRatioState",
    "adam",
    "adam_2k",
    "adam_eps",
    "adamw",
    "add_decayed_weights",
    "amsgrad",
    "amsgrad_second_moment",
    "averaged_params",
    "belief_second_moment",
    "carry_first_moment",
    "charlm_task",
    "check_checkpoint",
    "check_task",
    "decoupled_weight_decay",
    "diagnostics",
    "digits_task",
    "ema_averaging",
    "ema_second_moment",
    "ema_warmup_decay",
    "evaluation_model",
    "evaluation_params",
    "evaluation_state",
    "exclude_paths",
    "init_sharded",
    "lamb",
    "lars",
    "linear_batch_scaling",
    "linear_warmup",
    "lookahead",
    "lookahead_state",
    "one_cycle",
    "plain_paths",
    "radam",
    "radam_rectification",
    "radam_rho",
    "ralamb",
    "ranger",
    "register_diagnostics",
    "register_evaluation_params",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_radam_rectifier",
    "select_paths",
    "sgd",
    "skip_nonfinite",
    "slow_params",
    "sqrt_batch_scaling",
    "state_sharding",
    "swa_averaging",
    "swa_cyclic_learning_rate",
    "swa_learning_rate",
    "swats",
    "switch",
    "switch_when",
    "trace",
    "trust_ratio",
    "untuned_warmup",
    "untuned_warmup_steps",
    "warmup_stable_decay",
]

__version__ = "0.1.0"
