"""Switching between optimizers inside one compiled program: ``switch`` and SWATS.

Everything public is re-exported flat from ``optaxtra``.
"""
