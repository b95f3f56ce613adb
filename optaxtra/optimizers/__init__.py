"""Optimizers ("aliases"): short ``optax.chain`` of the pieces, no maths of their own.

Everything public is re-exported flat from ``optaxtra``; import it from there.
"""
