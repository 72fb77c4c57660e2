"""The quantiser module: k-means once, EMA through the collection, nearest l2-normalised codes."""

import flax.linen as nn
import jax
import numpy as np

from labram_jax.models.quantizer import NormEMAQuantizer
from labram_jax.models.spec import QuantizerSpec
from labram_jax.ops.quantize import ema_codebook_update

SPEC = QuantizerSpec(num_codes=8, code_dim=4, kmeans_iters=50)


def _z(seed, n=40):
    return np.random.default_rng(seed).standard_normal((2, n // 2, 4)).astype(np.float32)


def _l2n(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_kmeans_init_happens_once_and_matches_ops():
    model = NormEMAQuantizer(SPEC)
    mask = np.ones((2, 20), bool)
    variables = model.init(jax.random.PRNGKey(0), _z(0), mask)
    state = nn.meta.unbox(variables)["quantizer"]
    assert not bool(state["initted"]) and np.all(np.asarray(state["codebook"]) == 0)  # untouched by init

    rng = jax.random.PRNGKey(3)
    _, first = model.apply(variables, _z(1), mask, train=False, mutable=["quantizer"], rngs={"kmeans": rng})
    first = nn.meta.unbox(first)["quantizer"]
    assert bool(first["initted"])
    # Enough iterations to converge: the codebook is then a fixed point of spherical k-means on the batch.
    codebook = np.asarray(first["codebook"], np.float64)
    samples = _l2n(_z(1).astype(np.float64)).reshape(-1, 4)
    buckets = np.argmax(samples @ codebook.T, axis=-1)
    counts = np.bincount(buckets, minlength=8)
    np.testing.assert_allclose(np.linalg.norm(codebook, axis=-1), 1.0, rtol=1e-5)
    for j in np.flatnonzero(counts):
        np.testing.assert_allclose(codebook[j], _l2n(samples[buckets == j].mean(0)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(first["ema_cluster_size"]), counts)

    # A second batch in eval mode: no second k-means, no EMA; only the usage statistics move.
    _, second = model.apply(
        {"quantizer": first}, _z(2), mask, train=False, mutable=["quantizer"], rngs={"kmeans": jax.random.PRNGKey(4)}
    )
    second = nn.meta.unbox(second)["quantizer"]
    np.testing.assert_array_equal(np.asarray(second["codebook"]), np.asarray(first["codebook"]))
    assert np.abs(np.asarray(second["usage"]) - np.asarray(first["usage"])).max() > 0


def test_training_step_codes_loss_and_ema():
    model = NormEMAQuantizer(SPEC)
    mask = np.ones((2, 20), bool)
    mask[1, 15:] = False
    codebook = _l2n(np.random.default_rng(5).standard_normal((8, 4))).astype(np.float32)
    state = {
        "codebook": codebook,
        "ema_cluster_size": np.zeros(8, np.float32),
        "ema_embed_avg": codebook.copy(),
        "initted": np.asarray(True),
        "usage": np.zeros(8, np.float32),
    }
    z = _z(6)
    (z_st, codes, loss), new = model.apply({"quantizer": state}, z, mask, train=True, mutable=["quantizer"])
    zn = _l2n(z.astype(np.float64))
    expected_codes = np.argmin(((zn[..., None, :] - codebook[None, None]) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(np.asarray(codes), expected_codes)
    np.testing.assert_allclose(np.asarray(z_st), codebook[expected_codes], rtol=1e-5, atol=1e-6)
    expected_loss = ((codebook[expected_codes] - zn) ** 2)[mask].mean()
    np.testing.assert_allclose(float(loss["quant_loss"]), expected_loss, rtol=1e-5)
    new = nn.meta.unbox(new)["quantizer"]
    flat_mask = mask.reshape(-1).astype(np.float32)
    ema, bins = ema_codebook_update(
        codebook, zn.reshape(-1, 4).astype(np.float32), expected_codes.reshape(-1).astype(np.int32), flat_mask, 0.99
    )
    np.testing.assert_allclose(np.asarray(new["codebook"]), np.asarray(ema), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new["usage"]), 0.01 * np.asarray(bins), rtol=1e-6)
    assert float(np.asarray(bins).sum()) == mask.sum()


def _state(codebook, **extra):
    k = codebook.shape[0]
    return {
        "codebook": codebook,
        "ema_cluster_size": np.zeros(k, np.float32),
        "ema_embed_avg": codebook.copy(),
        "initted": np.asarray(True),
        "usage": np.zeros(k, np.float32),
        **extra,
    }


def test_restart_reseeds_a_dead_code_from_a_real_token_never_padding():
    spec = QuantizerSpec(num_codes=8, code_dim=4, restart_threshold=0.5, restart_decay=0.5)
    model = NormEMAQuantizer(spec)
    mask = np.zeros((2, 20), bool)
    mask[0, :6] = True  # six real tokens, 34 padded ones
    z = _z(7)
    z[~mask] = 5.0  # padded tokens all point along (1, 1, 1, 1)
    codebook = _l2n(np.random.default_rng(8).standard_normal((8, 4))).astype(np.float32)
    usage = np.full(8, 1 / 8, np.float32)
    usage[3] = 0.0  # dead before this step: its EMA cannot climb back above 0.5 / 8 in one step
    state = _state(codebook, restart_usage=usage, restarts=np.asarray(0, np.int32))
    real = _l2n(z[mask].astype(np.float64))
    for seed in range(5):
        (_, codes, _), new = model.apply(
            {"quantizer": state}, z, mask, train=True, mutable=["quantizer"], rngs={"restart": jax.random.PRNGKey(seed)}
        )
        new = nn.meta.unbox(new)["quantizer"]
        restarted = np.flatnonzero(np.asarray(new["restart_usage"]) == np.float32(1 / 8))
        assert 3 in restarted and int(new["restarts"]) == len(restarted)
        for j in restarted:
            distances = np.linalg.norm(real - np.asarray(new["codebook"])[j], axis=1)
            assert distances.min() < 1e-5, (seed, j)  # a real token, not the padding direction
            assert not np.allclose(np.asarray(new["codebook"])[j], 0.5)


def test_reference_layout_has_no_restart_state():
    variables = NormEMAQuantizer(SPEC).init(jax.random.PRNGKey(0), _z(0), np.ones((2, 20), bool))
    assert set(nn.meta.unbox(variables)["quantizer"]) == {
        "codebook",
        "ema_cluster_size",
        "ema_embed_avg",
        "initted",
        "usage",
    }


def test_continuous_warm_up_passes_z_then_initialises_the_codebook():
    spec = QuantizerSpec(num_codes=8, code_dim=4, kmeans_iters=5, continuous_steps=2)
    model = NormEMAQuantizer(spec)
    mask = np.ones((2, 20), bool)
    variables = model.init(jax.random.PRNGKey(0), _z(0), mask)
    state = nn.meta.unbox(variables)["quantizer"]
    for step in range(2):
        (quantized, _, losses), new = model.apply(
            {"quantizer": state},
            _z(step + 1),
            mask,
            train=True,
            mutable=["quantizer"],
            rngs={"kmeans": jax.random.PRNGKey(1)},
        )
        state = nn.meta.unbox(new)["quantizer"]
        np.testing.assert_allclose(np.asarray(quantized), _l2n(_z(step + 1)), rtol=1e-5)  # the continuous z
        assert float(losses["quant_loss"]) == 0.0 and not bool(state["initted"])
        assert np.all(np.asarray(state["codebook"]) == 0) and int(state["train_steps"]) == step + 1
    # Evaluated after the warm-up but before the k-means batch: still the continuous z, not an empty codebook.
    quantized, _, losses = model.apply({"quantizer": state}, _z(3), mask)
    np.testing.assert_allclose(np.asarray(quantized), _l2n(_z(3)), rtol=1e-5)
    assert float(losses["quant_loss"]) == 0.0
    (quantized, codes, _), new = model.apply(
        {"quantizer": state}, _z(3), mask, train=True, mutable=["quantizer"], rngs={"kmeans": jax.random.PRNGKey(1)}
    )
    state = nn.meta.unbox(new)["quantizer"]
    assert bool(state["initted"]) and np.all(np.abs(np.linalg.norm(np.asarray(state["codebook"]), axis=1) - 1) < 1e-5)
    # From then on the decoder gets codewords (the straight-through value).
    assert np.asarray(state["ema_cluster_size"]).sum() == mask.sum()  # k-means ran on this batch
    assert np.all(np.abs(np.linalg.norm(np.asarray(quantized), axis=-1) - 1) < 1e-5)
    assert len(np.unique(np.round(np.asarray(quantized).reshape(-1, 4), 4), axis=0)) <= 8  # codewords only
    assert len(np.unique(np.asarray(codes))) > 1
