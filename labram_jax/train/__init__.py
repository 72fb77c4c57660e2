"""Training: one loop, per-stage steps, optimiser, sharding, checkpoints, metrics."""
