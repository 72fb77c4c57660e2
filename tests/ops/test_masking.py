import jax
import numpy as np
import pytest

from labram_jax import layout
from labram_jax.ops import masking


@pytest.mark.parametrize("c,a", [(3, 4), (5, 3), (1, 1), (23, 10)])
def test_exact_count_and_complement(c, a):
    n = c * a
    token_mask = np.ones((8, n), bool)
    mask = np.asarray(masking.random_masking(jax.random.PRNGKey(0), token_mask))
    assert (mask.sum(-1) == n - int(n / 2)).all()
    other = np.asarray(masking.symmetric_complement(mask, token_mask))
    assert not (mask & other).any() and (mask | other).all()


def test_padding_never_masked_and_counts_follow_real_tokens():
    channel_mask = np.array([[1, 1, 1], [1, 0, 0]], bool)
    patch_mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    token_mask = np.asarray(layout.token_mask(channel_mask, patch_mask))
    for seed in range(5):
        mask = np.asarray(masking.random_masking(jax.random.PRNGKey(seed), token_mask))
        other = np.asarray(masking.symmetric_complement(mask, token_mask))
        assert not (mask & ~token_mask).any() and not (other & ~token_mask).any()
        real = token_mask.sum(-1)
        np.testing.assert_array_equal(mask.sum(-1), real - (real // 2))
        np.testing.assert_array_equal((mask | other), token_mask)


def test_masks_are_random_and_reproducible():
    token_mask = np.ones((4, 40), bool)
    a = np.asarray(masking.random_masking(jax.random.PRNGKey(1), token_mask))
    b = np.asarray(masking.random_masking(jax.random.PRNGKey(1), token_mask))
    c = np.asarray(masking.random_masking(jax.random.PRNGKey(2), token_mask))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a[0] != a[1]).any()  # per-sample noise


def test_num_masked_matches_reference_formula():
    for n in range(1, 50):
        assert int(masking.num_masked(np.asarray(n), 0.5)) == n - int(n * (1 - 0.5))
        assert int(masking.num_masked(np.asarray(n), 0.4)) == n - int(n * (1 - 0.4))
