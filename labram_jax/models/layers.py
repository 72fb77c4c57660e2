"""Small layers shared by every model: exact GELU and a Dense with logical axis names."""

from __future__ import annotations

import flax.linen as nn
import jax

from labram_jax.models import initializers as inits
from labram_jax.ops import linear

GELU = lambda x: jax.nn.gelu(x, approximate=False)  # noqa: E731  (the reference uses exact erf GELU)


def logical_dense(
    features: int,
    axes: tuple[str, str],
    kernel_init: inits.Initializer,
    bias_init: inits.Initializer = inits.zeros,
    *,
    dtype=None,
    name: str | None = None,
) -> nn.Dense:
    """`nn.Dense` whose kernel carries the logical axes `(in, out)` and whose bias carries `(out,)`; in a
    16-bit `dtype` its products accumulate in float32 (`labram_jax.ops.linear`)."""
    return nn.Dense(
        features,
        dtype=dtype,
        name=name,
        dot_general=linear.dot_general,
        kernel_init=nn.with_logical_partitioning(kernel_init, axes),
        bias_init=nn.with_logical_partitioning(bias_init, axes[1:]),
    )
