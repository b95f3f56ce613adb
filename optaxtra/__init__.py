"""optaxtra: the Adam family and what came after it, as composable Optax pieces.

Everything public is importable from here; submodules are private.
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

# Schedules and batch-size scaling (issue 3).

# Parameter averaging (issue 3).

# Switching between optimizers (issue 3).

# Robustness: non-finite updates, precision (issue 7).

# Ecosystem helpers: Flax, checkpointing, multi-device (issue 4).

__version__ = "0.1.0"
