"""`tokenizer.mean_target_offset`: the Fourier heads start from the first training batch's mean targets."""

import flax.linen as nn
import jax
import numpy as np

from configs import demo_tokenizer
from labram_jax import layout
from labram_jax.models import factory
from labram_jax.models.quantizer import COLLECTION
from labram_jax.ops import fourier


def _model(offset: bool):
    config = demo_tokenizer.get_config()
    config.tokenizer.update(width=100, num_heads=4, encoder_depth=1, decoder_depth=1, num_codes=16, code_dim=8)
    config.tokenizer.mean_target_offset = offset
    return factory.tokenizer_model(config)


def _batch(seed: int):
    """3 examples of up to 4 channels x 3 patches; padded channels and patches hold garbage, not zeros."""
    rng = np.random.default_rng(seed)
    channel_mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    patch_mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], bool)
    eeg = np.cumsum(5 * rng.standard_normal((3, 4, 3, 200)), axis=-1).astype(np.float32)  # 1/f^2, like EEG
    eeg[~channel_mask] = 1e4 * rng.standard_normal(200)
    for b in range(3):
        eeg[b][:, ~patch_mask[b]] = 1e4 * rng.standard_normal(200)
    channel_ids = np.tile(np.arange(1, 5, dtype=np.int32), (3, 1))
    return eeg, channel_ids, channel_mask, patch_mask


def _mean_targets(batch):
    """The per-frequency mean of the amplitude and phase targets over the real tokens, in numpy."""
    eeg, _, channel_mask, patch_mask = batch
    valid = np.asarray(layout.token_mask(channel_mask, patch_mask))
    targets = fourier.fourier_targets(np.where(valid.reshape(3, 4, 3)[..., None], eeg, 0) / layout.INPUT_SCALE, valid)
    return [np.asarray(t, np.float64)[valid].mean(axis=0) for t in targets]


def test_offsets_are_the_first_training_batch_mean_targets_and_then_stay():
    model = _model(True)
    variables = nn.meta.unbox(model.init(jax.random.PRNGKey(0), *_batch(0)))
    state = variables[COLLECTION]
    assert (
        not bool(state["offset_initted"])
        and not np.any(state["amplitude_offset"])
        and not np.any(state["phase_offset"])
    )  # init and evaluation leave them alone
    _, evaluated = model.apply(variables, *_batch(1), train=False, mutable=[COLLECTION])
    assert not bool(evaluated[COLLECTION]["offset_initted"])

    rngs = {"kmeans": jax.random.PRNGKey(1), "restart": jax.random.PRNGKey(2), "dropout": jax.random.PRNGKey(3)}
    first = _batch(1)
    _, updated = model.apply(variables, *first, train=True, mutable=[COLLECTION], rngs=rngs)
    state = nn.meta.unbox(updated)[COLLECTION]
    assert bool(state["offset_initted"])
    amplitude, phase = _mean_targets(first)
    assert amplitude.max() > 1.0  # the mean spectrum is far from the heads' near-zero start
    np.testing.assert_allclose(np.asarray(state["amplitude_offset"]), amplitude, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(state["phase_offset"]), phase, rtol=1e-4, atol=1e-5)

    _, again = model.apply({**variables, COLLECTION: state}, *_batch(2), train=True, mutable=[COLLECTION], rngs=rngs)
    for name in ("amplitude_offset", "phase_offset"):
        np.testing.assert_array_equal(np.asarray(again[COLLECTION][name]), np.asarray(state[name]))


def test_heads_add_the_offsets_and_the_reference_has_none():
    ours, reference = _model(True), _model(False)
    variables = nn.meta.unbox(ours.init(jax.random.PRNGKey(0), *_batch(0)))
    plain = nn.meta.unbox(reference.init(jax.random.PRNGKey(0), *_batch(0)))
    assert set(variables[COLLECTION]) - set(plain[COLLECTION]) == {"amplitude_offset", "phase_offset", "offset_initted"}
    rng = np.random.default_rng(4)
    offsets = {k: rng.standard_normal(200).astype(np.float32) for k in ("amplitude_offset", "phase_offset")}
    variables[COLLECTION].update(offsets)
    _, channel_ids, channel_mask, patch_mask = _batch(0)
    words = jax.random.normal(jax.random.PRNGKey(5), (3, 12, 8))
    args = (words, channel_ids, channel_mask, patch_mask)
    with_offsets = ours.apply(variables, *args, method="decode")
    without = reference.apply({**variables, COLLECTION: plain[COLLECTION]}, *args, method="decode")
    for a, b, name in zip(with_offsets, without, offsets, strict=True):
        np.testing.assert_allclose(np.asarray(a) - np.asarray(b), np.broadcast_to(offsets[name], a.shape), atol=1e-5)
