"""Parameter averaging kept in the optimizer state: EMA (Polyak) and SWA.

The params the user holds stay plain; the averaged weights live in the state
and are read for evaluation with ``optaxtra.averaged_params``. Everything public
is re-exported flat from ``optaxtra``.
"""
