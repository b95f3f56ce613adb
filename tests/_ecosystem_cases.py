"""The optimizers the ecosystem tests (Flax, optax pipelines, checkpoints, devices) run.

Every entry of ``optaxtra.OPTIMIZERS``, plus the averaging and switching
wrappers, which the table does not list yet: when one joins the table, delete
its line here (a table entry of the same name wins anyway).
"""

from __future__ import annotations

from types import MappingProxyType

import optaxtra

WRAPPERS_NOT_IN_TABLE = {
    "ema_ranger": lambda lr: optaxtra.ema_averaging(optaxtra.ranger(lr), decay=0.9),
    "swa_adam": lambda lr: optaxtra.swa_averaging(optaxtra.adam(lr), start_step=2, period=2),
    "switch_adam_sgd": lambda lr: optaxtra.switch(
        optaxtra.adam(lr), optaxtra.sgd(lr, momentum=0.9), switch_step=3,
        hand_off=optaxtra.carry_first_moment(scale=10.0),
    ),
    "swats": lambda lr: optaxtra.swats(lr),
}

CASES = MappingProxyType({**WRAPPERS_NOT_IN_TABLE, **optaxtra.OPTIMIZERS})
NAMES = sorted(CASES)
