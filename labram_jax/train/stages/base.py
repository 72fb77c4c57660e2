"""What every stage supplies to the one training loop (`labram_jax.train.loop`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from labram_jax import layout
from labram_jax.models import factory
from labram_jax.train import optimizer
from labram_jax.train.stages import validation


class Stage:
    """A training stage: its model, loss, evaluation and what it restores before training.

    Subclasses set `kind` (the checkpoint kind they write) and implement `loss_fn`, `eval_fn` and
    `summarize`. All array functions are traced inside `jax.jit`; `frozen` is the stage's constant input
    (the tokenizer's variables during pre-training, else None).
    """

    kind: str = ""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.model = self.build_model()

    @classmethod
    def validate(cls, config: ml_collections.ConfigDict) -> None:
        """Raises a ConfigError naming the first field this stage reads that is missing or unusable."""
        validation.validate_runtime(config)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Stage:
        """The stage with everything it needs that the config names (e.g. a frozen tokenizer's module)."""
        return cls(config)

    # -- model -------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def example_batch(self) -> dict[str, np.ndarray]:
        data = self.config.data
        return factory.example_batch(1, data.max_channels, data.max_patches)

    def init_variables(self, rng: jax.Array) -> Any:
        """Boxed (logically partitioned) variables of a fresh model."""
        return factory.init_fn(self.model, self.example_batch())(rng)

    def layer_decay_depth(self) -> int | None:
        """The backbone depth for layer-wise lr decay, or None when the stage has none."""
        return None

    def is_frozen(self, path: tuple[str, ...]) -> bool:
        """True for a parameter (by its key path) that the optimiser never changes."""
        return optimizer.is_frozen(path)

    # -- what is loaded before training ------------------------------------------------------------
    def check_ready(self) -> None:
        """Raises a config error (before anything compiles) when an input the stage needs is missing."""

    def load_frozen(self, mesh: Any, rules: Any) -> Any:
        """The stage's constant input, placed on `mesh` (None when there is none)."""
        return None

    def restore_pretrained(self, params: Any, mesh: Any, rules: Any) -> tuple[Any, str | None]:
        """Fresh `params` with pre-trained parts swapped in, and a description of what was loaded."""
        return params, None

    # -- step and evaluation ------------------------------------------------------------------------
    def loss_fn(self, params: Any, extra: Any, batch: dict, rng: jax.Array, frozen: Any):
        raise NotImplementedError

    def eval_fn(
        self, params: Any, extra: Any, batch: dict, frozen: Any
    ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """`(per-example outputs (B, ...), sums over the batch's valid examples)` of one eval batch."""
        raise NotImplementedError

    def summarize(self, per_example: dict[str, np.ndarray], sums: dict[str, np.ndarray]) -> dict[str, Any]:
        """Split-level metrics from everything `eval_fn` returned over a split (padding removed)."""
        raise NotImplementedError

    def confusion_matrix(self, per_example: dict[str, np.ndarray]) -> np.ndarray | None:
        """The confusion matrix of a split's outputs, for stages that classify (else None)."""
        return None

    def monitor(self) -> tuple[str, str] | None:
        """`(validation metric, "max" | "min")` that selects the best checkpoint, or None."""
        return None


def model_inputs(batch: dict) -> tuple:
    return (batch[layout.EEG], batch[layout.CHANNEL_IDS], batch[layout.CHANNEL_MASK], batch[layout.PATCH_MASK])


def eval_inputs(batch: dict) -> tuple:
    """Model inputs with the padding examples of an eval batch masked out entirely (no channel is real),
    so token-level means over the batch count only real examples."""
    valid = batch["valid"]
    return (
        batch[layout.EEG],
        batch[layout.CHANNEL_IDS],
        batch[layout.CHANNEL_MASK] & valid[:, None],
        batch[layout.PATCH_MASK],
    )
