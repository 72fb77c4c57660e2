"""Synthetic official checkpoints: exactly the official tensor names and shapes (from the shapes file), with
values chosen per test, saved the way the official scripts save them."""

from __future__ import annotations

import numpy as np

from labram_jax.models import official_names

FINETUNE_BASE = "labram_base_patch200_200"
PRETRAIN_BASE = "labram_base_patch200_1600_8k_vocab"
TOKENIZER = "vqnsp_encoder_base_decoder_3x200x12"
ALL_MODELS = sorted(official_names.OFFICIAL_PARAM_COUNTS)


def shapes(model: str, num_outputs: int | None = None) -> dict[str, tuple[int, ...]]:
    out = {name: tuple(shape) for name, shape in official_names.official_state_dicts()[model]["state_dict"].items()}
    if num_outputs is not None:  # the shapes file holds the 6-class TUEV head
        out["head.weight"] = (num_outputs, out["head.weight"][1])
        out["head.bias"] = (num_outputs,)
    return out


def pattern_state_dict(model: str) -> dict[str, np.ndarray]:
    """Tensor i holds `4096 * i + (element index mod 4093)`: every value says which tensor and which element
    it came from (exact in float32: below 2**24 for the 840 tensors of the largest model)."""
    out = {}
    for i, (name, shape) in enumerate(shapes(model).items()):
        if name.endswith("initted"):
            out[name] = np.ones(shape, np.float32)
            continue
        n = int(np.prod(shape))
        value = np.tile(np.arange(4093, dtype=np.float32), -(-n // 4093))[:n]  # element index mod 4093
        value += 4096 * i
        out[name] = value.reshape(shape)
    return out


def random_state_dict(model: str, seed: int = 0, num_outputs: int | None = None) -> dict[str, np.ndarray]:
    """Random weights of plausible scale (so that a 12-block forward stays well conditioned)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes(model, num_outputs).items():
        leaf = name.rsplit(".", 1)[-1]
        owner = name.rsplit(".", 2)[-2] if "." in name else ""
        normal = rng.standard_normal(shape)
        if name.endswith("initted"):
            value = np.ones(shape)
        elif name == "quantize.embedding.weight":
            value = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
        elif "cluster_size" in name:
            value = rng.uniform(0.0, 5.0, shape)
        elif leaf.startswith("gamma"):
            value = 0.1 + 0.02 * normal
        elif leaf == "weight" and ("norm" in owner):
            value = 1.0 + 0.1 * normal
        elif leaf == "weight" and len(shape) == 4:  # convs: PyTorch-default scale 1/sqrt(fan_in)
            value = normal / np.sqrt(np.prod(shape[1:]))
        elif leaf == "weight":
            value = normal / np.sqrt(shape[1])
        else:  # biases, embeddings, cls/mask tokens
            value = 0.1 * normal
        out[name] = value.astype(np.float32)
    return out


def save_pth(tensors: dict[str, np.ndarray], path, wrapper: str | None = "model", **extra) -> None:
    """`torch.save` as the official scripts do: `{'model': state_dict, ...}` (or the bare state dict)."""
    import torch

    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in tensors.items()}
    torch.save({wrapper: state, **extra} if wrapper else state, str(path))


def as_float64(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in tensors.items()}
