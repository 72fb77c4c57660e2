"""Fine-tuning and evaluation of a classifier or regressor on a labelled dataset (ref. §6)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from labram_jax import checkpoints, layout
from labram_jax.checkpoints import restore_on_mesh, shape_mismatches
from labram_jax.config_errors import ConfigError
from labram_jax.models import factory
from labram_jax.ops.losses import (
    binary_cross_entropy,
    label_smoothing_cross_entropy,
    mse_regression,
)
from labram_jax.train.evaluation import (
    DEFAULT_MONITOR,
    confusion,
    monitor_mode,
    task_metrics,
)
from labram_jax.train.stages import validation
from labram_jax.train.stages.base import Stage, eval_inputs, model_inputs

TASK_KINDS = ("binary", "multiclass", "regression")


class FinetuneStage(Stage):
    kind = "finetune"

    @classmethod
    def validate(cls, config) -> None:
        super().validate(config)
        validation.validate_transformer(config)
        validation.check(
            config,
            {
                "init_checkpoint": (lambda v: isinstance(v, str), "a checkpoint path or '' (random init)"),
                "trainable_blocks": (lambda v: isinstance(v, int) and v >= -1, "-1 (all), 0 (linear probe) or k"),
                "task.label_smoothing": (
                    lambda v: isinstance(v, float) and (0 <= v < 1 or v == -1),
                    "in [0, 1) (-1: 0.1 for a multi-class dataset, else 0)",
                ),
                "task.monitor": (lambda v: isinstance(v, str), "a validation metric or '' (the paper's)"),
                "optim.layer_decay": (lambda v: isinstance(v, float) and 0 < v <= 1, "in (0, 1] (1 = none)"),
            },
        )
        task = config.task
        if task.kind not in TASK_KINDS:
            raise ConfigError(f"config.task.kind={task.kind!r} must be one of {', '.join(TASK_KINDS)}")
        if task.kind == "binary" and task.num_outputs != 1:
            raise ConfigError(
                f"config.task.num_outputs={task.num_outputs}: a binary task has one output (BCE on "
                "a single logit, as the reference); set --config.task.num_outputs=1"
            )
        if task.kind == "multiclass" and task.num_outputs < 2:
            raise ConfigError(f"config.task.num_outputs={task.num_outputs}: a multi-class task needs >= 2 classes")

    def build_model(self):
        model = factory.classifier_model(self.config, self.config.task.num_outputs)
        k = self.config.trainable_blocks
        depth = model.spec.depth
        if not -1 <= k <= depth:
            raise ConfigError(
                f"config.trainable_blocks={k} must be -1 (fine-tune everything), 0 (linear probe: "
                f"fc_norm and head only) or the number of last blocks to train (at most {depth})"
            )
        if k >= 0:
            # Partial fine-tuning (ref. §8.4 Table 10): no backward through the frozen part at all.
            model = model.clone(spec=dataclasses.replace(model.spec, frozen_blocks=depth - k))
        return model

    def layer_decay_depth(self) -> int:
        return self.model.spec.depth

    def is_frozen(self, path: tuple[str, ...]) -> bool:
        """The backbone below the last `trainable_blocks` blocks (embeddings included) when partial."""
        k = self.config.trainable_blocks
        if k < 0 or not path or path[0] != "backbone":
            return super().is_frozen(path)
        part = path[1] if len(path) > 1 else ""
        if part.startswith("blocks_"):
            return int(part.split("_")[1]) < self.model.spec.frozen_blocks
        return True

    def check_ready(self) -> None:
        path = self.config.init_checkpoint
        if path:
            if not os.path.exists(os.path.expanduser(path)):
                raise ConfigError(
                    f"config.init_checkpoint={path!r} does not exist (a pre-training workdir, a "
                    "converted official checkpoint, or '' to start from random weights)"
                )
            meta = checkpoints.read_meta(path)
            checkpoints.require_kind(meta, path, "pretrain", "finetune", purpose="config.init_checkpoint")

    def restore_pretrained(self, params, mesh, rules):
        path = self.config.init_checkpoint
        if not path:
            return params, None
        variables, meta, _ = restore_on_mesh(path, mesh, rules)
        backbone = checkpoints.backbone_params(variables["params"], meta["kind"])
        problems = shape_mismatches(params["backbone"], backbone)
        if problems:
            raise ConfigError(
                f"the backbone in config.init_checkpoint={path!r} (model size "
                f"{meta['model_spec']['transformer']['size']!r}) does not fit config.model (size "
                f"{self.config.model.size!r}): " + "; ".join(problems[:8])
            )
        # Only the backbone carries over (ref. §6.2); fc_norm and the head keep their fresh init.
        return {**params, "backbone": backbone}, f"backbone from {meta['kind']} checkpoint {path} (step {meta['step']})"

    def _loss(self, outputs, labels, train: bool, weights=None):
        """Training loss (label smoothing for multi-class), or plain CE / BCE / MSE for evaluation; a mean
        over the examples where `weights` is True."""
        kind = self.config.task.kind
        if kind == "binary":
            return binary_cross_entropy(outputs, labels, weights)
        if kind == "multiclass":
            smoothing = self.config.task.label_smoothing if train else 0.0
            return label_smoothing_cross_entropy(outputs, labels, smoothing, weights)
        return mse_regression(outputs, labels, weights)

    def _accuracy(self, outputs, labels):
        if self.config.task.kind == "binary":
            return jnp.mean(((outputs[:, 0] > 0) == (labels > 0.5)).astype(jnp.float32))
        if self.config.task.kind == "multiclass":
            return jnp.mean((jnp.argmax(outputs, -1) == labels).astype(jnp.float32))
        return jnp.float32(jnp.nan)

    def loss_fn(self, params, extra, batch, rng, frozen):
        outputs = self.model.apply({"params": params}, *model_inputs(batch), deterministic=False, rngs={"dropout": rng})
        labels = batch[layout.LABEL]
        loss = self._loss(outputs, labels, train=True)
        metrics = {"class_acc": self._accuracy(outputs, labels)} if self.config.task.kind != "regression" else {}
        return loss, (metrics, extra)

    def eval_fn(self, params, extra, batch, frozen):
        inputs = eval_inputs(batch)
        outputs = self.model.apply({"params": params}, *inputs, deterministic=True).astype(jnp.float32)
        labels, valid = batch[layout.LABEL], batch["valid"]
        count = jnp.sum(valid.astype(jnp.float32))
        loss = self._loss(outputs, labels, train=False, weights=valid)
        return ({"outputs": outputs, "label": labels, "index": batch["index"]}, {"loss": loss * count, "count": count})

    def summarize(self, per_example, sums) -> dict[str, Any]:
        kind = self.config.task.kind
        outputs, labels = per_example["outputs"], per_example["label"]
        # One logit (binary) or one regression target per example: compare (n,) with (n,).
        single = kind == "binary" or (kind == "regression" and outputs.shape[-1] == 1 and labels.ndim == 1)
        metrics = task_metrics(kind, labels, outputs[:, 0] if single else outputs)
        metrics["loss"] = float(sums["loss"]) / max(float(sums["count"]), 1.0)
        metrics["examples"] = len(labels)
        return metrics

    def confusion_matrix(self, per_example) -> np.ndarray | None:
        kind = self.config.task.kind
        if kind == "regression":
            return None
        outputs, labels = per_example["outputs"], per_example["label"]
        preds = (outputs[:, 0] > 0).astype(int) if kind == "binary" else outputs.argmax(-1)
        return confusion(labels, preds, max(self.config.task.num_outputs, 2))

    def monitor(self):
        name = self.config.task.get("monitor", "") or DEFAULT_MONITOR[self.config.task.kind][0]
        return (name, monitor_mode(name))
