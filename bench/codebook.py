"""Codebook health of tokenizer variants trained side by side: the measurements behind `docs/codebook.md`.

    python -m bench.codebook --config=configs/demo_tokenizer.py --sweep=diagnosis --workdir=/tmp/cb \
        [--config.data.data_dir=...] [--config.<field>=value ...] [--markdown=FILE]

Trains the tokenizer config once per variant of the named sweep (each a few config overrides on top of the
command line's), each in `<workdir>/<variant>` with the real training loop, and reports the validation
health metrics of the tokenizer stage: codes used, perplexity, encoder-output diversity (`z_cos`), restarts,
and the amplitude / phase losses with the true codes against the same decoder with one code for every token
(`amp_info_gain`). The training log's `z_cos` at a few steps shows when the encoder outputs collapse.
Prints one JSON object on stdout and a markdown table on stderr. A finished variant is not trained again
(the loop resumes or reports it complete), so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from bench import common  # noqa: E402
from labram_jax.config_defaults import QUANTIZER_REMEDIES, REFERENCE_QUANTIZER  # noqa: E402


def _fields(section: str, values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {f"{section}.{k}": values[k] for k in names}


# The options as the remedied configs set them (config_defaults.QUANTIZER_REMEDIES), one remedy at a time.
REFERENCE = _fields("tokenizer", REFERENCE_QUANTIZER, tuple(REFERENCE_QUANTIZER))
RESTART = _fields("tokenizer", QUANTIZER_REMEDIES, ("restart_threshold", "restart_decay"))
WARM_UP = _fields("tokenizer", QUANTIZER_REMEDIES, ("continuous_steps",))  # the optimiser's warm-up
ENTROPY = _fields("tokenizer", QUANTIZER_REMEDIES, ("entropy_weight", "entropy_temperature"))
OFFSET = _fields("tokenizer", QUANTIZER_REMEDIES, ("mean_target_offset",))
SWEEPS: dict[str, dict[str, dict[str, Any]]] = {
    # One change at a time from the reference quantiser, at the config's learning rate.
    "diagnosis": {
        "reference": dict(REFERENCE),
        "lr/3": {**REFERENCE, "optim.lr": "x1/3"},
        "lr/10": {**REFERENCE, "optim.lr": "x1/10"},
        "beta 0.25": {**REFERENCE, "tokenizer.beta": 0.25},
        "beta 0": {**REFERENCE, "tokenizer.beta": 0.0},
        "code_dim 8": {**REFERENCE, "tokenizer.code_dim": 8},
        "restart": {**REFERENCE, **RESTART},
        # The same network with the quantiser bypassed throughout: does the plain autoencoder learn?
        "no quantisation": {**REFERENCE, "tokenizer.continuous_steps": 10**9},
    },
    # The remedies, alone and combined.
    "remedies": {
        "reference": dict(REFERENCE),
        "restart": {**REFERENCE, **RESTART},
        "warm-up": {**REFERENCE, **WARM_UP},
        "entropy": {**REFERENCE, **ENTROPY},
        "warm-up + restart": {**REFERENCE, **WARM_UP, **RESTART},
        "warm-up + restart + entropy": {**REFERENCE, **WARM_UP, **RESTART, **ENTROPY},
        "mean-target offset": {**REFERENCE, **OFFSET},
        "all four (the demo's)": {**REFERENCE, **WARM_UP, **RESTART, **ENTROPY, **OFFSET},
    },
}

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/demo_tokenizer.py", "A tokenizer config file.", lock_config=True
)
_SWEEP = flags.DEFINE_string("sweep", "diagnosis", f"One of {sorted(SWEEPS)}.")
_ONLY = flags.DEFINE_list("only", [], "Variants of the sweep to run (default: all).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Root of the variants' workdirs.")
_MARKDOWN = flags.DEFINE_string("markdown", "", "Also write the markdown table to this file.")

COLUMNS = (
    "used_codes",
    "perplexity",
    "z_cos",
    "restarts",
    "rec_loss",
    "rec_loss_one_code",
    "amp_info_gain",
    "rec_angle_loss",
    "phase_info_gain",
)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def apply(config: Any, overrides: dict[str, Any]) -> Any:
    """A copy of `config` with dotted-path overrides; a string value `x<factor>` scales the current value
    (`"x1/3"` divides the learning rate by 3), so a sweep is relative to whatever the command line set."""
    import ml_collections

    config = ml_collections.ConfigDict(config.to_dict())
    for path, value in overrides.items():
        *parents, leaf = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"sweep override {path}: the config has no such field")
        if isinstance(value, str) and value.startswith("x"):
            num, _, den = value[1:].partition("/")
            value = node[leaf] * float(num) / float(den or 1)
        node[leaf] = value
    return config


def trajectory(workdir: str, key: str = "z_cos", points: int = 4) -> list[tuple[int, float]]:
    """`(step, value)` of a training metric at `points` evenly spaced log records."""
    from labram_jax.train.metric_writers import read_metrics

    rows = [(r["step"], r[key]) for r in read_metrics(workdir) if r.get("split") == "train" and key in r]
    if not rows:
        return []
    picks = sorted({round(i * (len(rows) - 1) / max(points - 1, 1)) for i in range(points)})
    return [(int(rows[i][0]), float(rows[i][1])) for i in picks]


def target_baselines(config: Any) -> dict[str, float]:
    """Amplitude-loss levels of three predictors that need no tokenizer, on the first validation dataset:
    the mean target over all tokens (what a decoder that ignores its inputs learns), the mean per channel
    (what the channel embeddings alone can give), and the mean per channel of each window (information a
    code could carry about its window)."""
    import numpy as np

    from labram_jax import layout
    from labram_jax.ops import fourier
    from labram_jax.train import datasets as train_data

    sources = train_data.sources(config, "validation")
    if not sources:
        return {}
    _, source = sources[0]
    targets, channels = [], []
    for i in range(len(source)):
        record = source[i]
        patches = layout.patchify(np.asarray(record["signal"], np.float32))
        c, a, _ = patches.shape
        amplitude, _ = fourier.fourier_targets(patches[None] / layout.INPUT_SCALE, np.ones((1, c * a), bool))
        targets.append(np.asarray(amplitude[0]).reshape(c, a, -1))
        channels.append(np.asarray(record["channel_ids"]))
    flat = np.concatenate([t.reshape(-1, t.shape[-1]) for t in targets])
    ids = np.concatenate([np.repeat(ch, t.shape[1]) for ch, t in zip(channels, targets)])
    per_channel = np.zeros_like(flat)
    for ch in np.unique(ids):
        per_channel[ids == ch] = flat[ids == ch].mean(0)
    window_channel = np.concatenate(
        [np.broadcast_to(t.mean(1, keepdims=True), t.shape).reshape(-1, t.shape[-1]) for t in targets]
    )
    mse = lambda pred: float(np.mean((flat - pred) ** 2))  # noqa: E731
    return {
        "mean_target": mse(flat.mean(0)),
        "per_channel_mean": mse(per_channel),
        "per_window_channel_mean": mse(window_channel),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"config {report['config']}, data {report['data']}",
        "",
        "amplitude loss of predictors without a tokenizer (validation): "
        + ", ".join(f"{k} {v:.3f}" for k, v in report.get("target_baselines", {}).items()),
        "",
        "| variant | " + " | ".join(COLUMNS) + " | train z_cos (step: value) |",
        "|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for name, r in report["variants"].items():
        v = r["validation"]
        cells = [f"{v[c]:.3g}" if isinstance(v.get(c), (int, float)) else "-" for c in COLUMNS]
        traj = ", ".join(f"{s}: {x:.2f}" for s, x in r["z_cos_trajectory"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {traj} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    del argv
    from labram_jax.train.loop import run

    if _SWEEP.value not in SWEEPS:
        raise app.UsageError(f"--sweep={_SWEEP.value!r} is not one of {sorted(SWEEPS)}")
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required")
    base = _CONFIG.value
    if base.stage != "tokenizer":
        raise app.UsageError(f"--config must be a tokenizer config (stage {base.stage!r})")
    variants = SWEEPS[_SWEEP.value]
    unknown = set(_ONLY.value) - set(variants)
    if unknown:
        raise app.UsageError(f"--only names {sorted(unknown)}, not variants of {_SWEEP.value}: {sorted(variants)}")
    report: dict[str, Any] = {
        "config": config_flags.get_config_filename(flags.FLAGS["config"]),
        "data": {"train": base.data.train, "validation": base.data.validation, "data_dir": base.data.data_dir},
        "sweep": _SWEEP.value,
        "variants": {},
    }
    report["target_baselines"] = target_baselines(base)
    for name, overrides in variants.items():
        if _ONLY.value and name not in _ONLY.value:
            continue
        config = apply(base, overrides)
        workdir = os.path.join(os.path.expanduser(_WORKDIR.value), _slug(name))
        common.log(f"{name}: {overrides} -> {workdir}")
        results = run(config, workdir)
        validation = next(iter(results.get("validation", {}).values()), {})
        report["variants"][name] = {
            "overrides": overrides,
            "validation": validation,
            "z_cos_trajectory": trajectory(workdir),
            "steps": results.get("steps"),
        }
    common.emit(report)
    text = markdown(report)
    print(text, file=sys.stderr)
    if _MARKDOWN.value:
        with open(_MARKDOWN.value, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    common.run_main(lambda: app.run(main))
