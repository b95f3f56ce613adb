"""Schedules: plain ``step -> value`` functions, usable for any hyperparameter.

Warm-up, warmup-stable-decay, one-cycle (learning rate and momentum together),
the SWA learning-rate schedules and batch-size scaling of a base learning rate.
Every schedule is a pure function of the step count, so it runs under ``jit``
and ``vmap``; its values may be traced arrays, so a sweep over them compiles
once. Everything public is re-exported flat from ``optaxtra``.
"""
