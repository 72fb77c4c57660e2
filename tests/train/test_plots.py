import os

import numpy as np

from labram_jax.train import plots

_PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return os.path.getsize(path) > 1000 and f.read(8) == _PNG


RECORDS = [
    {"step": 0, "split": "train", "loss": 2.0, "lr": 1e-4, "note": "warmup"},
    {"step": 10, "split": "train", "loss": 1.5, "lr": 2e-4},
    {"step": 10, "split": "validation", "loss": 1.7, "accuracy": float("nan")},
    {"step": 20, "split": "train", "loss": 1.2},
    {"step": 20, "split": "validation", "loss": 1.4, "accuracy": 0.6},
]


def test_plot_curves(tmp_path):
    path = plots.plot_curves(RECORDS, str(tmp_path / "sub" / "curves.png"), title="run")
    assert _is_png(path)
    assert _is_png(plots.plot_curves([], str(tmp_path / "empty.png")))


def test_plot_confusion(tmp_path):
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])
    path = plots.plot_confusion(matrix, ["a", "b", "c"], str(tmp_path / "cm.png"), title="test")
    assert _is_png(path)


def test_plot_codebook_usage(tmp_path):
    counts = np.random.default_rng(0).poisson(3.0, 64)
    counts[:5] = 0
    assert _is_png(plots.plot_codebook_usage(counts, str(tmp_path / "codes.png")))
    assert _is_png(plots.plot_codebook_usage(np.zeros(8, int), str(tmp_path / "none.png")))
    assert _is_png(plots.plot_codebook_usage(np.eye(1, 256, 7)[0] * 900, str(tmp_path / "collapse.png")))


def test_usage_by_rank_orders_used_codes_and_marks_uniform_use():
    ranks, used, uniform = plots.usage_by_rank(np.array([0, 5, 2, 0, 9, 4]))
    assert ranks.tolist() == [1, 2, 3, 4] and used.tolist() == [9, 5, 4, 2]
    assert uniform == 20 / 6
    ranks, used, uniform = plots.usage_by_rank(np.eye(1, 256, 7)[0] * 900)  # a collapse: one code
    assert ranks.tolist() == [1] and used.tolist() == [900] and uniform == 900 / 256


def test_write_stage_plots(tmp_path):
    paths = plots.write_stage_plots(
        str(tmp_path), RECORDS, confusion=np.eye(2, dtype=int) * 3, code_counts=np.arange(16)
    )
    names = [os.path.basename(p) for p in paths]
    assert names == ["loss_curves.png", "confusion_matrix.png", "codebook_usage.png"]
    assert all(os.path.dirname(p) == str(tmp_path / "plots") and _is_png(p) for p in paths)
    assert [os.path.basename(p) for p in plots.write_stage_plots(str(tmp_path), RECORDS)] == ["loss_curves.png"]


def test_plot_curves_gives_each_split_one_colour_in_every_panel(tmp_path, monkeypatch):
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    plots.plot_curves(RECORDS, str(tmp_path / "curves.png"))
    colours = {}
    for ax in figures[0].axes:
        for line in ax.get_lines():
            colours.setdefault(line.get_label(), set()).add(line.get_color())
    # "accuracy" has validation points only: they keep validation's colour, not train's.
    assert set(colours) == {"train", "validation"}
    assert all(len(c) == 1 for c in colours.values()), colours
    assert colours["train"] != colours["validation"]
