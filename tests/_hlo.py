"""Reading a compiled step's HLO text, for tests that pin its structure (never its speed)."""

from __future__ import annotations

import re

import jax

__all__ = ["wide_kernels"]


def wide_kernels(fn, *args, more_than: int = 8, reducing: bool = False) -> list[int]:
    """Operand counts of the fused kernels of ``jit(fn)(*args)`` that take more than ``more_than``.

    A step over N leaves whose kernels are per leaf has none. A kernel that
    combines a value from every leaf (a sum, a finiteness check) takes N or 2N
    operands: XLA:CPU's compile time for it grows faster than N, and more so when
    XLA copies it into every leaf's kernel. With ``reducing``, only kernels that
    also finish a reduction are counted (every leaf's last reduction fused in).
    """
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    bodies = dict(re.findall(r"\n(%[\w.\-]+) \(.*?\n(.*?)\n}", hlo, re.S))
    fusions = re.findall(r"fusion\((.*?)\), kind=\w+, calls=(%[\w.\-]+)", hlo)
    counts = (len(operands.split(",")) for operands, body in fusions if not reducing or "reduce(" in bodies[body])
    return sorted((c for c in counts if c > more_than), reverse=True)
