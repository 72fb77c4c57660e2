"""labram-jax: LaBraM, the Large Brain Model for EEG, in JAX/Flax."""

__version__ = "0.1.0"
