"""Training problems for ``optaxtra compare``: the ``Task`` interface and the bundled tasks.

Everything public is re-exported flat from ``optaxtra.compare``; import it from there.
"""
