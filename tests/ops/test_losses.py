import numpy as np

from labram_jax.ops import losses


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_mem_loss_is_two_mean_cross_entropies():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 6, 9)).astype(np.float32)
    labels = rng.integers(0, 9, (2, 6)).astype(np.int32)
    masked = np.array([[1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 0]], bool)
    valid = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], bool)
    visible = valid & ~masked
    loss, m = losses.mem_loss(logits, labels, masked, visible)
    nll = -np.take_along_axis(_log_softmax(logits.astype(np.float64)), labels[..., None], -1)[..., 0]
    ce1, ce2 = nll[masked].mean(), nll[visible].mean()
    np.testing.assert_allclose(float(loss), ce1 + ce2, rtol=1e-5)
    np.testing.assert_allclose(float(m["loss_rec"]), ce1 / 2, rtol=1e-5)
    hits = logits.argmax(-1) == labels
    np.testing.assert_allclose(float(m["mlm_acc"]), hits[masked].mean(), rtol=1e-6)
    np.testing.assert_allclose(float(m["mlm_acc_sym"]), hits[visible].mean(), rtol=1e-6)
    masked_labels = labels[masked]
    np.testing.assert_allclose(
        float(m["majority_acc"]), np.bincount(masked_labels).max() / masked_labels.size, rtol=1e-6
    )


def test_majority_hits_on_a_hand_example():
    labels = np.array([[3, 3, 1, 2], [3, 1, 1, 1]], np.int32)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 1]], bool)
    # Masked labels: 3, 3, 1, 3, 1 -> code 3 three times (the unmasked 1s do not count).
    assert float(losses.majority_hits(labels, mask, 4)) == 3.0
    assert float(losses.majority_hits(labels, np.ones_like(mask), 4)) == 4.0  # code 1 four times
    # A collapsed tokenizer (every target the same code) makes the baseline perfect.
    assert float(losses.majority_hits(np.full((2, 4), 7), mask, 8)) == mask.sum()


def test_label_smoothing_cross_entropy_matches_timm_formula():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 6)).astype(np.float32)
    labels = rng.integers(0, 6, 5)
    lsm = _log_softmax(logits.astype(np.float64))
    eps = 0.1
    expected = ((1 - eps) * -lsm[np.arange(5), labels] + eps * -lsm.mean(-1)).mean()
    np.testing.assert_allclose(float(losses.label_smoothing_cross_entropy(logits, labels, eps)), expected, rtol=1e-5)


def test_binary_cross_entropy_with_logits():
    logits = np.array([[2.0], [-1.0], [0.3]], np.float32)
    labels = np.array([1, 0, 0])
    p = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
    expected = -(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean()
    np.testing.assert_allclose(float(losses.binary_cross_entropy(logits, labels)), expected, rtol=1e-5)
    weights = np.array([1, 1, 0], bool)
    np.testing.assert_allclose(
        float(losses.binary_cross_entropy(logits, labels, weights)), -(np.log(p[0]) + np.log(1 - p[1])) / 2, rtol=1e-5
    )


def test_tokenizer_loss_sums_components_over_real_tokens():
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    pred2, target2 = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    total, m = losses.tokenizer_loss({"quant_loss": np.float32(0.25)}, pred, target, pred2, target2, mask)
    mse = ((pred - target) ** 2)[mask].mean()
    mse2 = ((pred2 - target2) ** 2)[mask].mean()
    np.testing.assert_allclose(float(m["rec_loss"]), mse, rtol=1e-5)
    np.testing.assert_allclose(float(m["rec_angle_loss"]), mse2, rtol=1e-5)
    np.testing.assert_allclose(float(total), 0.25 + mse + mse2, rtol=1e-5)
