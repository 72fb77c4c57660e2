import jax
import jax.numpy as jnp
import numpy as np

from labram_jax.ops import quantize as vq


def _l2n(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def test_nearest_codes_are_argmin_of_squared_distance():
    rng = np.random.default_rng(0)
    z = _l2n(rng.standard_normal((50, 8)))
    codebook = _l2n(rng.standard_normal((16, 8)))
    expected = np.argmin(((z[:, None] - codebook[None]) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(
        np.asarray(vq.nearest_codes(z.astype(np.float32), codebook.astype(np.float32))), expected
    )


def test_straight_through_value_is_codeword_and_gradient_identity():
    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)
    z_q = jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)
    np.testing.assert_allclose(np.asarray(vq.straight_through(z, z_q)), np.asarray(z_q), rtol=1e-6, atol=1e-6)
    w = jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)
    grad = jax.grad(lambda z: jnp.sum(w * vq.straight_through(z, z_q)))(z)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(w), rtol=1e-6)


def test_ema_step_closed_form_on_hand_example():
    s = 1 / np.sqrt(2)
    codebook = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
    z = np.array([[s, s], [1, 0], [0, 1], [0.6, 0.8]], np.float32)
    codes = np.array([0, 0, 1, 1], np.int32)
    weights = np.array([1, 1, 1, 0], np.float32)  # the last vector is padding
    new, bins = vq.ema_codebook_update(codebook, z, codes, weights, decay=0.99)
    np.testing.assert_array_equal(np.asarray(bins), [2, 1, 0, 0])
    m0 = _l2n(np.array([s + 1, s]) / 2)
    e0 = _l2n(0.99 * np.array([1, 0]) + 0.01 * m0)
    e1 = np.array([0.0, 1.0])  # mean of [0, 1] is the codeword itself
    np.testing.assert_allclose(np.asarray(new)[0], e0, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(new)[1], e1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(new)[2:], codebook[2:], rtol=1e-7)  # unused codes unchanged


def test_kmeans_matches_numpy_and_keeps_empty_clusters():
    rng = np.random.default_rng(2)
    centres = _l2n(rng.standard_normal((3, 4)))
    samples = _l2n(np.repeat(centres, 20, axis=0) + 0.05 * rng.standard_normal((60, 4))).astype(np.float32)
    weights = np.ones(60, np.float32)
    key = jax.random.PRNGKey(0)
    means, bins = vq.kmeans_cosine(key, samples, weights, num_clusters=5, num_iters=10)
    means, bins = np.asarray(means), np.asarray(bins)
    np.testing.assert_allclose(np.linalg.norm(means, axis=-1), 1.0, rtol=1e-5)

    # The same iterations in numpy from the same starting means.
    ref = samples[np.asarray(vq.sample_real(key, jnp.asarray(weights), 5))].astype(np.float64)
    for _ in range(10):
        buckets = np.argmax(samples @ ref.T, axis=-1)
        ref_bins = np.bincount(buckets, minlength=5)
        sums = np.zeros_like(ref)
        np.add.at(sums, buckets, samples)
        new = _l2n(sums / np.maximum(ref_bins, 1)[:, None])
        ref = np.where((ref_bins == 0)[:, None], ref, new)
    np.testing.assert_allclose(means, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bins, ref_bins)
    assert bins.sum() == 60


def test_kmeans_ignores_padding_and_samples_with_replacement_when_few_vectors():
    rng = np.random.default_rng(3)
    samples = _l2n(rng.standard_normal((6, 4))).astype(np.float32)
    weights = np.array([1, 1, 1, 0, 0, 0], np.float32)
    samples[3:] = _l2n(np.array([1.0, 0, 0, 0]))
    idx = np.asarray(vq.sample_real(jax.random.PRNGKey(0), jnp.asarray(weights), 8))
    assert set(idx.tolist()) <= {0, 1, 2}  # fewer real vectors than clusters: drawn with replacement
    means, bins = vq.kmeans_cosine(jax.random.PRNGKey(0), samples, weights, 8, 3)
    assert np.asarray(bins).sum() == 3


def test_restart_reseeds_dead_codes_from_real_vectors_only():
    rng = np.random.default_rng(4)
    k, d = 6, 4
    codebook = _l2n(rng.standard_normal((k, d))).astype(np.float32)
    z = _l2n(rng.standard_normal((10, d))).astype(np.float32)
    weights = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], np.float32)
    z[6:] = _l2n(np.ones(d))  # padding rows: must never become a codeword
    # Shares of uniform use 1/6: codes 1 and 4 fall below 0.5 / 6 and are dead.
    usage = np.array([0.3, 0.05, 0.2, 0.2, 0.0, 0.25], np.float32)
    for seed in range(20):
        new, new_usage, restarted = vq.restart_dead_codes(
            jax.random.PRNGKey(seed), codebook, usage, z, weights, threshold=0.5
        )
        new, new_usage = np.asarray(new), np.asarray(new_usage)
        assert int(restarted) == 2
        np.testing.assert_array_equal(new[[0, 2, 3, 5]], codebook[[0, 2, 3, 5]])
        for j in (1, 4):
            matches = np.flatnonzero(np.all(np.isclose(z, new[j]), axis=1))
            assert matches.size and set(matches) <= {0, 1, 2, 3, 4, 5}, (seed, j, matches)
        assert not np.allclose(new[1], new[4])  # two dead codes get two different real vectors
        np.testing.assert_allclose(new_usage[[1, 4]], 1.0 / k)
        np.testing.assert_array_equal(new_usage[[0, 2, 3, 5]], usage[[0, 2, 3, 5]])


def test_restart_without_real_vectors_changes_nothing():
    codebook = _l2n(np.eye(3, dtype=np.float32))
    z = np.ones((4, 3), np.float32)
    new, usage, restarted = vq.restart_dead_codes(
        jax.random.PRNGKey(0), codebook, np.zeros(3, np.float32), z, np.zeros(4, np.float32), threshold=0.5
    )
    assert int(restarted) == 0
    np.testing.assert_array_equal(np.asarray(new), codebook)
    np.testing.assert_array_equal(np.asarray(usage), 0.0)


def test_usage_shares_and_perplexity_closed_forms():
    codes = np.array([0, 0, 1, 3, 3, 3], np.int32)
    weights = np.array([1, 1, 1, 1, 1, 0], np.float32)
    np.testing.assert_allclose(np.asarray(vq.usage_shares(codes, weights, 4)), [0.4, 0.2, 0.0, 0.4])
    p = np.array([0.4, 0.2, 0.4])
    np.testing.assert_allclose(
        float(vq.perplexity(jnp.asarray([2.0, 1.0, 0.0, 2.0]))), np.exp(-np.sum(p * np.log(p))), rtol=1e-6
    )
    assert float(vq.perplexity(jnp.asarray([0.0, 5.0, 0.0]))) == 1.0  # a collapse: one effective code
    np.testing.assert_allclose(float(vq.perplexity(jnp.ones(8))), 8.0, rtol=1e-6)


def test_mean_pairwise_cosine_equals_brute_force():
    rng = np.random.default_rng(5)
    z = _l2n(rng.standard_normal((9, 5)))
    gram = z @ z.T
    brute = (gram.sum() - np.trace(gram)) / (9 * 8)
    np.testing.assert_allclose(float(vq.mean_pairwise_cosine(jnp.asarray(z.sum(0)), 9)), brute, rtol=1e-5, atol=1e-6)
    same = np.tile(z[:1], (4, 1))
    np.testing.assert_allclose(float(vq.mean_pairwise_cosine(jnp.asarray(same.sum(0)), 4)), 1.0, rtol=1e-6)
    opposite = np.stack([z[0], -z[0]])
    np.testing.assert_allclose(float(vq.mean_pairwise_cosine(jnp.asarray(opposite.sum(0)), 2)), -1.0, atol=1e-6)
    assert np.isnan(float(vq.mean_pairwise_cosine(jnp.asarray(z[0]), 1)))


def test_code_entropies_match_numpy_and_ignore_padding():
    rng = np.random.default_rng(6)
    z = _l2n(rng.standard_normal((7, 4))).astype(np.float32)
    codebook = _l2n(rng.standard_normal((5, 4))).astype(np.float32)
    weights = np.array([1, 1, 1, 1, 1, 0, 0], np.float32)
    per_vector, average = vq.code_entropies(z, codebook, weights, temperature=0.3)
    d2 = ((z[:, None] - codebook[None]) ** 2).sum(-1)
    logits = -d2 / 0.3
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    real = p[:5]
    np.testing.assert_allclose(float(per_vector), np.mean(-(real * np.log(real)).sum(1)), rtol=1e-5)
    mean = real.mean(0)
    np.testing.assert_allclose(float(average), -(mean * np.log(mean)).sum(), rtol=1e-5)
    # The gradient reaches z only: the codebook is a constant of the penalty.
    grad = jax.grad(lambda c: vq.code_entropies(z, c, weights, 0.3)[1])(jnp.asarray(codebook))
    np.testing.assert_array_equal(np.asarray(grad), 0.0)
