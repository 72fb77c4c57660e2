"""labram-jax: LaBraM, the Large Brain Model for EEG, in JAX/Flax.

`labram_jax.load(path)` restores any checkpoint (converted official weights or trained here); see
`labram_jax.api`. It is imported on first use so that `import labram_jax` stays light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from labram_jax.api import load

        return load
    raise AttributeError(f"module 'labram_jax' has no attribute {name!r}")
