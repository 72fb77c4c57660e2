"""Linear-layer products in a low-precision compute dtype, accumulated in float32.

With `model.dtype=bfloat16`, a plain `einsum` of two bf16 arrays asks XLA for a bf16 result. XLA:CPU
does not run such products in bf16: it converts both operands to float32 and multiplies in float32, so bf16
compute brought only the extra conversions (measured on the AVX-512-BF16 development CPU, a
(3696 x 200) x (200 x 800) product: float32 7.1 ms, bf16 -> bf16 7.9 ms, bf16 -> float32 3.1 ms). Asking for
a float32 result (`preferred_element_type`) selects its native bf16 kernels, and is also what GPUs do
inside a bf16 matmul (float32 accumulation), so the numerics are those of mixed-precision training anyway.

`einsum` keeps that form in the backward: the cotangent is cast to the compute dtype and both gradient
products are again low-precision products with float32 results. Autodiff of the forward would instead
multiply the float32 cotangent by the bf16 operand (a mixed product, run in float32). In float32 it is a
plain `jnp.einsum`. On GPUs the products are the same bf16 GEMMs with float32 accumulation, rounded to
bf16 after the product instead of inside it (same values); their speed there has not been measured yet.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _check_equation(equation: str) -> tuple[str, str, str]:
    inputs, out = equation.replace(" ", "").split("->")
    lhs, rhs = inputs.split(",")
    # Every index of an operand must appear in the other operand or in the output, so that each
    # gradient is again one einsum (true of linear layers; a sum over an index of one operand alone is not).
    for name, own, other in (("lhs", lhs, rhs), ("rhs", rhs, lhs)):
        lost = set(own) - set(other) - set(out)
        if lost:
            raise ValueError(f"einsum {equation!r}: index {sorted(lost)} of the {name} is summed alone")
    return lhs, rhs, out


def _product(equation: str, a: jax.Array, b: jax.Array, dtype) -> jax.Array:
    return jnp.einsum(equation, a, b, preferred_element_type=jnp.float32).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _mixed_einsum(equation: str, x: jax.Array, w: jax.Array) -> jax.Array:
    return _product(equation, x, w, x.dtype)


def _mixed_fwd(equation, x, w):
    return _product(equation, x, w, x.dtype), (x, w)


def _mixed_bwd(equation, res, g):
    x, w = res
    lhs, rhs, out = _check_equation(equation)
    g = g.astype(x.dtype)
    return _product(f"{out},{rhs}->{lhs}", g, w, x.dtype), _product(f"{lhs},{out}->{rhs}", x, g, w.dtype)


_mixed_einsum.defvjp(_mixed_fwd, _mixed_bwd)


def einsum(equation: str, x: jax.Array, w: jax.Array, dtype) -> jax.Array:
    """`einsum(equation, x, w)` computed in `dtype` (operands cast to it), result in `dtype`.

    Below 32 bits the products accumulate in float32, forward and backward (module docstring).
    """
    x, w = x.astype(dtype), w.astype(dtype)
    if jnp.dtype(dtype).itemsize >= 4:
        return jnp.einsum(equation, x, w)
    _check_equation(equation)
    return _mixed_einsum(equation, x, w)


def dot_general(
    lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None, preferred_element_type=None
) -> jax.Array:
    """`nn.Dense(dot_general=...)`: its `(..., in) x (in, out)` product through `einsum` above."""
    (lc, rc), (lb, rb) = dimension_numbers
    if lb or rb or tuple(lc) != (lhs.ndim - 1,) or tuple(rc) != (0,) or rhs.ndim != 2:
        return jax.lax.dot_general(
            lhs, rhs, dimension_numbers, precision=precision, preferred_element_type=preferred_element_type
        )
    letters = "abcdefghijklmnopqrstuvw"[: lhs.ndim - 1]
    return einsum(f"{letters}y,yz->{letters}z", lhs, rhs, lhs.dtype)
