"""One description per config field, and the configuration reference page generated from them.

    python -m labram_jax.config_fields > docs/configuration.md
    python -m labram_jax.config_fields --out docs/configuration.md
    python -m labram_jax.config_fields --check docs/configuration.md   # exit 1 when the page is stale

`FIELDS` maps the dotted path of every field of every stage's default config (the files of `configs/`:
the tokenizer, pre-training, fine-tuning and pipeline recipes) to its description. `render()` walks those
configs and writes, per section, a table of field, type, default (per stage where the stages differ) and
description, then the fields each config-file variant changes. A field in a default config without a
description, or a description of a field no default config has, is an `UndocumentedFieldError`: a new field
cannot go undocumented and a removed one cannot linger in the reference.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import ml_collections


class UndocumentedFieldError(ValueError):
    """A default config has a field `FIELDS` does not describe, or `FIELDS` describes one no config has."""


SECTIONS: dict[str, str] = {
    "": "Top-level fields. `stage` selects what `python -m labram_jax.main` runs; the other fields apply to the "
    "stages whose configs have them.",
    "model": "The neural Transformer of pre-training and fine-tuning (LaBraM-Base, -Large, -Huge). Tokenizer "
    "configs have none.",
    "tokenizer": "VQ-NSP. In `tokenizer` configs, the architecture that trains (defaults: the official tokenizer, "
    "`labram_jax/config_defaults.py`); in `pretrain` configs only `checkpoint`, the frozen tokenizer whose codes "
    "are the targets: its architecture and the vocabulary of the prediction head come from that checkpoint, "
    "and any other field there is an error. `continuous_steps`, "
    "`restart_threshold` / `restart_decay` and `entropy_weight` / `entropy_temperature` are our codebook-"
    "collapse remedies (0 = off, the reference quantiser; see [Codebook health](codebook.md)).",
    "optim": "AdamW with the reference's per-step schedule (`utils.cosine_scheduler`): a linear warm-up from 0, "
    "then a cosine decay to `min_lr` (see [Training](training.md#optimisation)).",
    "data": "Datasets are `name/config[:split]` entries in comma-separated lists, read from `data_dir`; every "
    "example is padded to the channel and patch budget (padding is masked).",
    "task": "Fine-tuning and evaluation only.",
    "mesh": "Sizes of the device mesh's axes; their product must equal the number of devices, and at most one "
    "may be -1 (all the devices the others leave). The logical-axis rules map parameter and activation "
    "axes onto them (see [Scale-out](scale-out.md)).",
    "checkpoint": "Orbax checkpoints in the workdir: `checkpoints/` (resume) and `best/` (selection).",
    "log": "Training metrics and the console.",
    "eval": "Validation during training.",
}
"""One paragraph per section; the empty key is the top-level fields."""

FIELDS: dict[str, str] = {
    # -- top level ------------------------------------------------------------------------------------------
    "stage": "What runs: `tokenizer` (VQ-NSP), `pretrain` (masked EEG modeling against the frozen tokenizer), "
    "`finetune`, `evaluate` (a fine-tuned checkpoint on the validation and test splits; set it on a "
    "fine-tuning config) or `pipeline` (several stages in sequence).",
    "seed": "Seed of the parameter initialisation, the dropout and masking random streams and the data "
    "shuffling: the same seed gives the same run. With `seeds` set, each run uses one of those instead.",
    "max_steps": "Stop after this many steps (0 = all of `optim.epochs`); the learning-rate schedule still "
    "spans the full epochs.",
    "init_checkpoint": "Where fine-tuning starts: a pre-training workdir, a converted official checkpoint or a "
    'fine-tuned one (only the backbone carries over; `fc_norm` and the head start fresh); `""` = random '
    "initialisation. The `evaluate` stage evaluates this checkpoint, which must be a fine-tuned one.",
    "trainable_blocks": "-1 fine-tunes everything; 0 is a linear probe (`fc_norm` and the head only); k > 0 "
    "also trains the last k blocks. The frozen part runs without dropout or drop path and no backward pass "
    "runs through it (reference §8.4).",
    "seeds": "Comma-separated seeds (e.g. `0,1,2,3,4`): the fine-tuning runs once per seed in "
    "`<workdir>/seed_<s>`, then `seeds.md` / `seeds.json` give the mean ± sample std of every test metric; "
    '`""` = one run with `seed`. In a pipeline config it applies to every fine-tuning stage.',
    "dataset": "One `eeg_labelled` dataset (`eeg_labelled/<config>`) for the three splits: `data.train`, "
    "`data.validation` and `data.test` become `<dataset>:train`, `:validation` and `:test` when all three "
    "are empty.",
    "data_dir": "The TFDS data directory of every stage of the pipeline (it replaces each stage's "
    "`data.data_dir`); the demo datasets are built there.",
    "build_demo_data": "First build the synthetic `demo/tuab`, `demo/tuev` and `demo/corpus` datasets into "
    "`data_dir`, unless they are there already.",
    "order": "The names in `stages` to run, in sequence, each in `<workdir>/<name>`. A `pretrain` stage without "
    "`tokenizer.checkpoint` gets the last `tokenizer*` stage run before it; a `finetune` or `evaluate` stage "
    "without `init_checkpoint` gets the last `pretrain*` stage.",
    "scratch_baselines": "Run every fine-tuning that starts from the pre-trained backbone a second time from "
    "random initialisation (`<name>_scratch`, same budget and seeds) and report the difference.",
    "stages": "One complete stage config per name; `--config.stages.<name>.<field>=value` overrides a field of "
    "one stage. The demo's are the `configs/demo_*.py` configs (see Variants below).",
    # -- model ----------------------------------------------------------------------------------------------
    "model.size": "`base`, `large` or `huge`: width, depth and heads of the official sizes (200 / 12 / 10, "
    "400 / 24 / 16, 800 / 48 / 16); `giant` is ours, ~1.0B parameters (1600 / 32 / 25, configs/giant.py).",
    "model.width": "When non-zero, replaces the size's width (demos, tests); the temporal conv then gets "
    "`width / 25` channels, as every official size has.",
    "model.depth": "When non-zero, replaces the size's number of transformer blocks.",
    "model.num_heads": "When non-zero, replaces the size's number of attention heads.",
    "model.layer_scale_init": "Initial value of the layer-scale vectors (paper Table 4: 0.1 Base, 1e-5 Large, "
    "1e-6 Huge).",
    "model.drop_rate": "Dropout rate on the embedded tokens and after the attention projection and the MLP.",
    "model.attn_drop_rate": "Dropout rate on the attention probabilities.",
    "model.drop_path_rate": "Stochastic-depth rate of the last block, rising linearly from 0 at the first "
    "(fine-tuning recipes: 0.1 Base and Large, 0.2 Huge).",
    "model.max_patches": "Rows of the temporal embedding: the longest input in seconds, one patch per second "
    "(16 in the official weights).",
    "model.head_init_scale": "The task head's trunc-normal(0.02) initialisation is multiplied by this (the "
    "reference's `init_scale`).",
    "model.dtype": "Compute dtype: `float32`, `bfloat16` or `float16`. Parameters and optimiser state stay "
    "float32; the linear layers' and attention's products accumulate in float32.",
    "model.remat": "Rematerialise each transformer block in the backward pass (less memory, more compute).",
    # -- tokenizer ------------------------------------------------------------------------------------------
    "tokenizer.width": "Width of the encoder and decoder (temporal conv: `width / 25` channels).",
    "tokenizer.num_heads": "Attention heads of the encoder and decoder blocks.",
    "tokenizer.encoder_depth": "Transformer blocks of the encoder (12 in the official tokenizer).",
    "tokenizer.decoder_depth": "Transformer blocks of the decoder (3 in the official tokenizer).",
    "tokenizer.num_codes": "Codebook size (pre-training's prediction head gets the same vocabulary from the "
    "tokenizer checkpoint).",
    "tokenizer.code_dim": "Dimension of the code vectors.",
    "tokenizer.ema_decay": "Decay of the codebook's exponential-moving-average update.",
    "tokenizer.beta": "Weight of the commitment loss.",
    "tokenizer.kmeans_init": "Initialise the codebook by k-means on the first real batch, as the reference; "
    "`False` starts from random unit vectors.",
    "tokenizer.restart_threshold": "Dead-code restart (ours; 0 = off): after each training EMA step, a code whose "
    "usage-share EMA falls below this fraction of uniform use (`restart_threshold / num_codes`) is re-seeded "
    "from a real token of the batch. In [0, 1).",
    "tokenizer.restart_decay": "Decay of the usage-share EMA that dead-code restart reads.",
    "tokenizer.entropy_weight": "Weight of the entropy penalty (ours; 0 = off): the mean entropy of each token's "
    "soft code assignment minus the entropy of the batch's average assignment, so that each token picks one "
    "code and the batch spreads over many.",
    "tokenizer.entropy_temperature": "Temperature of the entropy penalty's soft assignments "
    "(`softmax(-distance² / temperature)`).",
    "tokenizer.continuous_steps": "Continuous warm-up (ours; 0 = off): for this many training steps the decoder "
    "receives the continuous encoder output and no codebook statistic moves; k-means runs on the next batch. "
    "-1 = the optimiser's warm-up (`optim.warmup_steps`, else `optim.warmup_epochs` epochs).",
    "tokenizer.mean_target_offset": "Mean-target start of the Fourier heads (ours; `False` = the reference): each "
    "head adds a fixed per-frequency offset, set on the first training batch to that batch's mean amplitude / "
    "phase target, so that the heads learn what differs between tokens from the first step instead of the mean "
    "spectrum first. Exported checkpoints fold it into the heads' output bias.",
    "tokenizer.max_patches": "Rows of the tokenizer's temporal embedding: the longest input in seconds (16 in the "
    "official tokenizer).",
    "tokenizer.dtype": "Compute dtype of the encoder and decoder blocks; the task layer, the quantiser and the "
    "Fourier targets always run in float32.",
    "tokenizer.remat": "Rematerialise each tokenizer block in the backward pass.",
    "tokenizer.checkpoint": "Pre-training: the trained tokenizer (a `tokenizer` workdir, or the official "
    "`vqnsp.pth` converted with `python -m labram_jax.convert`) whose codes are the targets; required to "
    "train, optional for `--dry_run` (which then sizes the official tokenizer).",
    # -- optim ----------------------------------------------------------------------------------------------
    "optim.batch_size": "Global batch over all processes and devices; it must divide by `grad_accum_steps`, by "
    "the number of processes and by the data-parallel shards (`mesh.data` x `mesh.fsdp`). An epoch is "
    "`training examples // batch_size` steps.",
    "optim.lr": "Peak learning rate, reached at the end of the warm-up (tokenizer: the reference's base lr, "
    "multiplied by `batch_size / 128` when `lr_batch_rescale`).",
    "optim.lr_batch_rescale": "Multiply `lr` by `batch_size / 128`, as the reference's VQ-NSP training does "
    "(4e-4 at its batch of 1024).",
    "optim.min_lr": "Learning rate at the end of the cosine decay.",
    "optim.warmup_epochs": "Length of the linear warm-up from 0, in epochs.",
    "optim.warmup_steps": "Length of the warm-up in steps; when positive it replaces `warmup_epochs` (-1 = use "
    "the epochs).",
    "optim.epochs": "Length of the run in epochs; the schedule spans them (see `max_steps`).",
    "optim.b1": "AdamW's first-moment decay.",
    "optim.b2": "AdamW's second-moment decay.",
    "optim.eps": "AdamW's epsilon.",
    "optim.weight_decay": "Decoupled weight decay, multiplied by each parameter group's lr, on the kernels and the "
    "pre-training `mask_token` only (no decay for biases, norms, layer scales, `cls_token`, `pos_embed`, "
    "`time_embed`).",
    "optim.clip_grad_norm": "Clip the gradients to this global L2 norm (0 = no clipping; the reference clips at "
    "3.0 in pre-training only).",
    "optim.grad_accum_steps": "Split each batch into this many micro-batches inside one jitted step: the same "
    "update with less memory.",
    "optim.layer_decay": "Layer-wise lr decay of fine-tuning: each parameter's lr is multiplied by "
    "`layer_decay ** (depth + 1 - layer_id)`, with the reference's layer ids (embeddings 0, block j j + 1, "
    "everything else, `time_embed` included, depth + 1); 1 = off.",
    # -- data -----------------------------------------------------------------------------------------------
    "data.data_dir": "The TFDS data directory holding the datasets (`~` is expanded). A dataset that is not "
    "there stops the run at once with the command that builds it.",
    "data.train": "Training datasets (default split `train`), mixed element by element with `weights`.",
    "data.validation": "Datasets evaluated every `eval.every_epochs` and at the end (default split "
    "`validation`); the first one's metric selects the best checkpoint.",
    "data.test": "Datasets evaluated once, at the end, on the checkpoint selected on validation (default split "
    "`test`).",
    "data.weights": "Mixture weights of the `train` datasets, one number per dataset (`()` = uniform).",
    "data.max_channels": "Channel budget every example is padded to; -1 = the number of channels an "
    "`eeg_labelled` dataset's metadata lists.",
    "data.max_patches": "Patch budget every example is padded to, in seconds (one patch per second); -1 = an "
    "`eeg_labelled` dataset's record length, which must not exceed `model.max_patches`.",
    "data.shuffle": "Shuffle each training dataset (this process's shard), in a new order every epoch.",
    "data.num_workers": "grain multiprocess prefetch workers of the training loader (0 = none; workers take "
    "seconds to start).",
    "data.eval_batch_size": "Global batch of evaluation; 0 = `int(1.5 * optim.batch_size)`, as the reference.",
    "data.mask_ratio": "Pre-training: the fraction of each example's real tokens hidden in the first pass; the "
    "second, symmetric pass hides the rest.",
    # -- task -----------------------------------------------------------------------------------------------
    "task.kind": "`binary` (one logit, BCE), `multiclass` (K logits, cross-entropy) or `regression` (MSE); "
    "`auto` = from an `eeg_labelled` dataset's metadata.",
    "task.num_outputs": "Outputs of the head: 1 for binary and regression, K for K classes; -1 = from the "
    "dataset's metadata.",
    "task.label_smoothing": "Label smoothing of the multi-class training loss (evaluation losses are "
    "unsmoothed); -1 = 0.1 if the dataset is multi-class, else 0.",
    "task.monitor": 'Validation metric that selects the best checkpoint; `""` = the paper\'s (`roc_auc` binary, '
    "`cohen_kappa` multi-class, `r2` regression); `accuracy` = the official code's. Losses and errors are "
    "minimised, other metrics maximised.",
    "task.class_names": "Class names in label order, for the confusion-matrix plot; empty = from the dataset's "
    "metadata when the task is read from it.",
    # -- mesh -----------------------------------------------------------------------------------------------
    "mesh.data": "Size of the data-parallel axis (-1 = all the devices the other axes leave).",
    "mesh.fsdp": "Size of the fully-sharded axis: the parameters' `embed` dimension is sharded over it, and the "
    "batch over `data` x `fsdp`.",
    "mesh.tensor": "Size of the tensor-parallel axis: the `mlp`, `heads`, `vocab` and `codebook` dimensions are "
    "sharded over it.",
    # -- checkpoint -----------------------------------------------------------------------------------------
    "checkpoint.every_steps": "Save a resumable checkpoint every this many steps (0 = once per epoch), and at "
    "the last step.",
    "checkpoint.keep": "Resumable checkpoints kept in `checkpoints/` (model, optimiser state, step, rng and the "
    "data iterator's position).",
    "checkpoint.keep_best": "Checkpoints kept in `best/` by the validation monitor (model and meta); 0 = none, "
    "and the last step's model is evaluated.",
    "checkpoint.async_save": "Write checkpoints in the background while training goes on.",
    # -- log, eval ------------------------------------------------------------------------------------------
    "log.every_steps": "Write the mean of the training metrics over this many steps to `metrics.jsonl` and "
    "TensorBoard.",
    "log.progress": "Show a progress bar (process 0).",
    "eval.every_epochs": "Validate every this many epochs (fractions allowed) and at the end; 0 = only the final "
    "evaluation, of the last step's model.",
}

NOT_IN_DEFAULTS: dict[str, str] = {
    "sharding.rules": "Pairs (logical axis name, mesh axes) that place parameters and activations on the mesh; "
    "absent = `labram_jax.train.sharding.DEFAULT_RULES` (batch over `data` and `fsdp`, embed over `fsdp`, "
    "mlp, heads, vocab and codebook over `tensor`, tokens replicated). No default config has it, so set it "
    "in a config file (`config.sharding = ml_collections.ConfigDict(dict(rules=...))`): command-line "
    "overrides reach only the fields a config has.",
}
"""Fields the code reads (with a fallback) that no default config sets."""


def load_config(name: str) -> ml_collections.ConfigDict:
    """`configs/<file>.py[:argument]` -> its `get_config(argument)` (run from the repository root)."""
    path, _, argument = name.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return module.get_config(argument) if argument else module.get_config()


STAGES: tuple[tuple[str, str], ...] = (
    ("tokenizer", "configs/tokenizer.py"),
    ("pretrain", "configs/base.py"),
    ("finetune_tuab", "configs/finetune_tuab.py"),
    ("finetune_tuev", "configs/finetune_tuev.py"),
    ("finetune_custom", "configs/finetune_custom.py"),
    ("pipeline", "configs/demo.py"),
)
"""The default config of every stage: (name in the tables, the config file that builds it)."""

VARIANTS: tuple[tuple[str, str], ...] = (
    ("configs/large.py", "pretrain"),
    ("configs/huge.py", "pretrain"),
    ("configs/giant.py", "pretrain"),
    ("configs/tokenizer.py:reference", "tokenizer"),
    ("configs/finetune_tuab.py:large", "finetune_tuab"),
    ("configs/finetune_tuab.py:huge", "finetune_tuab"),
    ("configs/finetune_tuev.py:large", "finetune_tuev"),
    ("configs/finetune_tuev.py:huge", "finetune_tuev"),
    ("configs/finetune_custom.py:base,linear_probe", "finetune_custom"),
    ("configs/finetune_custom.py:base,last2", "finetune_custom"),
    ("configs/finetune_custom.py:large", "finetune_custom"),
    ("configs/finetune_custom.py:huge", "finetune_custom"),
    ("configs/demo_tokenizer.py", "tokenizer"),
    ("configs/demo_tokenizer.py:reference", "tokenizer"),
    ("configs/demo_pretrain.py", "pretrain"),
    ("configs/demo_finetune_tuab.py", "finetune_tuab"),
    ("configs/demo_finetune_tuev.py", "finetune_tuev"),
)
"""Config-file variants: (file[:argument], the stage default it changes). The demo's stage configs are also
the pipeline's `stages.<name>`."""


NOT_WALKED = ("stages",)
"""Top-level fields holding whole stage configs: documented as one field, their contents as variants."""


def walk(config: ml_collections.ConfigDict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`(dotted path, value)` of every leaf field, sections expanded, in the config's own order."""
    for name, value in config.items():
        path = prefix + name
        if isinstance(value, ml_collections.ConfigDict) and path not in NOT_WALKED:
            yield from walk(value, path + ".")
        else:
            yield path, value


def section_of(path: str) -> str:
    return path.rpartition(".")[0]


def stage_defaults() -> dict[str, dict[str, Any]]:
    """`{path: {stage: default}}` over every stage's default config, paths in first-seen order."""
    fields: dict[str, dict[str, Any]] = {}
    for stage, path_arg in STAGES:
        for path, value in walk(load_config(path_arg)):
            fields.setdefault(path, {})[stage] = value
    return fields


def check_documented(paths: Any) -> None:
    """Raises `UndocumentedFieldError` for undocumented fields, stale descriptions and undescribed sections."""
    paths = set(paths)
    missing = sorted(paths - set(FIELDS))
    stale = sorted(set(FIELDS) - paths)
    both = sorted(paths & set(NOT_IN_DEFAULTS))
    sections = sorted({section_of(p) for p in paths} - set(SECTIONS))
    problems = []
    if missing:
        problems.append(f"fields without a description in labram_jax/config_fields.py FIELDS: {', '.join(missing)}")
    if stale:
        problems.append(f"FIELDS describes fields no default config has (remove them): {', '.join(stale)}")
    if both:
        problems.append(f"NOT_IN_DEFAULTS names fields a default config has (move them to FIELDS): {', '.join(both)}")
    if sections:
        problems.append(f"sections without a paragraph in SECTIONS: {', '.join(sections)}")
    if problems:
        raise UndocumentedFieldError("; ".join(problems))


def _value(value: Any) -> str:
    """A default as it reads in Python: strings quoted, tuples with their elements."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _type(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"tuple[{' | '.join(kinds)}]" if kinds else "tuple"
    if isinstance(value, ml_collections.ConfigDict):
        return "ConfigDict"
    return type(value).__name__


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


FINETUNE_STAGES = ("finetune_tuab", "finetune_tuev", "finetune_custom")


def _stage_list(stages: list[str]) -> str:
    """`finetune_*` for the three fine-tuning stages together."""
    if all(s in stages for s in FINETUNE_STAGES):
        first = stages.index(FINETUNE_STAGES[0])
        stages = [s for s in stages if s not in FINETUNE_STAGES]
        stages.insert(first, "finetune_*")
    return ", ".join(stages)


def _default_cell(per_stage: dict[str, Any], section_stages: list[str]) -> str:
    """One value when every stage whose config has the field's section agrees, else each value with its
    stages."""
    groups: dict[str, list[str]] = {}
    for stage, value in per_stage.items():
        shown = "one config per stage" if isinstance(value, ml_collections.ConfigDict) else _code(_value(value))
        groups.setdefault(shown, []).append(stage)
    if len(groups) == 1 and list(per_stage) == section_stages:
        return _cell(next(iter(groups)))
    return "<br>".join(_cell(f"{shown} ({_stage_list(stages)})") for shown, stages in groups.items())


def _types(per_stage: dict[str, Any]) -> str:
    types = list(dict.fromkeys(_type(v) for v in per_stage.values()))
    if "tuple" in types and any(t.startswith("tuple[") for t in types):  # an empty default says less
        types.remove("tuple")
    return " \\| ".join(types)


def _section_title(section: str) -> str:
    return "Top-level fields" if not section else f"`{section}`"


def _variant_rows() -> list[str]:
    defaults = {stage: dict(walk(load_config(path))) for stage, path in STAGES}
    rows = ["| config | changes from | fields that differ |", "|---|---|---|"]
    for label, stage in VARIANTS:
        base = defaults[stage]
        variant = dict(walk(load_config(label)))
        unknown = sorted(set(variant) - set(base))
        if unknown:
            raise UndocumentedFieldError(f"{label} has fields {stage} has not: {', '.join(unknown)}")
        diffs = [f"`{p}` = {_code(_value(v))}" for p, v in variant.items() if _value(v) != _value(base[p])]
        rows.append(f"| `{label}` | {stage} | {_cell(', '.join(diffs) or '(none)')} |")
    return rows


def render() -> str:
    """The markdown of `docs/configuration.md`."""
    fields = stage_defaults()
    check_documented(fields)
    all_stages = [stage for stage, _ in STAGES]
    rank = {path: i for i, path in enumerate(FIELDS)}
    lines = [
        "<!-- Generated by `python -m labram_jax.config_fields --out docs/configuration.md` from "
        "labram_jax/config_fields.py and the files of configs/: edit those, not this page. -->",
        "",
        "# Configuration reference",
        "",
        "Every field of every stage's default config, generated from the recipes in `configs/` (the "
        "defaults) and `labram_jax/config_fields.py` (the descriptions). Override any field on the command "
        "line with `--config.<section>.<field>=value`; a field the config does not have stops the command "
        "with one line naming it (see [Training](training.md#configs)).",
        "",
        "The stages' default configs, and the files that select them:",
        "",
        "| stage | config file |",
        "|---|---|",
    ]
    lines += [f"| {stage} | `{path}` |" for stage, path in STAGES]
    lines += [
        "",
        "A **default** cell shows one value when every stage that has the field agrees (with the stages in "
        "parentheses when only some have it), else each value with its stages. Fine-tuning configs also "
        'serve `stage = "evaluate"`. A pipeline config holds whole stage configs under `stages.<name>`.',
        "",
    ]
    by_section: dict[str, list[str]] = {}
    for path in sorted(fields, key=rank.__getitem__):
        by_section.setdefault(section_of(path), []).append(path)
    order = [s for s in SECTIONS if s in by_section]
    for section in order:
        lines += [f"## {_section_title(section)}", "", SECTIONS[section], ""]
        lines += ["| field | type | default | description |", "|---|---|---|---|"]
        has_section = {stage for path in by_section[section] for stage in fields[path]}
        section_stages = [stage for stage in all_stages if stage in has_section]
        for path in by_section[section]:
            per_stage = fields[path]
            default = _default_cell(per_stage, section_stages)
            lines.append(f"| `{path}` | {_types(per_stage)} | {default} | {_cell(FIELDS[path])} |")
        lines.append("")
    lines += [
        "## Fields the code reads that no default config sets",
        "",
        "| field | description |",
        "|---|---|",
    ]
    lines += [f"| `{path}` | {_cell(text)} |" for path, text in NOT_IN_DEFAULTS.items()]
    lines += [
        "",
        "## Variants",
        "",
        "What each other config file (or config argument) changes from its stage's default above. The "
        "`configs/demo_*.py` stage configs are also the demo pipeline's `stages.<name>`.",
        "",
    ]
    lines += _variant_rows()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m labram_jax.config_fields",
        description="Write the configuration reference (markdown) generated from the default configs and the "
        "field descriptions; stdout unless --out.",
    )
    parser.add_argument("--out", help="write the page to this file (e.g. docs/configuration.md)")
    parser.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the generated page")
    args = parser.parse_args(argv)
    try:
        text = render()
    except UndocumentedFieldError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.check:
        with open(args.check, encoding="utf-8") as f:
            if f.read() != text:
                print(
                    f"{args.check} is stale: run python -m labram_jax.config_fields --out {args.check}", file=sys.stderr
                )
                return 1
        return 0
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
