"""What a kernel costs XLA:CPU, and whether multi-output fusion changes an Adam step.

Run from the repository root, once as is and once with XLA:CPU's multi-output
fusion (off by default; XLA reads its flags when JAX starts)::

    python benchmarks/leaf_overhead.py
    XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion python benchmarks/leaf_overhead.py

Part 1 times ``p - 1e-3 * g`` over N leaves of S elements (one kernel and one
output per leaf, params donated): the cost per kernel, whatever its size;
the same with each leaf's kernel made to wait for the previous one, up to
200 leaves (if the cost were the executor running kernels concurrently, this
would be cheaper);
and a call that only takes the 2N arrays.

Part 2 is a hand-written Adam step in two forms: the param update reads the new
moments (as ``optaxtra.adam`` does), or recomputes them from the old ones with
an expression XLA does not merge with theirs (``x - (-y)`` for ``x + y``), so
that the three outputs of a leaf are siblings over the same inputs. For each:
kernels and copies in the compiled step, compile time, and step time.
Results: ``cpu_logs/2026-11-26e_multi_output_fusion.txt``.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp

ROUNDS = 5
CALLS = 40
CHAINED_UP_TO = 200  # a chain of 2,000 kernels compiled for over 12 minutes (2026-11-26)
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


def _median_ms(compiled, args, rotate):
    """Median per-call time; ``rotate`` maps a call's outputs to the next call's args."""
    times = []
    for i in range(CALLS + 5):
        start = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        if i >= 5:
            times.append(time.perf_counter() - start)
        args = rotate(args, out)
    return statistics.median(times) * 1e3, args


def _census(compiled):
    entry = compiled.as_text().split("ENTRY", 1)[1]
    return entry.count(" fusion("), entry.count(" copy(")


def kernel_cost(n, size):
    """ms per call: independent kernels, chained kernels, arguments only."""
    params = [jnp.ones((size,)) for _ in range(n)]
    grads = [jnp.ones((size,)) for _ in range(n)]

    def independent(p, g):
        return [a - LR * b for a, b in zip(p, g)]

    def chained(p, g):
        out, previous = [], jnp.zeros(())
        for a, b in zip(p, g):
            out.append(a - LR * b + 0.0 * previous)  # 0 * x is kept for floats: a real dependency
            previous = out[-1][0]
        return out

    def arguments_only(p, g):
        return p[0][:1] + g[0][:1]

    donated = dict(donate_argnums=0)
    compiled = {
        "independent": jax.jit(independent, **donated).lower(params, grads).compile(),
        "arguments only": jax.jit(arguments_only).lower(params, grads).compile(),
    }
    if n <= CHAINED_UP_TO:
        compiled["chained"] = jax.jit(chained, **donated).lower(params, grads).compile()
    rounds = {name: [] for name in compiled}
    args = {name: (params if name == "arguments only" else [p.copy() for p in params], grads) for name in compiled}
    for _ in range(ROUNDS):
        for name, fn in compiled.items():
            keep = name == "arguments only"
            ms, args[name] = _median_ms(fn, args[name], lambda a, o, keep=keep: a if keep else (o, a[1]))
            rounds[name].append(ms)
    return {name: statistics.median(v) for name, v in rounds.items()}


def _adam_leaf(recompute):
    def leaf(p, g, m, v, c1, c2):
        m_new = B1 * m + (1 - B1) * g
        v_new = B2 * v + (1 - B2) * g * g
        if recompute:
            m_read = B1 * m - (-(1 - B1)) * g
            v_read = B2 * v - (-(1 - B2)) * (g * g)
        else:
            m_read, v_read = m_new, v_new
        return p - LR * (m_read / c1) / (jnp.sqrt(v_read / c2) + EPS), m_new, v_new

    return leaf


def adam_step(recompute):
    """``(params, mu, nu, grads, t) -> (params, mu, nu, t + 1)`` over lists of leaves, in one form."""
    leaf = _adam_leaf(recompute)

    def step(ps, ms, vs, gs, t):
        c1, c2 = 1 - B1**t, 1 - B2**t
        out = [leaf(p, g, m, v, c1, c2) for p, g, m, v in zip(ps, gs, ms, vs)]
        return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out], t + 1

    return step


def adam_forms(shapes):
    """Per form: kernels, copies, compile seconds, median step ms."""
    grads = [jax.random.normal(jax.random.PRNGKey(i), s) for i, s in enumerate(shapes)]
    results, compiled, args = {}, {}, {}
    for name in ("from new moments", "recomputed"):
        step = adam_step(recompute=name == "recomputed")
        state = ([jnp.ones(s) for s in shapes], [jnp.zeros(s) for s in shapes], [jnp.zeros(s) for s in shapes])
        start = time.perf_counter()
        compiled[name] = jax.jit(step, donate_argnums=(0, 1, 2)).lower(*state, grads, jnp.float32(1)).compile()
        results[name] = [*_census(compiled[name]), time.perf_counter() - start, []]
        args[name] = (*state, grads, jnp.float32(1))
    for _ in range(ROUNDS):
        for name, fn in compiled.items():
            ms, args[name] = _median_ms(fn, args[name], lambda a, o: (o[0], o[1], o[2], a[3], o[3]))
            results[name][3].append(ms)
    return {name: (*r[:3], statistics.median(r[3])) for name, r in results.items()}


def main():
    print(f"jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, load {os.getloadavg()}")
    print("part 1: p - lr g, one kernel per leaf (median ms per call over rounds)")
    for n, size in [(200, 5000), (2000, 500), (2000, 50), (2000, 5)]:
        cost = kernel_cost(n, size)
        per = cost["independent"] * 1e3 / n
        chained = f"{cost['chained']:7.3f} ms" if "chained" in cost else "not run"
        print(f"  {n:5d} leaves x {size:5d}: independent {cost['independent']:7.3f} ms ({per:4.2f} us per kernel),"
              f" chained {chained}, arguments only {cost['arguments only']:6.3f} ms", flush=True)
    print("part 2: hand-written Adam, param update from the new moments or recomputed from the old")
    for label, shapes in [("8M params in 40 leaves", [(224, 896)] * 40),
                          ("1M params in 200 leaves", [(5000,)] * 200),
                          ("1M params in 2,000 leaves", [(500,)] * 2000)]:
        for name, (kernels, copies, compile_s, ms) in adam_forms(shapes).items():
            print(f"  {label:26s} {name:17s} kernels {kernels:5d} copies {copies:5d}"
                  f" compile {compile_s:6.2f} s step {ms:7.3f} ms", flush=True)
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
