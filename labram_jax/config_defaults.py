"""Default configs of every stage, with the reference's hyper-parameters; `configs/*.py` select from them.

Field reference (all ml_collections; override any on the command line with `--config.a.b=value`):
* `stage`: tokenizer | pretrain | finetune | evaluate.
* `model`: the neural Transformer: `size` (base/large/huge), `layer_scale_init` (paper Table 4 per size),
  `drop_path_rate`, `max_patches` (rows of the temporal embedding; 16 in the official weights), `dtype`
  (compute dtype; parameters stay float32), `remat`.
* `tokenizer`: VQ-NSP: encoder/decoder depth, `num_codes` x `code_dim` codebook, EMA `ema_decay`,
  commitment `beta`, `kmeans_init`, and `checkpoint` (a trained tokenizer, needed by `pretrain`). Our
  codebook-collapse remedies (docs/codebook.md; each 0 = off, the reference): `continuous_steps` (training
  steps during which the decoder gets the continuous encoder output before quantisation starts; -1 = the
  optimiser's warm-up), dead-code restart (`restart_threshold`: re-seed a code whose usage-share EMA, decay
  `restart_decay`, falls below that fraction of uniform use), and the entropy penalty (`entropy_weight`,
  `entropy_temperature`).
* `optim`: AdamW and the warm-up + cosine schedule, per-step as `utils.cosine_scheduler`.
* `data`: datasets as `name/config[:split]` lists (`train`, `validation`, `test`) in `data_dir`, mixture
  `weights`, the channel / patch budget every example is padded to, and (pre-training) the masking ratio.
* `task` (fine-tuning): `kind` binary | multiclass | regression, `num_outputs`, `label_smoothing`,
  `monitor` (validation metric selecting the best checkpoint; '' = the paper's AUROC / kappa / R²;
  `accuracy` = the official code's choice), `class_names`.
* `init_checkpoint` (fine-tuning / evaluate): a pre-training workdir, a converted official checkpoint, or
  a fine-tuned one ('' = random init).
* `mesh`: sizes of the `data`, `fsdp`, `tensor` axes (-1 = the remaining devices); `sharding.rules` maps
  logical axis names to them (default `labram_jax.train.sharding.DEFAULT_RULES`).
* `checkpoint`: `every_steps` (0 = once per epoch), `keep` latest, `keep_best` by the monitor, `async_save`.
* `log`: `every_steps`, `progress` bar. `eval`: `every_epochs` (0 = only at the end).
* `max_steps`: stop early (0 = the full `optim.epochs`; the schedule still spans the epochs).
* pipeline configs (`stage = "pipeline"`, `configs/demo.py`): `order` and `stages` (one config per stage),
  `data_dir`, `build_demo_data`, `scratch_baselines` (each fine-tuning also from random initialisation, same
  budget and seeds), `seeds` ("0,1,2": every fine-tuning once per seed, reported as mean ± std).
"""

from __future__ import annotations

import ml_collections

from labram_jax.models.spec import SIZES


def model_config(size: str = "base") -> ml_collections.ConfigDict:
    """`config.model`. `width` / `depth` / `num_heads` (0 = the size's) shrink a model for demos and tests."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    return ml_collections.ConfigDict(
        dict(
            size=size,
            width=0,
            depth=0,
            num_heads=0,
            layer_scale_init=SIZES[size]["layer_scale_init"],
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.0,
            max_patches=16,
            head_init_scale=0.001,
            dtype="float32",
            remat=False,
        )
    )


def tokenizer_model_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            width=200,
            num_heads=10,
            encoder_depth=12,
            decoder_depth=3,
            num_codes=8192,
            code_dim=64,
            ema_decay=0.99,
            beta=1.0,
            kmeans_init=True,
            # Codebook-collapse remedies (ours, docs/codebook.md), all off here: the reference quantiser.
            restart_threshold=0.0,
            restart_decay=0.99,
            entropy_weight=0.0,
            entropy_temperature=0.1,
            continuous_steps=0,
            max_patches=16,
            dtype="float32",
            remat=False,
            checkpoint="",
        )
    )


def _runtime(config: ml_collections.ConfigDict) -> None:
    """Sections every stage shares: mesh, checkpoints, logging, evaluation cadence."""
    config.seed = 0
    config.max_steps = 0
    config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    config.checkpoint = ml_collections.ConfigDict(dict(every_steps=0, keep=2, keep_best=1, async_save=True))
    config.log = ml_collections.ConfigDict(dict(every_steps=50, progress=True))
    config.eval = ml_collections.ConfigDict(dict(every_epochs=1.0))


def _data(
    train: str, validation: str = "", test: str = "", max_channels: int = 64, max_patches: int = 4, **extra
) -> ml_collections.ConfigDict:
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


def pretrain_config(size: str = "base") -> ml_collections.ConfigDict:
    """Masked EEG modeling (ref. §5.5: the README command / paper Table 4)."""
    config = ml_collections.ConfigDict()
    config.stage = "pretrain"
    _runtime(config)
    config.model = model_config(size)
    config.tokenizer = tokenizer_model_config()
    config.optim = ml_collections.ConfigDict(
        dict(
            batch_size=512,
            lr=5e-4,
            min_lr=1e-5,
            warmup_epochs=5,
            epochs=50,
            b1=0.9,
            b2=0.98,
            eps=1e-8,
            weight_decay=0.05,
            clip_grad_norm=3.0,
            grad_accum_steps=1,
            warmup_steps=-1,
        )
    )
    # The paper caps sequences at 256 tokens (4 s x 64 channels); every example is padded to this budget.
    config.data = _data("eeg_corpus/w4", max_channels=64, max_patches=4, mask_ratio=0.5)
    return config


# Our remedies for codebook collapse (docs/codebook.md): a continuous warm-up over the optimiser's warm-up,
# then dead-code restart and the entropy penalty. The reference quantiser has none (REFERENCE_QUANTIZER).
QUANTIZER_REMEDIES = dict(
    continuous_steps=-1, restart_threshold=0.1, restart_decay=0.9, entropy_weight=0.1, entropy_temperature=0.1
)
REFERENCE_QUANTIZER = dict(continuous_steps=0, restart_threshold=0.0, entropy_weight=0.0)


def tokenizer_config(quantizer: str = "remedies") -> ml_collections.ConfigDict:
    """VQ-NSP training (ref. §4.8: the README command / paper Table 3).

    `optim.lr` is the reference's base lr; as `run_vqnsp_training.py` the trainer rescales it by
    `batch_size / 128` (4e-4 at the reference's 1024). `quantizer`: "remedies" (default; a deviation, see
    docs/codebook.md) or "reference" (the official quantiser: `configs/tokenizer.py:reference`).
    """
    if quantizer not in ("remedies", "reference"):
        raise ValueError(f"tokenizer config argument {quantizer!r} must be 'remedies' or 'reference'")
    config = ml_collections.ConfigDict()
    config.stage = "tokenizer"
    _runtime(config)
    config.tokenizer = tokenizer_model_config()
    config.tokenizer.update(QUANTIZER_REMEDIES if quantizer == "remedies" else REFERENCE_QUANTIZER)
    config.optim = ml_collections.ConfigDict(
        dict(
            batch_size=1024,
            lr=5e-5,
            lr_batch_rescale=True,
            min_lr=1e-5,
            warmup_epochs=10,
            epochs=100,
            b1=0.9,
            b2=0.99,
            eps=1e-8,
            weight_decay=1e-4,
            clip_grad_norm=0.0,
            grad_accum_steps=1,
            warmup_steps=-1,
        )
    )
    # The reference slides its 4-s tokenizer windows by 1 s (`eeg_corpus` config `w4s1`).
    config.data = _data("eeg_corpus/w4s1", max_channels=64, max_patches=4)
    return config


FINETUNE_RECIPES = {
    # ref. §6.8 (paper Table 5): Base 50 epochs / 5 warm-up / layer decay 0.65; Large and Huge 30 / 3 / 0.8.
    "base": dict(epochs=50, warmup_epochs=5, layer_decay=0.65, drop_path_rate=0.1),
    "large": dict(epochs=30, warmup_epochs=3, layer_decay=0.8, drop_path_rate=0.1),
    "huge": dict(epochs=30, warmup_epochs=3, layer_decay=0.8, drop_path_rate=0.2),
}


def finetune_config(
    size: str = "base",
    *,
    dataset: str,
    kind: str,
    num_outputs: int,
    class_names=(),
    max_channels: int = 23,
    max_patches: int = 10,
) -> ml_collections.ConfigDict:
    """Fine-tuning (ref. §6.5, §6.8): AdamW (0.9, 0.999), wd 0.05, lr 5e-4 -> 1e-6, batch 512, no clipping."""
    recipe = FINETUNE_RECIPES[size]
    config = ml_collections.ConfigDict()
    config.stage = "finetune"
    _runtime(config)
    config.init_checkpoint = ""
    config.model = model_config(size)
    config.model.drop_path_rate = recipe["drop_path_rate"]
    config.task = ml_collections.ConfigDict(
        dict(
            kind=kind,
            num_outputs=num_outputs,
            label_smoothing=0.1 if kind == "multiclass" else 0.0,
            monitor="",
            class_names=tuple(class_names),
        )
    )
    config.optim = ml_collections.ConfigDict(
        dict(
            batch_size=512,
            lr=5e-4,
            min_lr=1e-6,
            warmup_epochs=recipe["warmup_epochs"],
            epochs=recipe["epochs"],
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            weight_decay=0.05,
            layer_decay=recipe["layer_decay"],
            clip_grad_norm=0.0,
            grad_accum_steps=1,
            warmup_steps=-1,
        )
    )
    config.data = _data(
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


def finetune_tuab_config(size: str = "base") -> ml_collections.ConfigDict:
    """TUAB abnormal detection: binary (BCE on one logit), 23 channels x 10 s (ref. §6.3, §7.4)."""
    return finetune_config(
        size,
        dataset="tuab/default",
        kind="binary",
        num_outputs=1,
        class_names=("normal", "abnormal"),
        max_channels=23,
        max_patches=10,
    )


PARTIAL_MODES = {"full": -1, "linear_probe": 0}
"""`configs/finetune_custom.py:<size>,<mode>` modes besides `last<k>` (the last k blocks and the head)."""


def finetune_custom_config(
    size: str = "base", mode: str = "full", dataset: str = "eeg_labelled/events"
) -> ml_collections.ConfigDict:
    """Fine-tuning on a user's `eeg_labelled` dataset: task kind, classes, channel and length budgets are
    read from the dataset's metadata at run time (`labram_jax.train.task_from_data`).

    The reference recipe of `size`, with a batch of 64 (user datasets are often a few thousand records;
    the paper's 512 would leave a handful of steps per epoch). `mode`: `full`, `linear_probe` or `last<k>`.
    """
    if mode in PARTIAL_MODES:
        trainable = PARTIAL_MODES[mode]
    elif mode.startswith("last") and mode[4:].isdigit():
        trainable = int(mode[4:])
    else:
        raise ValueError(f"fine-tuning mode {mode!r} is not one of full, linear_probe, last<k> (e.g. last2)")
    config = finetune_config(size, dataset=dataset, kind="auto", num_outputs=-1, max_channels=-1, max_patches=-1)
    config.task.label_smoothing = -1.0  # 0.1 if the dataset is multi-class, else 0
    # One name for the three splits (`--config.dataset=eeg_labelled/NAME`); data.train/validation/test
    # stay empty and are filled from it at run time, unless set explicitly.
    config.dataset = dataset
    config.data.train = config.data.validation = config.data.test = ""
    config.optim.batch_size = 64
    config.trainable_blocks = trainable
    return config


TUEV_CLASSES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")


def finetune_tuev_config(size: str = "base") -> ml_collections.ConfigDict:
    """TUEV event classification: 6 classes, label smoothing 0.1, 23 channels x 5 s (ref. §6.3, §7.5)."""
    return finetune_config(
        size,
        dataset="tuev/default",
        kind="multiclass",
        num_outputs=6,
        class_names=TUEV_CLASSES,
        max_channels=23,
        max_patches=5,
    )


# -- the demo: every stage on the synthetic `demo` datasets, small enough for 2 CPU cores ------------------
DEMO_DATA_DIR = "~/tensorflow_datasets"
DEMO_CORPUS = "demo/corpus:train"
DEMO_CORPUS_VALIDATION = "demo/corpus:validation"
DEMO_BACKBONE = dict(width=100, depth=4, num_heads=4)


def _demo_runtime(config: ml_collections.ConfigDict, batch_size: int, epochs: int, lr: float) -> None:
    config.optim.batch_size = batch_size
    config.optim.epochs = epochs
    config.optim.warmup_epochs = 1
    config.optim.lr = lr
    config.data.data_dir = DEMO_DATA_DIR
    config.data.max_channels = 23
    config.data.max_patches = 10
    config.log.every_steps = 10
    config.checkpoint.keep = 1


def demo_config(stage: str, quantizer: str = "remedies") -> ml_collections.ConfigDict:
    """A small model and schedule per stage on the demo datasets (see `configs/demo.py`)."""
    if stage == "tokenizer":
        config = tokenizer_config(quantizer)
        config.tokenizer.update(
            dict(width=100, num_heads=4, encoder_depth=2, decoder_depth=1, num_codes=256, code_dim=32)
        )
        config.data.train = DEMO_CORPUS
        config.data.validation = DEMO_CORPUS_VALIDATION
        config.optim.lr_batch_rescale = False
        # The codes start carrying information ~60 steps after quantisation starts (docs/codebook.md).
        _demo_runtime(config, batch_size=32, epochs=8, lr=1e-3)
        config.optim.min_lr = 1e-4
        return config
    if stage == "pretrain":
        config = pretrain_config("base")
        config.model.update(DEMO_BACKBONE)
        config.tokenizer.update(
            dict(width=100, num_heads=4, encoder_depth=2, decoder_depth=1, num_codes=256, code_dim=32)
        )
        config.data.train = DEMO_CORPUS
        config.data.validation = DEMO_CORPUS_VALIDATION
        # Masked-token accuracy climbs slowly at this scale (docs/codebook.md): 12 epochs = 240 steps.
        _demo_runtime(config, batch_size=32, epochs=12, lr=1e-3)
        config.eval.every_epochs = 4
        return config
    if stage in ("finetune_tuab", "finetune_tuev"):
        config = finetune_tuab_config() if stage == "finetune_tuab" else finetune_tuev_config()
        name = stage.split("_")[1]
        config.data.train = f"demo/{name}:train"
        config.data.validation = f"demo/{name}:validation"
        config.data.test = f"demo/{name}:test"
        config.model.update(DEMO_BACKBONE)
        config.model.drop_path_rate = 0.0
        # The labelled sets are small (a few steps per epoch): many short epochs, validated every other one.
        _demo_runtime(config, batch_size=32, epochs=20, lr=1e-3)
        config.eval.every_epochs = 2
        config.data.max_patches = 10 if name == "tuab" else 5
        config.optim.layer_decay = 0.9
        return config
    raise ValueError(f"no demo config for stage {stage!r}")


DEMO_STAGES = ("tokenizer", "pretrain", "finetune_tuab", "finetune_tuev")


def demo_pipeline_config() -> ml_collections.ConfigDict:
    """The demo main job: build the demo data, then tokenizer -> pre-training -> both fine-tunings."""
    config = ml_collections.ConfigDict()
    config.stage = "pipeline"
    config.data_dir = DEMO_DATA_DIR
    config.build_demo_data = True
    config.order = DEMO_STAGES
    # Each fine-tuning also runs from random initialisation (same budget and seeds): what pre-training buys.
    config.scratch_baselines = True
    # "0,1,2": every fine-tuning once per seed, reported as mean ± std ('' = each stage's own seed).
    config.seeds = ""
    config.stages = ml_collections.ConfigDict({name: demo_config(name) for name in DEMO_STAGES})
    return config
