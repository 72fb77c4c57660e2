"""Each stage validates its config before anything is opened or compiled; the recipes in configs/ pass."""

from __future__ import annotations

import subprocess
import sys

import ml_collections
import pytest

from labram_jax import config_fields
from labram_jax.config_errors import ConfigError
from labram_jax.train.stages import STAGES, make_stage


def _validate(config: ml_collections.ConfigDict) -> None:
    STAGES[config.stage].validate(config)


def _recipes() -> list[tuple[str, ml_collections.ConfigDict]]:
    names = [path for _, path in config_fields.STAGES] + [label for label, _ in config_fields.VARIANTS]
    out = []
    for name in names:
        config = config_fields.load_config(name)
        stages = [config.stages[s] for s in config.order] if config.stage == "pipeline" else [config]
        out += [(name, stage) for stage in stages]
    return out


@pytest.mark.parametrize("name, config", _recipes(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_recipe_validates(name, config):
    if config.get("task", {}).get("kind") == "auto":
        # configs/finetune_custom.py: the task comes from the dataset's metadata at run time.
        config = ml_collections.ConfigDict(config.to_dict())
        config.task.update(kind="binary", num_outputs=1, label_smoothing=0.0)
        config.data.update(max_channels=8, max_patches=4)
    _validate(config)


def test_pretraining_refuses_tokenizer_fields_it_would_ignore():
    config = config_fields.load_config("configs/demo_pretrain.py")
    config.tokenizer = ml_collections.ConfigDict({"checkpoint": "", "num_codes": 16})
    with pytest.raises(ConfigError, match=r"config.tokenizer.num_codes would be ignored.*config.tokenizer.checkpoint"):
        make_stage(config)


def test_the_command_line_cannot_set_a_pretraining_tokenizer_architecture():
    cmd = [sys.executable, "-m", "labram_jax.main", "--config=configs/base.py", "--dry_run"]
    out = subprocess.run([*cmd, "--config.tokenizer.num_codes=16"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--config.tokenizer.num_codes" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("optim.lr", -1.0, r"config.optim.lr=-1.0 must be a positive number"),
        ("optim.batch_size", 0, r"config.optim.batch_size=0 must be a positive integer"),
        ("mesh.fsdp", 0, r"config.mesh.fsdp=0 must be -1 \(the remaining devices\) or >= 1"),
        ("data.max_patches", 0, r"config.data.max_patches=0 must be >= 1"),
        ("trainable_blocks", -2, r"config.trainable_blocks=-2 must be -1 \(all\)"),
        ("task.label_smoothing", 1.0, r"config.task.label_smoothing=1.0 must be in \[0, 1\)"),
    ],
)
def test_unusable_values_are_named(path, value, message):
    config = config_fields.load_config("configs/finetune_tuev.py")
    section, _, name = path.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(ConfigError, match=message):
        make_stage(config)


def test_a_missing_field_is_named_with_where_configs_get_it():
    config = config_fields.load_config("configs/tokenizer.py")
    del config.optim["grad_accum_steps"]
    with pytest.raises(ConfigError, match=r"config.optim.grad_accum_steps is missing.*configs/common.py"):
        make_stage(config)
    config = config_fields.load_config("configs/tokenizer.py")
    del config.tokenizer["code_dim"]
    with pytest.raises(ConfigError, match=r"config.tokenizer lacks code_dim"):
        make_stage(config)
