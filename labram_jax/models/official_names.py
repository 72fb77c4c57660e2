"""The map between the official PyTorch state dicts and our Flax variables (used by checkpoint import).

Every official tensor name maps to exactly one variable `(collection, path)` and a layout change:

| kind     | official layout             | ours                                   |
|----------|-----------------------------|----------------------------------------|
| `linear` | Linear weight `[out, in]`   | kernel `in x out`, reshaped (qkv `(d, 3, H, hd)`, proj `(H, hd, d)`) |
| `conv`   | Conv2d weight `[out, in, 1, kw]` | 1-D conv kernel `(kw, in, out)`; a 1x1 conv becomes a Dense `(in, out)` |
| `reshape`| anything else               | same values, leading singleton axes dropped or split into heads |

`to_flax` / `to_official` apply a kind in either direction. Official names, shapes and counts are in
`official_state_dict_shapes.json` beside this file (every tensor of the seven official models, read from
the official PyTorch code).
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

Kind = Literal["linear", "conv", "reshape"]

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    "labram_base_patch200_200": 5_821_142,
    "labram_large_patch200_200": 46_261_126,
    "labram_huge_patch200_200": 369_240_518,
    "labram_base_patch200_1600_8k_vocab": 9_153_520,
    "labram_large_patch200_1600_8k_vocab": 52_989_504,
    "labram_huge_patch200_1600_8k_vocab": 383_000_896,
    "vqnsp_encoder_base_decoder_3x200x12": 8_579_408,
}


OFFICIAL_SHAPES_FILE = pathlib.Path(__file__).with_name("official_state_dict_shapes.json")


@functools.cache
def official_state_dicts() -> dict[str, dict]:
    """`{model name: {"params": count, "state_dict": {tensor name: shape}}}` of the official models."""
    return json.loads(OFFICIAL_SHAPES_FILE.read_text())


class Target(NamedTuple):
    """Where an official tensor lives here and how its layout changes."""

    collection: str
    path: tuple[str, ...]
    kind: Kind


_BACKBONE_ROOTS = ("cls_token", "pos_embed", "time_embed", "patch_embed", "blocks")
_NORMS = re.compile(r"^(norm\d?|fc_norm|q_norm|k_norm)$")
_CONVS = re.compile(r"^(conv\d|proj)$")
_QUANTIZER = {
    "quantize.embedding.weight": "codebook",
    "quantize.embedding.cluster_size": "ema_cluster_size",
    "quantize.embedding.embed_avg": "ema_embed_avg",
    "quantize.embedding.initted": "initted",
    "quantize.cluster_size": "usage",
}
_TASK_LAYERS = {"0": "dense_in", "2": "dense_out"}


def _module_path(parts: Sequence[str]) -> list[str]:
    """Official dotted module path -> our module names (`blocks.3` -> `blocks_3`)."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "blocks":
            out.append(f"blocks_{parts[i + 1]}")
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def _leaf(modules: list[str], attr: str, in_patch_embed: bool) -> tuple[list[str], Kind]:
    """Official parameter attribute -> our leaf name and layout kind."""
    owner = modules[-1] if modules else ""
    if attr == "weight":
        if _NORMS.match(owner):
            return modules + ["scale"], "reshape"
        if in_patch_embed and _CONVS.match(owner):
            return modules + ["kernel"], "conv"
        return modules + ["kernel"], "linear"
    if attr == "bias":
        return modules + ["bias"], "reshape"
    return modules + [attr], "reshape"  # cls_token, q_bias, gamma_1, ...


def translate(name: str) -> Target:
    """The variable of an official state-dict key (fine-tuning, pre-training or tokenizer model)."""
    if name in _QUANTIZER:
        return Target("quantizer", ("quantize", _QUANTIZER[name]), "reshape")
    parts = name.split(".")
    scope: list[str] = []
    if parts[0] in ("student", "encoder", "decoder"):
        scope, parts = [parts[0]], parts[1:]
    if parts[0] in ("encode_task_layer", "decode_task_layer", "decode_task_layer_angle"):
        path, kind = _leaf([parts[0], _TASK_LAYERS[parts[1]]], parts[2], False)
        return Target("params", tuple(path), kind)
    if parts[0] == "projection_head":  # nn.Sequential(Linear) in the reference
        parts = [parts[0]] + parts[2:]
    if parts[0] in _BACKBONE_ROOTS:
        scope = scope + ["backbone"]
    modules, attr = _module_path(parts[:-1]), parts[-1]
    path, kind = _leaf(modules, attr, in_patch_embed=bool(modules) and modules[0] == "patch_embed")
    return Target("params", tuple(scope + path), kind)


def to_flax(value: np.ndarray, kind: Kind, target_shape: Sequence[int]) -> np.ndarray:
    """Official tensor -> our layout, with `target_shape` the variable's shape here."""
    value = np.asarray(value)
    if kind == "linear":
        return value.T.reshape(target_shape)
    if kind == "conv":
        out_ch, in_ch, _, width = value.shape
        return value.reshape(out_ch, in_ch, width).transpose(2, 1, 0).reshape(target_shape)
    return value.reshape(target_shape)


def to_official(value: np.ndarray, kind: Kind, official_shape: Sequence[int]) -> np.ndarray:
    """Our variable -> the official tensor of `official_shape` (inverse of `to_flax`)."""
    value = np.asarray(value)
    if kind == "linear":
        out_features, in_features = official_shape
        return value.reshape(in_features, out_features).T
    if kind == "conv":
        out_ch, in_ch, _, width = official_shape
        return value.reshape(width, in_ch, out_ch).transpose(2, 1, 0).reshape(official_shape)
    return value.reshape(official_shape)
