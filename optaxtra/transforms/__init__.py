"""The pieces: small, pure ``optax.GradientTransformation`` factories.

Everything public is re-exported flat from ``optaxtra``; import it from there.
"""
