"""Task metrics computed once over a whole split, with scikit-learn, as the LaBraM reference does.

The reference fine-tuning code collects every prediction of a split and hands them to PyHealth, which
calls scikit-learn; averaging per-batch metrics would be wrong for AUROC, kappa, F1 and R², so every
function here takes the concatenated outputs of a split.

| kind         | outputs                 | metrics                                                        |
|--------------|-------------------------|----------------------------------------------------------------|
| `binary`     | logits `(n,)`/`(n, 1)`  | `roc_auc`, `pr_auc`, `accuracy`, `balanced_accuracy`           |
| `multiclass` | logits `(n, K)`         | `accuracy`, `balanced_accuracy`, `cohen_kappa`, `f1_weighted`  |
| `regression` | predictions `(n,)`/`(n, k)` | `pearson_r`, `r2`, `rmse`, `mse`                           |

Binary scores are `sigmoid(logit)` and hard labels are `score >= 0.5` (that is, `logit >= 0`).

Undefined values are `nan`, never an exception, so one degenerate validation split (for instance a
single class present, where AUROC and AUC-PR do not exist) cannot stop a run; a `nan` is never "better"
when selecting checkpoints, and the metric writer stores it as JSON `null`.

Model selection. `DEFAULT_MONITOR` is the paper's choice: AUROC on binary tasks (TUAB), Cohen's kappa on
multi-class tasks (TUEV); for regression we use R². The official code instead keeps the checkpoint with
the best validation *accuracy*; `ACCURACY_MONITOR` names that option. `monitor_mode` says whether a
metric is maximised or minimised.

`codebook_stats` summarises how a VQ tokenizer uses its codebook over a split: perplexity (the effective
number of codes, `exp` of the entropy of the code distribution) and the count of codes never used.

All functions take numpy arrays and return plain Python `float`/`int` values, so results are JSON-ready.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.special import expit
from sklearn import metrics as skm

DEFAULT_MONITOR: dict[str, tuple[str, str]] = {
    "binary": ("roc_auc", "max"),
    "multiclass": ("cohen_kappa", "max"),
    "regression": ("r2", "max"),
}
ACCURACY_MONITOR = "accuracy"

_MINIMISED = ("loss", "rmse", "mse")


def monitor_mode(name: str) -> str:
    """`"min"` for losses and squared errors, `"max"` for every other metric."""
    lowered = name.lower()
    return "min" if any(word in lowered for word in _MINIMISED) else "max"


def _as_labels(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels).reshape(-1).astype(np.int64)


def _check_length(labels: np.ndarray, outputs: np.ndarray) -> None:
    if labels.shape[0] != outputs.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels but {outputs.shape[0]} outputs")


def binary_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """AUROC, AUC-PR, accuracy and balanced accuracy of one-logit binary outputs.

    `roc_auc` and `pr_auc` are `nan` when `labels` hold a single class (they are undefined there).
    """
    y = _as_labels(labels)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"binary logits must have shape (n,) or (n, 1), got {logits.shape}")
    _check_length(y, logits)
    scores = expit(logits)
    hard = (scores >= 0.5).astype(np.int64)
    if np.unique(y).size < 2:
        roc_auc = pr_auc = math.nan
    else:
        roc_auc = float(skm.roc_auc_score(y, scores))
        pr_auc = float(skm.average_precision_score(y, scores))
    with warnings.catch_warnings():
        # A class missing from the labels but predicted only makes balanced accuracy warn; the value is fine.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(skm.balanced_accuracy_score(y, hard))
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "accuracy": float(skm.accuracy_score(y, hard)),
        "balanced_accuracy": balanced,
    }


def multiclass_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, unweighted Cohen's kappa and support-weighted F1 of argmax predictions.

    Kappa is `nan` when it is 0/0 (labels and predictions all one same class).
    """
    y = _as_labels(labels)
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"multi-class logits must have shape (n, K), got {logits.shape}")
    _check_length(y, logits)
    pred = np.argmax(logits, axis=-1)
    with warnings.catch_warnings():
        # Degenerate splits make sklearn warn before returning nan or 0; the values are what we want.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        balanced = float(skm.balanced_accuracy_score(y, pred))
        kappa = float(skm.cohen_kappa_score(y, pred))
        f1 = float(skm.f1_score(y, pred, average="weighted", zero_division=0))
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": balanced,
        "cohen_kappa": kappa,
        "f1_weighted": f1,
    }


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    denom = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    # A constant column has no correlation; nan rather than a division warning.
    return float(np.dot(x, y)) / denom if denom > 0 else math.nan


def regression_metrics(targets: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    """Pearson r, R², RMSE and MSE; with `k > 1` outputs, each is the mean over output columns
    (RMSE is the square root of that mean MSE)."""
    t = np.asarray(targets, dtype=np.float64)
    p = np.asarray(preds, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"targets {t.shape} and predictions {p.shape} differ in shape")
    if t.ndim not in (1, 2):
        raise ValueError(f"regression outputs must have shape (n,) or (n, k), got {t.shape}")
    t2 = t.reshape(t.shape[0], -1)
    p2 = p.reshape(p.shape[0], -1)
    pearson = float(np.mean([_pearson(t2[:, j], p2[:, j]) for j in range(t2.shape[1])]))
    mse = float(skm.mean_squared_error(t2, p2))
    with warnings.catch_warnings():
        # R² of fewer than two samples is undefined: sklearn warns and returns nan.
        warnings.simplefilter("ignore", UserWarning)
        r2 = float(skm.r2_score(t2, p2))
    return {"pearson_r": pearson, "r2": r2, "rmse": math.sqrt(mse), "mse": mse}


def confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """`(K, K)` counts, rows = true class, columns = predicted class, all `K` classes present."""
    return skm.confusion_matrix(_as_labels(labels), _as_labels(predictions), labels=list(range(num_classes)))


_TASKS: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    "binary": binary_metrics,
    "multiclass": multiclass_metrics,
    "regression": regression_metrics,
}


def task_metrics(kind: str, labels: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """The metrics of one task kind: `binary`, `multiclass` or `regression`."""
    if kind not in _TASKS:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {', '.join(_TASKS)}")
    return _TASKS[kind](labels, outputs)


def relative_gain(loss: float, baseline: float) -> float:
    """`1 - loss / baseline`: the share of a baseline loss removed (0 = no better than the baseline, 1 =
    perfect, negative = worse); `nan` when the baseline is not positive."""
    return 1.0 - float(loss) / float(baseline) if baseline > 0 else math.nan


def codebook_stats(counts: np.ndarray) -> dict[str, float | int]:
    """Perplexity and usage of a codebook from per-code counts over a split.

    `perplexity = exp(-sum p log p)` with `p = counts / counts.sum()` and `0 log 0 = 0`: `k` for uniform use
    of `k` codes, 1 for collapse onto one code. With no counts at all it is `nan`.
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if np.any(counts < 0):
        raise ValueError("code counts must be non-negative")
    total = float(counts.sum())
    used = int(np.count_nonzero(counts))
    if total > 0:
        probs = counts[counts > 0] / total
        perplexity = math.exp(float(-np.sum(probs * np.log(probs))))
    else:
        perplexity = math.nan
    size = counts.size
    return {
        "perplexity": perplexity,
        "used_codes": used,
        "unused_codes": size - used,
        "usage_fraction": used / size if size else math.nan,
    }
