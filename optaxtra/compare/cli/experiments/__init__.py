"""The ``--experiment`` runs: each re-runs one published claim at laptop scale and says whether it held."""
