import statistics, sys
from typing import NamedTuple
sys.path.insert(0, "benchmarks")
import jax, jax.numpy as jnp, optax, optaxtra, trees, equivalents, kernels
width = int(sys.argv[1]) if len(sys.argv) > 1 else 768
shapes = trees.gpt2(width, vocab=50257 if width == 768 else 128)
params = jax.tree.map(jnp.asarray, trees.build(shapes, seed=0))
grads = jax.tree.map(jnp.asarray, trees.build(shapes, seed=1))
lr = 1e-3

class S(NamedTuple):
    count: jax.Array
    value: jax.Array

def recorder(how):
    def init(p):
        return S(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32))
    def update(u, s, p=None):
        rate = jnp.float32(lr)
        if how == "copy":
            v = rate
        elif how == "aliased_select":
            v = jnp.where(s.count < 0, s.value, rate)
        elif how == "fresh_select":
            v = jnp.where(s.count >= 0, rate, 0.0)
        return u, S(s.count + 1, v)
    return optax.GradientTransformation(init, update)

class R(NamedTuple):
    r: object

def per_leaf(aliased):
    def init(p):
        return R(jax.tree.map(lambda x: jnp.ones([], jnp.float32), p))
    def update(u, s, p=None):
        new = jax.tree.map(lambda x: x.reshape(-1)[0], u)
        if aliased:
            new = jax.tree.map(lambda n, o: jnp.where(jnp.isnan(o), o, n), new, s.r)
        return u, R(new)
    return optax.GradientTransformation(init, update)

V = {
    "optax": optax.adam(lr),
    "ours": optaxtra.adam(lr),
    "+copy": optax.chain(optax.adam(lr), recorder("copy")),
    "+aliased_select": optax.chain(optax.adam(lr), recorder("aliased_select")),
    "+fresh_select": optax.chain(optax.adam(lr), recorder("fresh_select")),
    "+146 fresh": optax.chain(optax.adam(lr), per_leaf(False)),
    "+146 aliased": optax.chain(optax.adam(lr), per_leaf(True)),
}
C, B = {}, {}
for k, tx in V.items():
    e = equivalents.optaxtra_entry(tx, params)
    C[k] = jax.jit(e.step, donate_argnums=(0, 1)).lower(e.params, e.state, grads).compile()
    B[k] = (e.params, e.state)
    c = kernels.census(C[k].as_text())
    print(f"{k:16s}", {n: v for n, v in c.items()}, "outputs", len(jax.tree.leaves(B[k])), flush=True)
W = {k: [] for k in V}; D = {k: [] for k in V}
names = list(V)
for r in range(6):
    order = names[r % len(names):] + names[:r % len(names)]
    for k in order:
        w, d, B[k] = kernels._time_calls(C[k], *B[k], grads, 120)
        if r: W[k].append(w); D[k].append(d)
for k in V:
    print(f"{k:16s} call {statistics.median(W[k]):8.1f}  dispatch {statistics.median(D[k]):8.1f}  "
          f"call/optax {statistics.median(a/b for a,b in zip(W[k], W['optax'])):.3f}  "
          f"dispatch/optax {statistics.median(a/b for a,b in zip(D[k], D['optax'])):.3f}", flush=True)
