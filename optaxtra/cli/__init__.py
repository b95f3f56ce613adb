"""The ``optaxtra`` command line: ``optaxtra compare`` (also ``python -m optaxtra``)."""
