"""`labram_jax.ops.argext`: two-level argmax/argmin equal `jnp.argmax`/`jnp.argmin` exactly."""

import jax.numpy as jnp
import numpy as np
import pytest

from labram_jax.ops import argext


@pytest.mark.parametrize("shape", [(3, 5, 8192), (7, 256), (4, 1024)])
def test_equals_jnp_on_random_and_tied_values(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    tied = np.round(x * 2) / 2  # many exact ties: the first index must win
    for a in (x, tied):
        np.testing.assert_array_equal(argext.argmax(jnp.asarray(a)), np.argmax(a, -1))
        np.testing.assert_array_equal(argext.argmin(jnp.asarray(a)), np.argmin(a, -1))


def test_ties_across_chunks_pick_the_first_chunk():
    x = np.zeros((2, 1024), np.float32)
    x[0, [5, 300, 900]] = 3.0  # equal maxima in three chunks
    x[1, [1000, 130]] = 2.0
    np.testing.assert_array_equal(argext.argmax(jnp.asarray(x)), [5, 130])
    np.testing.assert_array_equal(argext.argmin(jnp.asarray(-x)), [5, 130])


def test_nan_and_infinities_behave_as_jnp():
    x = np.random.default_rng(1).standard_normal((4, 512)).astype(np.float32)
    x[0, 400] = np.nan
    x[0, 450] = np.nan
    x[1, 200] = np.inf
    x[2, :] = -np.inf
    x[3, 37] = np.nan
    x[3, 10] = np.inf
    np.testing.assert_array_equal(argext.argmax(jnp.asarray(x)), jnp.argmax(jnp.asarray(x), -1))
    np.testing.assert_array_equal(argext.argmin(jnp.asarray(x)), jnp.argmin(jnp.asarray(x), -1))


def test_lengths_that_do_not_split_fall_back():
    x = np.random.default_rng(2).standard_normal((3, 200)).astype(np.float32)
    out = argext.argmax(jnp.asarray(x))
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, np.argmax(x, -1))
