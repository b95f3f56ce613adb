"""Helpers for the places optaxtra runs in: Flax training loops, orbax checkpoints, device meshes.

Everything public is re-exported flat from ``optaxtra``; import it from there.
"""
