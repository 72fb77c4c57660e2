"""The one place that defines how EEG batches are laid out.

A batch is a dict of arrays:

| key            | shape           | dtype   | meaning                                                              |
|----------------|-----------------|---------|----------------------------------------------------------------------|
| `eeg`          | `(B, C, A, P)`  | float32 | signal in microvolts; C channels, A patches of P = 200 samples (1 s)  |
| `channel_ids`  | `(B, C)`        | int32   | rows of the spatial embedding (`labram_jax.channels.channel_id`)     |
| `channel_mask` | `(B, C)`        | bool    | True for real channels, False for padding                            |
| `patch_mask`   | `(B, A)`        | bool    | True for real 1-s patches, False for padding                         |
| `label`        | `(B,)`          | int32 / float32 | task target (fine-tuning only)                               |

Padding always sits after the real channels and patches. Models flatten channels x patches into
`N = C * A` tokens in channel-major order (token `c * A + a`), as the official code does; a token is real
when both its channel and its patch are real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: the layout's constants stay importable without jax (CLI --help)
    import jax.numpy as jnp

PATCH_SIZE: int = 200
"""Samples per patch: one second at the model's 200 Hz."""

SAMPLING_RATE: float = 200.0
"""The model's sampling rate; every recording is resampled to it (`labram_jax.data.preprocess`)."""

INPUT_SCALE: float = 100.0
"""The official engines divide microvolts by 100 (unit 0.1 mV) before the model; our models do it inside."""

EEG, CHANNEL_IDS, CHANNEL_MASK, PATCH_MASK, LABEL = "eeg", "channel_ids", "channel_mask", "patch_mask", "label"


def token_mask(channel_mask: jnp.ndarray, patch_mask: jnp.ndarray) -> jnp.ndarray:
    """`(B, C) x (B, A) -> (B, C * A)` validity of every token, channel-major."""
    valid = channel_mask[:, :, None] & patch_mask[:, None, :]
    return valid.reshape(valid.shape[0], -1)


def full_masks(batch_size: int, num_channels: int, num_patches: int) -> tuple[np.ndarray, np.ndarray]:
    """Channel and patch masks of an unpadded batch."""
    return (np.ones((batch_size, num_channels), bool), np.ones((batch_size, num_patches), bool))


def patchify(signal: np.ndarray, patch_size: int = PATCH_SIZE) -> np.ndarray:
    """`(..., C, T) -> (..., C, T // P, P)`; T must be a whole number of patches."""
    length = signal.shape[-1]
    if length % patch_size:
        raise ValueError(
            f"signal length {length} samples is not a multiple of the {patch_size}-sample patch "
            f"({length / patch_size:.2f} s at 200 Hz); crop or pad it to whole seconds."
        )
    return signal.reshape(*signal.shape[:-1], length // patch_size, patch_size)
