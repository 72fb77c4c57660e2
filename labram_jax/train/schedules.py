"""Per-step schedules exactly as the reference's `utils.cosine_scheduler` (ref. §5.4)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax


def cosine_scheduler(
    base_value: float,
    final_value: float,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    start_warmup_value: float = 0.0,
    warmup_steps: int = -1,
) -> np.ndarray:
    """One value per optimiser step: linear warm-up `linspace(start, base, W)` (first step = start, last
    warm-up step = base), then `final + (base - final) * (1 + cos(pi * i / T)) / 2` for `i = 0 .. T-1`."""
    warmup_iters = warmup_steps if warmup_steps > 0 else warmup_epochs * steps_per_epoch
    total = epochs * steps_per_epoch
    if warmup_iters > total:
        raise ValueError(
            f"{warmup_iters} warm-up steps exceed the {total} steps of the run "
            f"({epochs} epochs x {steps_per_epoch} steps); lower optim.warmup_epochs"
        )
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_iters > 0 else np.zeros(0)
    iters = np.arange(total - warmup_iters)
    cosine = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / max(len(iters), 1)))
    return np.concatenate([warmup, cosine])


def as_optax(values: np.ndarray) -> optax.Schedule:
    """The table as an optax schedule of the update count (held at its last value past the end)."""
    table = jnp.asarray(values, jnp.float32)

    def schedule(count: jnp.ndarray) -> jnp.ndarray:
        return table[jnp.clip(count, 0, table.shape[0] - 1)]

    return schedule
