"""Test-wide settings: strict dtype and rank promotion, as the library promises to obey them.

JAX is started here, with its one host device: ``optaxtra compare``'s
``main``, called in-process by the tests, then finds JAX running and uses
that device, instead of splitting the CPU into one device per core for the
rest of the worker's tests (``tests/multidevice/`` runs on 8 in a process of
its own).

The longest tests (each a child process or a notebook, 10 to 60 seconds) are
collected first, so that ``pytest -n 2`` hands them out while the short ones
can still fill the other worker: collected last, one of them would run alone
at the end.
"""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.devices()

LONGEST_FIRST = (
    "tests/test_multidevice.py::",
    "tests/test_multihost.py::",
    "tests/test_notebooks.py::test_notebook_runs",
    "tests/test_benchmarks_quick.py::test_quick_benchmark_writes_tables",
    "tests/test_benchmarks_quick.py::test_device_loop_mode",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    rank = lambda item: next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)), None)
    items.sort(key=lambda item: (rank(item) is None, rank(item) or 0))  # stable: the rest keep their order
