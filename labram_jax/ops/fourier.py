"""The VQ-NSP reconstruction targets: per-patch Fourier amplitude and phase, z-scored per sample (ref. §4.4)."""

from __future__ import annotations

import jax.numpy as jnp

from labram_jax.ops.masked_stats import masked_mean_var


def fourier_spectrum(patches: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Amplitude and phase of the full (not real-input) DFT of every patch, no normalisation.

    `(..., P) -> (..., P), (..., P)`; all P bins are kept as the official code does (the upper half mirrors
    the lower one); the phase lies in (-pi, pi] like `torch.angle`.
    """
    spectrum = jnp.fft.fft(patches.astype(jnp.float32), axis=-1)
    return jnp.abs(spectrum), jnp.angle(spectrum)


def zscore_per_sample(values: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
    """Z-scores `(B, N, P)` per sample over its real tokens and all bins, with the unbiased std, no epsilon.

    No epsilon, as the reference: a flat sample gives NaN there and here; the data builders reject flat
    windows before they can reach this. Padded tokens are excluded from the statistics and returned as 0.
    """
    mask = token_mask[:, :, None]
    mean, var = masked_mean_var(values, mask, axis=(1, 2), ddof=1)
    return jnp.where(mask, (values - mean) / jnp.sqrt(var), 0.0)


def fourier_targets(eeg: jnp.ndarray, token_mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """`(B, C, A, P)` EEG -> z-scored amplitude and phase targets `(B, C*A, P)`, channel-major tokens."""
    b, c, a, p = eeg.shape
    amplitude, phase = fourier_spectrum(eeg.reshape(b, c * a, p))
    return zscore_per_sample(amplitude, token_mask), zscore_per_sample(phase, token_mask)
