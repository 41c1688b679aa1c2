"""Seeded minibatch training with Adam (Kingma and Ba, 2015) for the JAX models (`autoencoder`, `two_tower`).

optax is not a dependency, and both deep models train the same way: rows in a
seeded order, a fixed batch shape (the last batch padded and masked, so the
step is compiled once), one `jax.random` key per step split from the run's
seed. The same seed and data give the same weights on CPU.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def glorot(key, shape: tuple[int, int]):
    """Uniform Glorot initialisation: weights whose activations neither shrink nor grow through a layer."""
    import jax

    limit = float(np.sqrt(6.0 / (shape[0] + shape[1])))
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)


def train(loss: Callable, params: dict, batch_of: Callable[[np.ndarray], tuple], rows: int, batch: int,
          epochs: int, lr: float, seed: int, min_steps: int = 0) -> tuple[dict, list[float]]:
    """Minimise `loss(params, batch_arrays, key, progress)` by Adam over `epochs` passes of `rows` rows, or
    more passes on data so small that `epochs` would be fewer than `min_steps` steps (no rows: no step).

    batch_of(positions) -> the arrays of one batch; positions are -1 where the batch is padded (the loss masks
    them). progress is the share of training done (0..1), for schedules such as KL annealing. Returns the
    weights as NumPy arrays and the mean loss of each epoch."""
    import jax
    import jax.numpy as jnp

    steps_per_epoch = max(1, -(-rows // batch))
    if rows and epochs:
        epochs = max(epochs, -(-min_steps // steps_per_epoch))
    total = max(1, steps_per_epoch * epochs)
    grad = jax.value_and_grad(loss)

    @jax.jit
    def step(params, moments, t, arrays, key):
        value, grads = grad(params, arrays, key, t / total)
        first, second = moments
        first = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, first, grads)
        second = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, second, grads)
        done = t + 1.0
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * (m / (1 - 0.9 ** done)) / (jnp.sqrt(v / (1 - 0.999 ** done)) + 1e-8),
            params, first, second)
        return params, (first, second), value

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    moments = (zeros, zeros)
    order_rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    history, t = [], 0
    for _ in range(epochs):
        order = order_rng.permutation(rows)
        order = np.pad(order, (0, steps_per_epoch * batch - rows), constant_values=-1)
        values = []
        for start in range(0, len(order), batch):
            key, sub = jax.random.split(key)
            params, moments, value = step(params, moments, float(t), batch_of(order[start:start + batch]), sub)
            values.append(value)
            t += 1
        history.append(float(np.mean(jax.device_get(values))))
    return jax.tree_util.tree_map(np.asarray, params), history


def carried(fresh: dict, saved: dict, keys: dict[str, np.ndarray], saved_keys: dict[str, np.ndarray],
            keyed: dict[str, tuple[str, int]]) -> dict:
    """`fresh` (a new initialisation) with what an earlier fit learned: each weight whole when it is not keyed,
    and for a keyed weight (`keyed[name]` = (kind of key, axis), e.g. ("listing", 0)) the slices whose key (a
    listing id, a token) the earlier fit had; a listing or token it never saw keeps its fresh value."""
    import jax.numpy as jnp

    out = {}
    for name, value in fresh.items():
        old = np.asarray(saved[name])
        if name not in keyed:
            if old.shape != tuple(value.shape):
                raise ValueError(f"saved weight {name} has shape {old.shape}, the model {tuple(value.shape)}")
            out[name] = jnp.asarray(old)
            continue
        kind, axis = keyed[name]
        new_keys, old_keys = np.asarray(keys[kind]), np.asarray(saved_keys[kind])
        order = np.argsort(old_keys, kind="stable")
        at = np.minimum(np.searchsorted(old_keys[order], new_keys), max(len(old_keys) - 1, 0))
        found = (old_keys[order][at] == new_keys) if len(old_keys) else np.zeros(len(new_keys), bool)
        merged = np.moveaxis(np.array(value), axis, 0)
        merged[found] = np.moveaxis(old, axis, 0)[order[at[found]]]
        out[name] = jnp.asarray(np.moveaxis(merged, 0, axis))
    return out
