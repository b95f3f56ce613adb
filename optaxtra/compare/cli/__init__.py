"""The ``optaxtra`` command line: ``optaxtra compare`` (also ``python -m optaxtra``).

The entry point is ``optaxtra.__main__.main``, which checks first that the
``compare`` extra is installed.
"""
