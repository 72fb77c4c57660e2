"""PNG plots of a training stage: metric curves, confusion matrix, codebook usage.

Figures are drawn on matplotlib's Agg canvas directly (no `pyplot`), so nothing needs a screen, no global
backend is switched, and no figure lingers in pyplot's registry. Every function returns the written path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labram_jax.train.evaluation import codebook_stats

_RECORD_KEYS = ("step", "split")


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str) -> str:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def _is_number(value: Any) -> bool:
    # bool is an int subclass but is never a curve.
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def plot_curves(records: list[dict[str, Any]], path: str, title: str = "") -> str:
    """One subplot per scalar name, one line per split, x = step; non-numeric and non-finite values skipped."""
    names: list[str] = []
    for record in records:
        for key, value in record.items():
            if key not in _RECORD_KEYS and key not in names and _is_number(value):
                names.append(key)
    if not names:
        fig = _new_figure(4, 3)
        fig.text(0.5, 0.5, "no metrics", ha="center", va="center")
        if title:
            fig.suptitle(title)
        return _save(fig, path)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _new_figure(4.5 * cols, 3.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    splits = list(dict.fromkeys(str(r.get("split", "")) for r in records))
    # One colour per split in every panel: a panel that has only validation points must not draw them in
    # the colour the other panels give to train.
    colours = {split: f"C{i % 10}" for i, split in enumerate(splits)}
    for ax, name in zip(axes.flat, names):
        for split in splits:
            points = sorted(
                (float(r["step"]), float(r[name]))
                for r in records
                if str(r.get("split", "")) == split
                and _is_number(r.get("step"))
                and _is_number(r.get(name))
                and math.isfinite(float(r[name]))
            )
            if not points:
                continue
            xs, ys = zip(*points)
            # A single evaluation would be invisible as a line.
            ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=split, color=colours[split])
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Counts annotated in each cell; colour is the row-normalised rate (recall along the diagonal)."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    if matrix.shape != (k, k):
        raise ValueError(f"confusion matrix must be square, got {matrix.shape}")
    if len(class_names) != k:
        raise ValueError(f"{len(class_names)} class names for a {k}x{k} confusion matrix")
    row_sums = matrix.sum(axis=1, keepdims=True)
    # A class absent from the split has an all-zero row; show it as zeros, not nan.
    rates = np.divide(matrix, row_sums, out=np.zeros(matrix.shape), where=row_sums > 0)
    side = max(3.5, 0.6 * k + 2)
    fig = _new_figure(side + 1, side)
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="row-normalised")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{int(matrix[i, j])}",
                ha="center",
                va="center",
                color="white" if rates[i, j] > 0.5 else "black",
                fontsize="small",
            )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def usage_by_rank(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """`(ranks 1.., counts of the used codes in decreasing order, uniform level)` of per-code counts; the
    uniform level is the count every code would have if all were used equally (total / number of codes)."""
    counts = np.asarray(counts, np.float64).reshape(-1)
    ordered = np.sort(counts)[::-1]
    used = ordered[ordered > 0]
    return np.arange(1, used.size + 1), used, float(counts.sum() / max(counts.size, 1))


def plot_codebook_usage(counts: np.ndarray, path: str, title: str = "") -> str:
    """Token counts of the codes by rank on a log axis, with the uniform-usage level marked: a healthy
    codebook is a flat curve near that level across all ranks, a collapse one point far above it."""
    counts = np.asarray(counts).reshape(-1)
    stats = codebook_stats(counts)
    ranks, used, uniform = usage_by_rank(counts)
    fig = _new_figure(6.5, 3.8)
    ax = fig.subplots()
    if used.size:
        # Markers keep a handful of used codes (a collapse) visible; a long curve reads better as steps.
        ax.plot(
            ranks,
            used,
            drawstyle="steps-post",
            marker="o" if used.size <= 32 else None,
            markersize=4,
            label="tokens per code",
        )
        ax.axhline(uniform, color="tab:red", linestyle="--", linewidth=1, label=f"uniform use ({uniform:.3g} per code)")
        ax.set_yscale("log")
        ax.legend(fontsize="small", loc="lower left")
    ax.set_xlim(0, counts.size + 1)
    ax.set_xlabel(f"code rank by usage (1 = most used; {counts.size} codes)")
    ax.set_ylabel("tokens (log scale)")
    ax.grid(True, which="both", alpha=0.25)
    ax.text(
        0.98,
        0.95,
        f"used {stats['used_codes']}/{counts.size}\n"
        f"unused {stats['unused_codes']}\n"
        f"perplexity {stats['perplexity']:.1f}",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8},
    )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def write_stage_plots(
    workdir: str,
    records: list[dict[str, Any]],
    *,
    confusion: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    code_counts: np.ndarray | None = None,
) -> list[str]:
    """`loss_curves.png`, and `confusion_matrix.png` / `codebook_usage.png` when given, in `<workdir>/plots/`."""
    out = os.path.join(workdir, "plots")
    paths = [plot_curves(records, os.path.join(out, "loss_curves.png"))]
    if confusion is not None:
        names = class_names if class_names is not None else [str(i) for i in range(len(confusion))]
        paths.append(plot_confusion(confusion, names, os.path.join(out, "confusion_matrix.png")))
    if code_counts is not None:
        paths.append(plot_codebook_usage(code_counts, os.path.join(out, "codebook_usage.png")))
    return paths
