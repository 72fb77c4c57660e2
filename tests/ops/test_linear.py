"""`labram_jax.ops.linear`: low-precision linear products accumulated in float32, forward and backward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labram_jax.ops import linear

BF16 = jnp.bfloat16


def _bf16_values(rng, shape):
    """float32 arrays holding exactly representable bf16 values (so the reference sees the same inputs)."""
    return np.asarray(jnp.asarray(rng.standard_normal(shape), BF16).astype(jnp.float32))


@pytest.mark.parametrize(
    "equation,xs,ws",
    [
        ("bnd,dthk->bnthk", (2, 7, 12), (12, 3, 2, 5)),  # the fused qkv projection
        ("bnhk,hkd->bnd", (2, 7, 2, 5), (2, 5, 12)),  # the attention output projection
    ],
)
def test_bf16_einsum_matches_float32_math_forward_and_backward(equation, xs, ws):
    rng = np.random.default_rng(0)
    x, w = _bf16_values(rng, xs), _bf16_values(rng, ws)
    y_shape = jnp.einsum(equation, x, w).shape
    g = _bf16_values(rng, y_shape)

    y, vjp = jax.vjp(lambda a, b: linear.einsum(equation, a, b, BF16), jnp.asarray(x, BF16), jnp.asarray(w, BF16))
    dx, dw = vjp(jnp.asarray(g, BF16))
    assert y.dtype == dx.dtype == dw.dtype == BF16

    # Reference: the same bf16 values multiplied in float64, rounded once to bf16 at the end.
    lhs, rhs, out = equation.split("->")[0].split(",") + [equation.split("->")[1]]
    ref_y = np.einsum(equation, x.astype(np.float64), w.astype(np.float64))
    ref_dx = np.einsum(f"{out},{rhs}->{lhs}", g.astype(np.float64), w.astype(np.float64))
    ref_dw = np.einsum(f"{lhs},{out}->{rhs}", x.astype(np.float64), g.astype(np.float64))
    for got, ref in ((y, ref_y), (dx, ref_dx), (dw, ref_dw)):
        np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), ref, rtol=2**-7, atol=1e-6 * np.abs(ref).max())


def test_float32_is_the_plain_einsum_and_its_gradient():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 6)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    f = lambda a, b: jnp.sum(jnp.sin(linear.einsum("bnd,de->bne", a, b, jnp.float32)))
    g = lambda a, b: jnp.sum(jnp.sin(jnp.einsum("bnd,de->bne", a, b)))
    np.testing.assert_array_equal(f(x, w), g(x, w))
    for a, b in zip(jax.grad(f, (0, 1))(x, w), jax.grad(g, (0, 1))(x, w)):
        np.testing.assert_array_equal(a, b)


def test_bf16_products_request_float32_results_in_the_compiled_step():
    """The point of the module: every product of the bf16 forward and backward asks for float32 results
    (XLA:CPU's native bf16 kernels); none is a bf16 x bf16 -> bf16 product."""
    x, w = jnp.ones((4, 6), BF16), jnp.ones((6, 5), BF16)
    loss = lambda a, b: jnp.sum(linear.einsum("nd,de->ne", a, b, BF16).astype(jnp.float32) ** 2)
    text = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line and "=" in line]
    assert len(dots) == 3, dots
    assert all("-> tensor<" in d and "xf32>" in d.split("->")[-1] for d in dots), dots
    assert all("bf16" in d.split("->")[0] for d in dots), dots


def test_dense_dot_general_hook_matches_lax():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((4, 7)).astype(np.float32)
    dims = (((2,), (0,)), ((), ()))
    np.testing.assert_allclose(linear.dot_general(x, w, dims), jax.lax.dot_general(x, w, dims), rtol=1e-6)
    xb, wb = jnp.asarray(x, BF16), jnp.asarray(w, BF16)
    out = linear.dot_general(xb, wb, dims)
    assert out.dtype == BF16
    np.testing.assert_allclose(
        np.asarray(out, np.float32),
        np.einsum("abd,de->abe", np.asarray(xb, np.float64), np.asarray(wb, np.float64)),
        rtol=2**-7,
        atol=1e-3,
    )


def test_an_index_summed_in_one_operand_alone_is_refused():
    with pytest.raises(ValueError, match="summed alone"):
        linear.einsum("ij,kl->il", jnp.ones((2, 3), BF16), jnp.ones((4, 5), BF16), BF16)
