"""optaxtra: the Adam family and what came after it, as composable Optax pieces.

Everything public is importable from here and named in ``__all__``: the
pieces (``scale_by_adam``, ``trust_ratio``, ...), each a factory returning an
``optax.GradientTransformation``; the optimizers built from them (``adam``,
``radam``, ``ranger``, ..., and the ``OPTIMIZERS`` table); schedules,
parameter averaging and switching between optimizers; ``diagnostics`` for any
optimizer state; helpers for Flax, checkpoints and device meshes.

The submodules are private, except ``optaxtra.compare``: the ``optaxtra
compare`` command, its tasks and the ``Task`` interface, which needs
``pip install "optaxtra[compare]"`` and which ``import optaxtra`` does not import.
"""

from ._diagnostics import diagnostics as diagnostics
from ._diagnostics import register_diagnostics as register_diagnostics
from ._hyperparams import ScalarOrSchedule as ScalarOrSchedule

# The pieces.
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

# The successors: NAdam, Adamax, Lion.
from .transforms._adamax import ScaleByAdamaxState as ScaleByAdamaxState
from .transforms._adamax import scale_by_adamax as scale_by_adamax
from .transforms._lion import ScaleByLionState as ScaleByLionState
from .transforms._lion import scale_by_lion as scale_by_lion
from .transforms._nadam import ScaleByNadamState as ScaleByNadamState
from .transforms._nadam import scale_by_nadam as scale_by_nadam
from .optimizers._adamax import adamax as adamax
from .optimizers._lion import lion as lion
from .optimizers._nadam import nadam as nadam
from .optimizers._nadam import nadamw as nadamw

# Schedules and batch-size scaling.
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

# Parameter averaging.
from .averaging._ema import EmaAveragingState as EmaAveragingState
from .averaging._ema import ema_averaging as ema_averaging
from .averaging._ema import ema_warmup_decay as ema_warmup_decay
from .averaging._read import averaged_params as averaged_params
from .averaging._swa import SwaAveragingState as SwaAveragingState
from .averaging._swa import swa_averaging as swa_averaging

# Switching between optimizers.
from .switching._hand_off import carry_first_moment as carry_first_moment
from .switching._swats_phases import SwatsAdamState as SwatsAdamState
from .switching._swats_phases import SwatsSgdState as SwatsSgdState
from .switching._swats import scale_by_swats as scale_by_swats
from .switching._swats import swats as swats
from .switching._switch import SwitchState as SwitchState
from .switching._switch import switch as switch
from .switching._switch import switch_when as switch_when

# Robustness: non-finite updates, precision.
from .transforms._momentum import TraceState as TraceState
from .transforms._momentum import trace as trace
from .transforms._skip_nonfinite import SkipNonfiniteState as SkipNonfiniteState
from .transforms._skip_nonfinite import skip_nonfinite as skip_nonfinite

# Ecosystem helpers: Flax, checkpointing, multi-device.
from .ecosystem._checkpoint import check_checkpoint as check_checkpoint
from .ecosystem._evaluation import evaluation_model as evaluation_model
from .ecosystem._evaluation import evaluation_params as evaluation_params
from .ecosystem._evaluation import evaluation_state as evaluation_state
from .ecosystem._evaluation import register_evaluation_params as register_evaluation_params
from .ecosystem._sharding import init_sharded as init_sharded
from .ecosystem._sharding import state_sharding as state_sharding

# ADOPT, AdEMAMix, StableAdamW, AdamC: pieces, schedules and optimizers.
from .optimizers._ademamix import ademamix as ademamix
from .optimizers._ademamix import simplified_ademamix as simplified_ademamix
from .optimizers._adamc import adamc as adamc
from .optimizers._adopt import adopt as adopt
from .optimizers._stable_adamw import stable_adamw as stable_adamw
from .schedules._ademamix import HalfLifeWarmup as HalfLifeWarmup
from .schedules._ademamix import ademamix_alpha_warmup as ademamix_alpha_warmup
from .schedules._ademamix import half_life_warmup as half_life_warmup
from .schedules._corrected_decay import corrected_weight_decay as corrected_weight_decay
from .schedules._delayed import delayed as delayed
from .transforms._ademamix import ScaleByAdemamixState as ScaleByAdemamixState
from .transforms._ademamix import scale_by_ademamix as scale_by_ademamix
from .transforms._adopt import ScaleByAdoptState as ScaleByAdoptState
from .transforms._adopt import adopt_clip as adopt_clip
from .transforms._adopt import scale_by_adopt as scale_by_adopt
from .transforms._simplified_ademamix import ScaleBySimplifiedAdemamixState as ScaleBySimplifiedAdemamixState
from .transforms._simplified_ademamix import scale_by_simplified_ademamix as scale_by_simplified_ademamix
from .transforms._stable_adam import ScaleByStableAdamState as ScaleByStableAdamState
from .transforms._stable_adam import scale_by_stable_adam as scale_by_stable_adam
from .transforms._update_clipping import ClipByUpdateRmsState as ClipByUpdateRmsState
from .transforms._update_clipping import clip_by_update_rms as clip_by_update_rms

# Cautious optimizers (a wrapper for any optimizer).
from .transforms._cautious import CautiousState as CautiousState
from .transforms._cautious import cautious as cautious
from .transforms._cautious_weight_decay import CautiousWeightDecayState as CautiousWeightDecayState
from .transforms._cautious_weight_decay import cautious_weight_decay as cautious_weight_decay
from .optimizers._cautious import cautious_adamw as cautious_adamw
from .optimizers._cautious import cautious_lion as cautious_lion

# Schedule-Free (a wrapper around a base direction).
from .transforms._schedule_free import ScheduleFreeState as ScheduleFreeState
from .transforms._schedule_free import schedule_free as schedule_free
from .transforms._schedule_free import schedule_free_eval_params as schedule_free_eval_params
from .schedules._rectified_warmup import rectified_warmup as rectified_warmup
from .optimizers._schedule_free import schedule_free_adamw as schedule_free_adamw
from .optimizers._schedule_free import schedule_free_radam as schedule_free_radam
from .optimizers._schedule_free import schedule_free_sgd as schedule_free_sgd

# Muon (matrices) with AdamW (the rest).
from .transforms._muon import ScaleByMuonState as ScaleByMuonState
from .transforms._muon import newton_schulz as newton_schulz
from .transforms._muon import scale_by_muon as scale_by_muon
from .optimizers._muon import muon as muon

# Block-wise 8-bit optimizer state (mu_dtype=jnp.int8, nu_dtype=jnp.int8).
from ._quantization import QuantizedArray as QuantizedArray
from ._quantized_storage import BlockwiseInt8 as BlockwiseInt8
from ._quantized_storage import blockwise_int8 as blockwise_int8

# Adam-mini (one second moment per block).
from .transforms._adam_mini import ScaleByAdamMiniState as ScaleByAdamMiniState
from .transforms._adam_mini import scale_by_adam_mini as scale_by_adam_mini
from .transforms._adam_mini_blocks import ADAM_MINI_FLAX_RULES as ADAM_MINI_FLAX_RULES
from .transforms._adam_mini_blocks import AdamMiniHeads as AdamMiniHeads
from .transforms._adam_mini_blocks import adam_mini_blocks as adam_mini_blocks
from .optimizers._adam_mini import adam_mini as adam_mini

# The public API: every name re-exported above (not the submodules, which are private).
__all__ = [
    "ADAM_MINI_FLAX_RULES",
    "AdamMiniHeads",
    "AddDecayedWeightsState",
    "BlockwiseInt8",
    "CautiousState",
    "CautiousWeightDecayState",
    "ClipByUpdateRmsState",
    "DecoupledWeightDecayState",
    "EmaAveragingState",
    "HalfLifeWarmup",
    "LookaheadState",
    "OPTIMIZERS",
    "OneCycle",
    "QuantizedArray",
    "ScalarOrSchedule",
    "ScaleByAdamMiniState",
    "ScaleByAdamState",
    "ScaleByAdamaxState",
    "ScaleByAdemamixState",
    "ScaleByAdoptState",
    "ScaleByLearningRateState",
    "ScaleByLionState",
    "ScaleByMuonState",
    "ScaleByNadamState",
    "ScaleByRadamRectifierState",
    "ScaleBySimplifiedAdemamixState",
    "ScaleByStableAdamState",
    "ScheduleFreeState",
    "SecondMoment",
    "SkipNonfiniteState",
    "SwaAveragingState",
    "SwatsAdamState",
    "SwatsSgdState",
    "SwitchState",
    "TraceState",
    "TrustRatioState",
    "adam",
    "adam_2k",
    "adam_eps",
    "adam_mini",
    "adam_mini_blocks",
    "adamax",
    "adamc",
    "adamw",
    "add_decayed_weights",
    "ademamix",
    "ademamix_alpha_warmup",
    "adopt",
    "adopt_clip",
    "amsgrad",
    "amsgrad_second_moment",
    "averaged_params",
    "belief_second_moment",
    "blockwise_int8",
    "carry_first_moment",
    "cautious",
    "cautious_adamw",
    "cautious_lion",
    "cautious_weight_decay",
    "check_checkpoint",
    "clip_by_update_rms",
    "corrected_weight_decay",
    "decoupled_weight_decay",
    "delayed",
    "diagnostics",
    "ema_averaging",
    "ema_second_moment",
    "ema_warmup_decay",
    "evaluation_model",
    "evaluation_params",
    "evaluation_state",
    "exclude_paths",
    "half_life_warmup",
    "init_sharded",
    "lamb",
    "lars",
    "linear_batch_scaling",
    "linear_warmup",
    "lion",
    "lookahead",
    "lookahead_state",
    "muon",
    "nadam",
    "nadamw",
    "newton_schulz",
    "one_cycle",
    "radam",
    "radam_rectification",
    "radam_rho",
    "ralamb",
    "ranger",
    "rectified_warmup",
    "register_diagnostics",
    "register_evaluation_params",
    "scale_by_adam",
    "scale_by_adam_mini",
    "scale_by_adamax",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_muon",
    "scale_by_nadam",
    "scale_by_radam_rectifier",
    "scale_by_simplified_ademamix",
    "scale_by_stable_adam",
    "scale_by_swats",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_radam",
    "schedule_free_sgd",
    "select_paths",
    "sgd",
    "simplified_ademamix",
    "skip_nonfinite",
    "slow_params",
    "sqrt_batch_scaling",
    "stable_adamw",
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
