"""One way to map a function over a leading batch axis: all at once, or in groups.

Used for environments (a guard against a batched-LAPACK hang of MJX's Newton solver on
CPU hosts at large batches) and for populations of PETS agents (members one at a time on
a CPU, all at once on an accelerator). Both are `jax.lax.map(..., batch_size=k)`: a
sequential loop over groups of k vmapped calls.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def batched_map(fn: Callable, batch_size: int | None = None) -> Callable:
    """`fn` mapped over the leading axis of all its arguments.

    Args:
      fn: a function of unbatched pytrees.
      batch_size: None: one `jax.vmap` of the whole batch. k >= 1: a `jax.lax.map` over
        groups of at most k vmapped elements (k == 1: a plain sequential loop, no vmap, so a
        `lax.cond` inside stays a real branch); a batch of at most k is one vmap. A batch
        of one is never vmapped, whatever batch_size.

    Returns:
      The mapped function: what `jax.vmap(fn)` computes, up to float rounding.
    """
    if batch_size is not None and (
        not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
    ):
        raise ValueError(f"batch_size={batch_size!r} must be None or an int >= 1")
    vmapped = jax.vmap(fn)

    def mapped(*args):
        sizes = {x.shape[0] if x.ndim else None for x in jax.tree.leaves(args)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(f"batched_map: arguments need one common leading size, got {sizes}")
        (n,) = sizes
        if n == 1:
            # One element is never vmapped: under vmap a `lax.cond` becomes a select that runs
            # both branches (CEM's sampling and update on every tick of its loop).
            out = fn(*jax.tree.map(lambda x: x[0], args))
            return jax.tree.map(lambda y: jnp.expand_dims(y, 0), out)
        if batch_size is None or n <= batch_size:
            return vmapped(*args)
        if batch_size == 1:
            return jax.lax.map(lambda xs: fn(*xs), args)
        # lax.map(..., batch_size=k) itself, written out: its reshape fails on typed PRNG key
        # arrays in jax 0.10.2. Full groups of k in a scan, the remainder in one more vmap.
        groups, full = n // batch_size, (n // batch_size) * batch_size
        head = jax.tree.map(lambda x: x[:full].reshape((groups, batch_size) + x.shape[1:]), args)
        out = jax.lax.map(lambda xs: vmapped(*xs), head)
        out = jax.tree.map(lambda y: y.reshape((full,) + y.shape[2:]), out)
        if full == n:
            return out
        tail = vmapped(*jax.tree.map(lambda x: x[full:], args))
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, tail)

    return mapped
