"""Every metric against its closed form, computed independently with numpy."""

import json
import math

import numpy as np
import pytest

from labram_jax.train import evaluation as ev


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def _auroc_pairs(y, s):
    # Mann-Whitney: probability a positive outranks a negative, ties count half.
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def _average_precision(y, s):
    # Step formula without ties: mean over positives of precision at each positive's rank.
    order = np.argsort(-s)
    hits = y[order]
    precision_at_k = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return precision_at_k[hits == 1].mean()


def _recalls(y, pred, k):
    return np.array([(pred[y == c] == c).mean() for c in range(k) if (y == c).any()])


def test_binary_metrics_match_closed_forms():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
    probs = np.array([0.1, 0.6, 0.35, 0.8, 0.2, 0.9, 0.45, 0.3, 0.55, 0.05])
    out = ev.binary_metrics(y, _logit(probs)[:, None])
    hard = (probs >= 0.5).astype(int)
    assert out.keys() == {"roc_auc", "pr_auc", "accuracy", "balanced_accuracy"}
    assert math.isclose(out["roc_auc"], _auroc_pairs(y, probs))
    assert math.isclose(out["pr_auc"], _average_precision(y, probs))
    assert math.isclose(out["accuracy"], (hard == y).mean())
    assert math.isclose(out["balanced_accuracy"], _recalls(y, hard, 2).mean())
    # Hand check of the concordance on this example: 20 of 25 pairs ordered correctly.
    assert math.isclose(out["roc_auc"], 20 / 25)
    assert all(type(v) is float for v in out.values())


def test_binary_threshold_is_half_and_flat_logits_accepted():
    y = np.array([1, 0, 1])
    out = ev.binary_metrics(y, np.array([0.0, -1e-3, 5.0]))
    assert out["accuracy"] == 1.0  # sigmoid(0) = 0.5 counts as positive


def test_single_class_auroc_is_nan_not_an_error():
    out = ev.binary_metrics(np.ones(4, int), np.array([-1.0, 2.0, 0.5, 3.0]))
    assert math.isnan(out["roc_auc"]) and math.isnan(out["pr_auc"])
    assert math.isclose(out["accuracy"], 0.75)


def test_multiclass_metrics_match_closed_forms():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1, 0, 2])
    pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2, 1, 0, 1])
    k = 3
    logits = np.eye(k)[pred] * 3.0 + 0.1  # argmax = pred
    out = ev.multiclass_metrics(y, logits)
    assert out.keys() == {"accuracy", "balanced_accuracy", "cohen_kappa", "f1_weighted"}

    cm = np.zeros((k, k))
    for t, p in zip(y, pred):
        cm[t, p] += 1
    n = cm.sum()
    po = np.trace(cm) / n
    pe = (cm.sum(0) * cm.sum(1)).sum() / n**2
    precision = np.diag(cm) / cm.sum(0)
    recall = np.diag(cm) / cm.sum(1)
    f1 = 2 * precision * recall / (precision + recall)
    support = cm.sum(1)

    assert math.isclose(out["accuracy"], po)
    assert math.isclose(out["balanced_accuracy"], recall.mean())
    assert math.isclose(out["cohen_kappa"], (po - pe) / (1 - pe))
    assert math.isclose(out["f1_weighted"], (f1 * support).sum() / support.sum())


def test_regression_metrics_match_closed_forms():
    t = np.array([1.0, 2.0, 3.0, 4.0, 5.5])
    p = np.array([1.2, 1.8, 3.3, 3.6, 5.0])
    out = ev.regression_metrics(t, p)
    tc, pc = t - t.mean(), p - p.mean()
    r = (tc * pc).sum() / np.sqrt((tc**2).sum() * (pc**2).sum())
    mse = ((t - p) ** 2).mean()
    assert math.isclose(out["pearson_r"], r)
    assert math.isclose(out["r2"], 1 - ((t - p) ** 2).sum() / (tc**2).sum())
    assert math.isclose(out["mse"], mse)
    assert math.isclose(out["rmse"], math.sqrt(mse))


def test_regression_multi_output_averages_columns():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((20, 3))
    p = t + 0.5 * rng.standard_normal((20, 3))
    out = ev.regression_metrics(t, p)
    cols = [ev.regression_metrics(t[:, j], p[:, j]) for j in range(3)]
    for name in ("pearson_r", "r2", "mse"):
        assert math.isclose(out[name], np.mean([c[name] for c in cols]))
    assert math.isclose(out["rmse"], math.sqrt(out["mse"]))


def test_confusion_keeps_absent_classes():
    cm = ev.confusion(np.array([0, 0, 1]), np.array([0, 1, 1]), num_classes=4)
    expected = np.zeros((4, 4), int)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = 1
    np.testing.assert_array_equal(cm, expected)


def test_task_metrics_dispatch_and_unknown_kind():
    y = np.array([0, 1, 1, 0])
    assert ev.task_metrics("binary", y, np.array([-1.0, 1, 2, -2])) == ev.binary_metrics(y, np.array([-1.0, 1, 2, -2]))
    assert "cohen_kappa" in ev.task_metrics("multiclass", y, np.eye(2)[y])
    assert "r2" in ev.task_metrics("regression", y.astype(float), y + 0.1)
    with pytest.raises(ValueError, match="binary, multiclass, regression"):
        ev.task_metrics("ranking", y, y)


def test_monitor_defaults_and_modes():
    assert ev.DEFAULT_MONITOR["binary"] == ("roc_auc", "max")
    assert ev.DEFAULT_MONITOR["multiclass"] == ("cohen_kappa", "max")
    assert ev.ACCURACY_MONITOR == "accuracy"
    for name in ("loss", "val_loss", "rmse", "mse"):
        assert ev.monitor_mode(name) == "min"
    for name in ("roc_auc", "cohen_kappa", "r2", "accuracy"):
        assert ev.monitor_mode(name) == "max"


def test_codebook_stats():
    uniform = ev.codebook_stats(np.array([5, 0, 5, 5, 0, 5]))
    assert math.isclose(uniform["perplexity"], 4.0)
    assert uniform["used_codes"] == 4 and uniform["unused_codes"] == 2
    assert math.isclose(uniform["usage_fraction"], 4 / 6)
    assert math.isclose(ev.codebook_stats(np.array([0, 9, 0]))["perplexity"], 1.0)
    counts = np.array([1, 3, 0, 6])
    p = np.array([0.1, 0.3, 0.6])
    assert math.isclose(ev.codebook_stats(counts)["perplexity"], math.exp(-(p * np.log(p)).sum()))
    json.dumps(uniform)  # plain Python types


def test_relative_gain():
    assert math.isclose(ev.relative_gain(0.4, 0.5), 0.2)
    assert ev.relative_gain(0.5, 0.5) == 0.0  # the codes carry nothing
    assert math.isclose(ev.relative_gain(0.6, 0.5), -0.2)
    assert math.isnan(ev.relative_gain(0.1, 0.0))
