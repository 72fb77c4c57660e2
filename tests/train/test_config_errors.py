"""Bad configs stop before anything compiles, with a message that names the field."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from jax.sharding import AbstractMesh, AxisType

from labram_jax.config_errors import ConfigError
from labram_jax.train import loop
from labram_jax.train.sharding import ShardingConfigError, check_batch, mesh_shape
from tests.train.tiny_configs import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labram_jax.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )


def test_unknown_config_key_names_the_field(tmp_path):
    out = _main("--config=configs/demo_finetune_tuab.py", f"--workdir={tmp_path}", "--config.optim.lrr=1")
    assert out.returncode != 0
    assert "lrr" in out.stderr


def test_wrong_stage_names_the_field(tmp_path):
    out = _main("--config=configs/demo_finetune_tuab.py", f"--workdir={tmp_path}", "--config.stage=train")
    assert out.returncode != 0
    assert "stage" in out.stderr and "tokenizer" in out.stderr


def test_missing_dataset_says_how_to_build_it(tmp_path):
    out = _main("--config=configs/huge.py", f"--workdir={tmp_path}", f"--config.data.data_dir={tmp_path}/none")
    assert out.returncode == 1
    assert "eeg_corpus/w4" in out.stderr
    assert "python -m tfds_builders.build eeg_corpus --config=w4" in out.stderr


def test_missing_tokenizer_checkpoint(demo_data_dir, tmp_path):
    config = tiny_config("pretrain", demo_data_dir)
    config.tokenizer.checkpoint = ""
    with pytest.raises(ConfigError, match="config.tokenizer.checkpoint"):
        loop.Trainer(config, str(tmp_path))
    config.tokenizer.checkpoint = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="does not exist"):
        loop.Trainer(config, str(tmp_path))


def test_mesh_that_does_not_divide_the_devices(demo_data_dir, tmp_path):
    config = tiny_config("finetune_tuab", demo_data_dir)
    config.mesh.data = 3
    with pytest.raises(ShardingConfigError, match="config.mesh"):
        loop.Trainer(config, str(tmp_path))
    with pytest.raises(ShardingConfigError, match="config.mesh"):
        mesh_shape(config.mesh, 8)
    config.mesh.update(dict(data=-1, fsdp=3, tensor=1))
    with pytest.raises(ShardingConfigError, match="do not divide"):
        mesh_shape(config.mesh, 8)
    config.mesh.update(dict(data=-1, fsdp=2, tensor=2))
    assert mesh_shape(config.mesh, 8) == (2, 2, 2)


def test_batch_not_divisible_by_the_data_axes():
    mesh = AbstractMesh((2, 2, 1), ("data", "fsdp", "tensor"), axis_types=(AxisType.Auto,) * 3)
    with pytest.raises(ShardingConfigError, match="config.optim.batch_size=6.*data-parallel"):
        check_batch(6, 1, mesh)
    with pytest.raises(ShardingConfigError, match="grad_accum_steps"):
        check_batch(8, 3, mesh)
    with pytest.raises(ShardingConfigError, match="micro-batches of 4"):
        check_batch(8, 2, AbstractMesh((8, 1, 1), ("data", "fsdp", "tensor"), axis_types=(AxisType.Auto,) * 3))
    check_batch(16, 2, mesh)


def test_task_fields_are_checked(demo_data_dir, tmp_path):
    config = tiny_config("finetune_tuab", demo_data_dir)
    config.task.kind = "binaryy"
    with pytest.raises(ConfigError, match="config.task.kind"):
        loop.Trainer(config, str(tmp_path))
    config = tiny_config("finetune_tuab", demo_data_dir)
    config.task.num_outputs = 2
    with pytest.raises(ConfigError, match="config.task.num_outputs"):
        loop.Trainer(config, str(tmp_path))
    config = tiny_config("finetune_tuab", demo_data_dir)
    config.optim.batch_size = 100000
    with pytest.raises(ConfigError, match="config.optim.batch_size"):
        loop.Trainer(config, str(tmp_path))
