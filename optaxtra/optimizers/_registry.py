"""Every optimizer by name, as ``learning_rate -> GradientTransformation``.

The table the CLI, the benchmarks and the table-driven tests iterate over, so
that a new optimizer joins all three by being added here.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

import optax

from .._hyperparams import ScalarOrSchedule
from ._adam import adam, adam_2k, adam_eps, adamw, amsgrad
from ._adam_mini import adam_mini
from ._adamax import adamax
from ._ademamix import ademamix, on_adam_scale, simplified_ademamix
from ._adamc import adamc
from ._adopt import adopt
from ._stable_adamw import stable_adamw
from ._cautious import cautious_adamw, cautious_lion
from ._layerwise import lamb, lars
from ._lion import lion
from ._lookahead import lookahead
from ._muon import muon
from ._nadam import nadam, nadamw
from ._rectified import radam, ralamb, ranger
from ._schedule_free import schedule_free_adamw, schedule_free_radam, schedule_free_sgd
from ._sgd import sgd

__all__ = ["OPTIMIZERS"]

Factory = Callable[[ScalarOrSchedule], optax.GradientTransformation]

OPTIMIZERS: Mapping[str, Factory] = MappingProxyType(
    {
        "adam": lambda lr: adam(lr),
        "adamw": lambda lr: adamw(lr),
        "amsgrad": lambda lr: amsgrad(lr),
        "radam": lambda lr: radam(lr),
        "ranger": lambda lr: ranger(lr),
        "lamb": lambda lr: lamb(lr, weight_decay=1e-2),
        "ralamb": lambda lr: ralamb(lr, weight_decay=1e-2),
        "lars": lambda lr: lars(lr, weight_decay=1e-4),
        "sgd": lambda lr: sgd(lr),
        "sgd_momentum": lambda lr: sgd(lr, momentum=0.9),
        "sgd_nesterov": lambda lr: sgd(lr, momentum=0.9, nesterov=True),
        "lookahead_adam": lambda lr: lookahead(adam(lr)),
        "adam_2k": lambda lr: adam_2k(lr),
        "adam_eps": lambda lr: adam_eps(lr),
        "nadam": lambda lr: nadam(lr),
        "nadamw": lambda lr: nadamw(lr),
        "adamax": lambda lr: adamax(lr),
        "lion": lambda lr: lion(lr),
        "cautious_adamw": lambda lr: cautious_adamw(lr),
        "cautious_lion": lambda lr: cautious_lion(lr),
        "schedule_free_adamw": lambda lr: schedule_free_adamw(lr),
        "schedule_free_sgd": lambda lr: schedule_free_sgd(lr),
        "schedule_free_radam": lambda lr: schedule_free_radam(lr),
        "muon": lambda lr: muon(lr),
        "adopt": lambda lr: adopt(lr),
        "ademamix": lambda lr: ademamix(lr),
        # Its momentum sums up to 1 / (1 - b1) = 100 gradients: the table's rate is on Adam's scale.
        "simplified_ademamix": lambda lr: simplified_ademamix(on_adam_scale(lr)),
        "stable_adamw": lambda lr: stable_adamw(lr),
        "adamc": lambda lr: adamc(lr),
        "adam_mini": lambda lr: adam_mini(lr),
    }
)
"""Read-only ``{name: learning_rate -> optimizer}`` of every alias with its defaults."""
