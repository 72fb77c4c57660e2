"""Small helpers the recipes in `configs/` share (as big_vision's `configs/common.py`).

The package holds only architecture defaults (`labram_jax.config_defaults`); everything about a run (its
data, schedule, cadences) is set here or in the config file itself, each default in one place.
"""

from __future__ import annotations

import ml_collections

from labram_jax import config_defaults


def runtime(config: ml_collections.ConfigDict) -> None:
    """Sections every stage has: seed, step cap, mesh, checkpoints, logging, evaluation cadence."""
    config.seed = 0
    config.max_steps = 0  # 0 = the full optim.epochs; the schedule always spans the epochs
    config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))  # -1 = the remaining devices
    config.checkpoint = ml_collections.ConfigDict(dict(every_steps=0, keep=2, keep_best=1, async_save=True))
    config.log = ml_collections.ConfigDict(dict(every_steps=50, progress=True))
    config.eval = ml_collections.ConfigDict(dict(every_epochs=1.0))


def data(
    train: str, validation: str = "", test: str = "", *, max_channels: int, max_patches: int, **extra
) -> ml_collections.ConfigDict:
    """`config.data`: datasets as `name/config[:split]` lists and the budget every example is padded to."""
    return ml_collections.ConfigDict(
        dict(
            data_dir="~/tensorflow_datasets",
            train=train,
            validation=validation,
            test=test,
            weights=(),
            max_channels=max_channels,
            max_patches=max_patches,
            shuffle=True,
            num_workers=0,
            eval_batch_size=0,
            **extra,
        )
    )


def adamw(
    *,
    batch_size: int,
    lr: float,
    min_lr: float,
    epochs: int,
    warmup_epochs: int,
    b2: float,
    weight_decay: float,
    clip_grad_norm: float = 0.0,
    **extra,
) -> ml_collections.ConfigDict:
    """`config.optim`: AdamW with a linear warm-up from 0 and a per-step cosine to `min_lr` (ref. §5.4)."""
    return ml_collections.ConfigDict(
        dict(
            batch_size=batch_size,
            lr=lr,
            min_lr=min_lr,
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            warmup_steps=-1,  # > 0 overrides warmup_epochs
            b1=0.9,
            b2=b2,
            eps=1e-8,
            weight_decay=weight_decay,
            clip_grad_norm=clip_grad_norm,
            grad_accum_steps=1,
            **extra,
        )
    )


def tokenizer_architecture(quantizer: str = "remedies") -> ml_collections.ConfigDict:
    """The official VQ-NSP; `quantizer` "remedies" adds our codebook-collapse remedies (docs/codebook.md),
    "reference" keeps the official quantiser."""
    if quantizer not in ("remedies", "reference"):
        raise ValueError(f"tokenizer config argument {quantizer!r} must be 'remedies' or 'reference'")
    tokenizer = config_defaults.tokenizer_model_config()
    tokenizer.update(
        config_defaults.QUANTIZER_REMEDIES if quantizer == "remedies" else config_defaults.REFERENCE_QUANTIZER
    )
    return tokenizer


FINETUNE_RECIPES = {
    # ref. §6.8 (paper Table 5): Base 50 epochs / 5 warm-up / layer decay 0.65; Large and Huge 30 / 3 / 0.8.
    "base": dict(epochs=50, warmup_epochs=5, layer_decay=0.65, drop_path_rate=0.1),
    "large": dict(epochs=30, warmup_epochs=3, layer_decay=0.8, drop_path_rate=0.1),
    "huge": dict(epochs=30, warmup_epochs=3, layer_decay=0.8, drop_path_rate=0.2),
    "giant": dict(epochs=30, warmup_epochs=3, layer_decay=0.8, drop_path_rate=0.2),  # ours: Huge's recipe
}


def finetune(
    size: str,
    *,
    dataset: str,
    kind: str,
    num_outputs: int,
    class_names: tuple[str, ...] = (),
    max_channels: int,
    max_patches: int,
) -> ml_collections.ConfigDict:
    """The reference fine-tuning recipe of `size` (ref. §6.5, §6.8): AdamW (0.9, 0.999), wd 0.05, lr 5e-4
    -> 1e-6, batch 512, layer-wise lr decay, no clipping; label smoothing 0.1 for multi-class tasks."""
    if size not in FINETUNE_RECIPES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(FINETUNE_RECIPES)}")
    recipe = FINETUNE_RECIPES[size]
    config = ml_collections.ConfigDict()
    config.stage = "finetune"
    runtime(config)
    config.init_checkpoint = ""  # a pre-training workdir, a converted official checkpoint, '' = random init
    config.model = config_defaults.model_config(size)
    config.model.drop_path_rate = recipe["drop_path_rate"]
    config.task = ml_collections.ConfigDict(
        dict(
            kind=kind,
            num_outputs=num_outputs,
            label_smoothing=0.1 if kind == "multiclass" else 0.0,
            monitor="",  # '' = the paper's metric of the task kind
            class_names=tuple(class_names),
        )
    )
    config.optim = adamw(
        batch_size=512,
        lr=5e-4,
        min_lr=1e-6,
        epochs=recipe["epochs"],
        warmup_epochs=recipe["warmup_epochs"],
        b2=0.999,
        weight_decay=0.05,
        layer_decay=recipe["layer_decay"],
    )
    config.data = data(
        f"{dataset}:train",
        f"{dataset}:validation",
        f"{dataset}:test",
        max_channels=max_channels,
        max_patches=max_patches,
    )
    # -1: fine-tune everything; 0: linear probe (fc_norm + head); k: the last k blocks too (ref. §8.4).
    config.trainable_blocks = -1
    # "0,1,2,3,4": one run per seed in <workdir>/seed_<s>, then mean ± std of the test metrics (ref. §6.8).
    config.seeds = ""
    return config


# -- the demo: every stage on the synthetic `demo` datasets, small enough for 2 CPU cores ------------------
DEMO_DATA_DIR = "~/tensorflow_datasets"
DEMO_CORPUS = "demo/corpus:train"
DEMO_CORPUS_VALIDATION = "demo/corpus:validation"
DEMO_BACKBONE = dict(width=100, depth=4, num_heads=4)
DEMO_TOKENIZER = dict(width=100, num_heads=4, encoder_depth=2, decoder_depth=1, num_codes=256, code_dim=32)


def demo_runtime(config: ml_collections.ConfigDict, *, batch_size: int, epochs: int, lr: float) -> None:
    """The demo's schedule and budgets: one warm-up epoch, the demo data, 23 channels x 10 s."""
    config.optim.batch_size = batch_size
    config.optim.epochs = epochs
    config.optim.warmup_epochs = 1
    config.optim.lr = lr
    config.data.data_dir = DEMO_DATA_DIR
    config.data.max_channels = 23
    config.data.max_patches = 10
    config.log.every_steps = 10
    config.checkpoint.keep = 1


def demo_finetune(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """A fine-tuning recipe moved onto the small labelled demo set `demo/<name>`: the demo backbone, no drop
    path, the task's own window length; many short epochs (a few steps each), validated every other one."""
    window = config.data.max_patches
    config.data.update(train=f"demo/{name}:train", validation=f"demo/{name}:validation", test=f"demo/{name}:test")
    config.model.update(DEMO_BACKBONE)
    config.model.drop_path_rate = 0.0
    # 12 epochs keeps the demo under 15 minutes on 2 cores; in 20-epoch runs (seed 0) three of the four
    # fine-tunings selected their checkpoint at epoch 12 (random-init TUAB at epoch 20).
    demo_runtime(config, batch_size=32, epochs=12, lr=1e-3)
    config.eval.every_epochs = 2
    config.data.max_patches = window
    config.optim.layer_decay = 0.9
    return config
