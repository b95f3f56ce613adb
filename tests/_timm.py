"""timm's optimizer modules, loaded without ``import timm`` (which needs torchvision).

A synthetic package ``_timm_optim`` is registered whose ``__path__`` is timm's
installed ``optim/`` directory; a module loaded from it (``adamw.py``,
``adopt.py``, ...) then resolves its relative imports (``._helpers``,
``._types``) inside that directory, and nothing else of timm is imported.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

__all__ = ["timm_optim_module"]

_PACKAGE = "_timm_optim"


def _optim_directory() -> pathlib.Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        raise ImportError("timm is not installed")
    return pathlib.Path(spec.origin).parent / "optim"


def timm_optim_module(name: str) -> types.ModuleType:
    """``timm.optim.<name>`` (e.g. ``"adopt"``), loaded from its file.

    Args:
      name: the module's file name without ``.py``.

    Returns:
      The loaded module (cached in ``sys.modules``).
    """
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [str(_optim_directory())]
        sys.modules[_PACKAGE] = package
    full = f"{_PACKAGE}.{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, _optim_directory() / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]
