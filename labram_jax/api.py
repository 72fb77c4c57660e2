"""One loading API for every checkpoint: `labram_jax.load(path)`.

```python
import labram_jax
m = labram_jax.load(path)              # a converted or a trained checkpoint directory
m.logits(eeg_uv, channel_names)        # fine-tuned model: (B, num_outputs)
m.features(eeg_uv, channel_names)      # backbone: (B, C*A, d) patch tokens after fc_norm, channel-major
m.pooled(eeg_uv, channel_names)        # backbone: (B, d) fc_norm of the mean patch token
m.codes(eeg_uv, channel_names)         # tokenizer: (B, C*A) codebook indices, channel-major
m.outputs(eeg_uv, channel_names)       # all of the above this checkpoint offers, from one forward (a dict)
```

Input convention: `eeg_uv` is `(B, C, A*200)` in microvolts at 200 Hz and `channel_names` the C electrode names
(any spelling `labram_jax.channels.channel_ids` accepts). Pass µV; the official model received µV/100 (its
engines divide by 100 before the forward, and our models divide by `layout.INPUT_SCALE` inside); the outputs
are equal.

A `pretrain` checkpoint serves `features`/`pooled` the way fine-tuning uses it (ref. §6.2): the `student`
backbone with a fresh `fc_norm` (unit scale, zero bias), the cls token's spatial embedding from row 0.
Each forward is jitted once per input shape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from labram_jax import channels, checkpoints, layout
from labram_jax.models import factory
from labram_jax.models.neural_transformer import LaBraMClassifier
from labram_jax.models.vqnsp import VQNSP

_METHODS = {
    "logits": ("finetune",),
    "features": ("finetune", "pretrain"),
    "pooled": ("finetune", "pretrain"),
    "codes": ("tokenizer",),
}


class LoadedModel:
    """A restored checkpoint with batch-friendly forwards; see the module docstring for the conventions."""

    def __init__(self, kind: str, meta: dict[str, Any], variables: Any, module: nn.Module):
        self.kind = kind
        self.meta = meta
        self.variables = variables
        self.module = module
        if kind == "pretrain":
            # Fine-tuning's view of a pre-trained model: the student's backbone, a new fc_norm, no head.
            spec = {**meta["model_spec"], "kind": "finetune", "num_outputs": 0}
            self._classifier = checkpoints.build_model({"model_spec": spec})
            width = self._classifier.spec.width
            self._classifier_vars = {
                "params": {
                    "backbone": checkpoints.backbone_params(variables["params"], kind),
                    "fc_norm": {"scale": jnp.ones((width,), jnp.float32), "bias": jnp.zeros((width,), jnp.float32)},
                }
            }
        elif kind == "finetune":
            self._classifier, self._classifier_vars = module, variables
        self._jitted: dict[str, Callable[..., dict[str, jax.Array]]] = {}

    @property
    def max_patches(self) -> int:
        spec = self.module.encoder_spec if isinstance(self.module, VQNSP) else self.module.spec
        return spec.max_patches

    def __repr__(self) -> str:
        return f"LoadedModel(kind={self.kind!r}, step={self.meta.get('step')}, module={type(self.module).__name__})"

    def _batch(self, eeg_uv: Any, channel_names: Sequence[str]) -> tuple[np.ndarray, ...]:
        eeg = np.asarray(eeg_uv, dtype=np.float32)
        if eeg.ndim != 3:
            raise ValueError(
                f"eeg_uv must be (batch, channels, samples) in µV at 200 Hz, got shape {eeg.shape}"
                + ("; add a batch axis: eeg[None]" if eeg.ndim == 2 else "")
            )
        b, c, t = eeg.shape
        if isinstance(channel_names, str) or len(channel_names) != c:
            raise ValueError(
                f"channel_names must name the {c} channels of eeg_uv in order, got "
                f"{channel_names if isinstance(channel_names, str) else len(channel_names)!r}"
            )
        ids = channels.channel_ids(channel_names)
        if t == 0:
            raise ValueError("eeg_uv has no samples; pass at least one second (200 samples at 200 Hz)")
        patches = layout.patchify(eeg)  # checks whole seconds
        a = patches.shape[2]
        if a > self.max_patches:
            raise ValueError(
                f"{a} s of signal ({a} patches per channel) exceed this model's {self.max_patches} patches "
                f"(model.max_patches, {self.max_patches} s): cut the recording into windows of at most "
                f"{self.max_patches * layout.PATCH_SIZE} samples."
            )
        channel_mask, patch_mask = layout.full_masks(b, c, a)
        return patches, np.tile(ids, (b, 1)), channel_mask, patch_mask

    def _run(self, method: str, eeg_uv: Any, channel_names: Sequence[str]) -> np.ndarray:
        if self.kind not in _METHODS[method]:
            usable = [m for m, kinds in _METHODS.items() if self.kind in kinds]
            raise checkpoints.CheckpointError(
                f"`{method}` needs a {' or '.join(_METHODS[method])} checkpoint, but this one is a {self.kind} "
                f"checkpoint ({self.meta.get('source', {}).get('file', 'trained here')}); it offers "
                f"{', '.join(usable)}."
            )
        if method == "logits" and not getattr(self.module, "num_outputs", 0):
            raise checkpoints.CheckpointError(
                "this fine-tuning checkpoint has no task head (num_outputs 0); use "
                "`features`/`pooled`, or fine-tune it on a task first."
            )
        return self.outputs(eeg_uv, channel_names, which=(method,))[method]

    @property
    def available_outputs(self) -> tuple[str, ...]:
        """The outputs this checkpoint offers: `codes` (tokenizer), `features` and `pooled` (backbones), and
        `logits` (a fine-tuned model with a task head)."""
        offered = tuple(m for m, kinds in _METHODS.items() if self.kind in kinds)
        if "logits" in offered and not getattr(self.module, "num_outputs", 0):
            offered = tuple(m for m in offered if m != "logits")
        return offered

    def outputs(
        self, eeg_uv: Any, channel_names: Sequence[str], which: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """`{name: array}` for the outputs in `which` (default: `available_outputs`), from ONE forward.

        Same numbers as the single-output methods; for callers that want e.g. `pooled` and `features` of
        the same windows without running the backbone twice. Jitted once per (`which`, input shape).
        """
        which = tuple(self.available_outputs if which is None else which)
        unknown = [w for w in which if w not in self.available_outputs]
        if unknown or not which:
            raise checkpoints.CheckpointError(
                f"outputs {unknown or list(which)} are not offered by this {self.kind} checkpoint; it offers "
                f"{', '.join(self.available_outputs)}."
            )
        args = self._batch(eeg_uv, channel_names)
        key = "outputs:" + ",".join(which)
        if key not in self._jitted:
            self._jitted[key] = jax.jit(self._outputs_forward(which))
        variables = self.variables if self.kind == "tokenizer" else self._classifier_vars
        out = {k: np.asarray(v) for k, v in self._jitted[key](variables, *args).items()}
        return {k: v if k == "codes" else v.astype(np.float32) for k, v in out.items()}

    def _outputs_forward(self, which: tuple[str, ...]) -> Callable[..., dict[str, jax.Array]]:
        if self.kind == "tokenizer":
            return lambda v, *args: {"codes": self.module.apply(v, *args, method=VQNSP.get_codebook_indices)}

        def forward(v: Any, *args: Any) -> dict[str, jax.Array]:
            # Unrequested outputs are dropped before jit returns, so XLA does not compute them.
            out = self._classifier.apply(v, *args, method=LaBraMClassifier.outputs)
            return {k: out[k] for k in which}

        return forward

    def logits(self, eeg_uv: Any, channel_names: Sequence[str]) -> np.ndarray:
        """Task-head outputs `(B, num_outputs)` of a fine-tuned model (logits, or regression values)."""
        return self._run("logits", eeg_uv, channel_names)

    def features(self, eeg_uv: Any, channel_names: Sequence[str]) -> np.ndarray:
        """Patch tokens after `fc_norm`, `(B, C*A, d)`, channel-major (token `c*A + a`)."""
        return self._run("features", eeg_uv, channel_names)

    def pooled(self, eeg_uv: Any, channel_names: Sequence[str]) -> np.ndarray:
        """`fc_norm` of the mean patch token, `(B, d)`: the input of a fine-tuning head."""
        return self._run("pooled", eeg_uv, channel_names)

    def codes(self, eeg_uv: Any, channel_names: Sequence[str]) -> np.ndarray:
        """VQ-NSP codebook indices `(B, C*A)`, channel-major: the pre-training targets."""
        return self._run("codes", eeg_uv, channel_names)


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """A checkpoint directory (converted official weights, a stage workdir, a manager or a step directory)."""
    where = checkpoints.locate(path)
    module = checkpoints.build_model(where.meta)
    abstract = nn.meta.unbox(factory.abstract_variables(module))
    variables, meta = checkpoints.restore_model(where, abstract)
    return LoadedModel(meta["kind"], meta, variables, module)
