"""The reference's initialisers (ref. §1.8), which are not Flax's defaults.

* timm `trunc_normal_(std)` with its default bounds `a=-2, b=2` truncates at +-2 *absolute*, i.e. at +-100
  standard deviations for std 0.02: in effect a plain normal (modeling_finetune.py, modeling_vqnsp.py);
* modeling_pretrain.py calls it with `a=-std, b=std`: a normal truncated at +-1 sigma (std ~ 0.54 sigma);
* PyTorch's own Conv2d/Linear defaults (Kaiming-uniform with a=sqrt(5)): `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
  for both weight and bias.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Initializer = Callable[..., jnp.ndarray]


def trunc_normal(std: float = 0.02, lower: float = -2.0, upper: float = 2.0, scale: float = 1.0) -> Initializer:
    """timm `trunc_normal_(std, a=lower, b=upper)` with bounds in absolute units, times `scale`."""

    def init(key, shape, dtype=jnp.float32):
        draws = jax.random.truncated_normal(key, lower / std, upper / std, shape, jnp.float32)
        return (draws * std * scale).astype(dtype)

    return init


def trunc_normal_one_sigma(std: float = 0.02, scale: float = 1.0) -> Initializer:
    """The pre-training model's initialiser: normal(0, std) truncated at +-std."""
    return trunc_normal(std, -std, std, scale)


def torch_default_uniform(fan_in: int) -> Initializer:
    """PyTorch's default for Conv/Linear weights and biases: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`."""
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, jnp.float32, -bound, bound).astype(dtype)

    return init


def zeros(key, shape, dtype=jnp.float32):
    del key
    return jnp.zeros(shape, dtype)


def ones(key, shape, dtype=jnp.float32):
    del key
    return jnp.ones(shape, dtype)
