"""``optaxtra compare``: the optimizer shoot-out, its bundled tasks, the ``Task`` interface, and the
AlgoPerf-style measures a user applies to its ``results.json`` (``time_to_target``, ``reference_target``).

Installed with ``pip install "optaxtra[compare]"`` (scikit-learn, matplotlib,
rich, scipy, flax, mnist1d); ``import optaxtra`` does not import it. Everything public
is importable from here; submodules are private.
"""

from .cli._targets import reference_target as reference_target
from .cli._time_to_target import time_to_target as time_to_target
from .tasks._charlm import charlm_task as charlm_task
from .tasks._digits import digits_task as digits_task
from .tasks._interface import Task as Task
from .tasks._interface import check_task as check_task
from .tasks._interface import frequency_baseline as frequency_baseline
from .tasks._mnist1d import mnist1d_task as mnist1d_task

__all__ = [
    "Task", "charlm_task", "check_task", "digits_task", "frequency_baseline", "mnist1d_task", "reference_target",
    "time_to_target",
]
