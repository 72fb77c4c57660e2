"""braindecode's `Labram` state-dict layout as renames of the official fine-tuning layout (export and import).

`braindecode.models.Labram` (read from braindecode 1.8.1, built with `use_mean_pooling=True`,
`neural_tokenizer=True`, `learned_patcher=False`) holds exactly the tensors of the official
`labram_<size>_patch200_200` model, under other names and with one difference in shape:

* `pos_embed` (1, 129, d) -> `position_embedding`: the same rows (cls, then the 128 electrodes in the
  official `standard_1020` order, which is braindecode's `LABRAM_CHANNEL_ORDER`);
* `time_embed` (1, 16, d) -> `temporal_embedding` (1, A + 1, d), A = n_times / 200: rows 0..A-1 are the
  first A rows of `time_embed`, row A is never read by braindecode's forward;
* `patch_embed.{conv,norm}{1,2,3}.*` -> `patch_embed.temporal_conv.{conv,norm}{1,2,3}.*`;
* `blocks.i.mlp.fc1.*` / `blocks.i.mlp.fc2.*` -> `blocks.i.mlp.0.*` / `blocks.i.mlp.2.*`;
* `head.*` -> `final_layer.*` (absent when `n_outputs=0`).

Everything else (`cls_token`, `blocks.i.{norm1,norm2,gamma_1,gamma_2,attn.*}`, `fc_norm.*`) keeps its
official name and layout. braindecode fixes the number of patches A at construction (`n_times`) and its
forward accepts only that length, so the temporal rows follow `n_times`, not the checkpoint's `max_patches`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from labram_jax.convert.safe_load import ConversionError

LAYOUT = "braindecode"
CLASS = "braindecode.models.Labram"
READ_FROM = "braindecode 1.8.1"
PATCH_SIZE = 200
SFREQ = 200.0
NUM_CHANNELS = 128
"""braindecode's `LABRAM_CHANNEL_ORDER`: the 128 electrodes of the official `pos_embed`, in its row order."""

# (official, braindecode) regular expressions of the renames; each side names only its own layout.
_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^pos_embed$", "position_embedding"),
    (r"^time_embed$", "temporal_embedding"),
    (r"^patch_embed\.", "patch_embed.temporal_conv."),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.2."),
    (r"^head\.", "final_layer."),
)
_TO_BRAINDECODE = [(re.compile(o), b) for o, b in _RENAMES]
_TO_OFFICIAL = [
    (re.compile(r"^position_embedding$"), "pos_embed"),
    (re.compile(r"^temporal_embedding$"), "time_embed"),
    (re.compile(r"^patch_embed\.temporal_conv\."), "patch_embed."),
    (re.compile(r"\.mlp\.0\."), ".mlp.fc1."),
    (re.compile(r"\.mlp\.2\."), ".mlp.fc2."),
    (re.compile(r"^final_layer\."), "head."),
]
_BRAINDECODE_ONLY = re.compile(r"^(position_embedding|temporal_embedding|patch_embed\.temporal_conv\.|final_layer\.)")
_OFFICIAL_ONLY = re.compile(r"^(pos_embed|time_embed|patch_embed\.conv|head\.)|\.mlp\.fc[12]\.")


def _rename(name: str, rules: list[tuple[re.Pattern, str]]) -> str:
    for pattern, replacement in rules:
        name = pattern.sub(replacement, name)
    return name


def braindecode_name(official: str) -> str:
    """The braindecode name of an official fine-tuning tensor name."""
    return _rename(official, _TO_BRAINDECODE)


def official_name(name: str) -> str:
    """The official name of a braindecode tensor name (also turns shell patterns such as `final_layer.*`
    into their official form; official names and patterns come back unchanged)."""
    return _rename(name, _TO_OFFICIAL)


RENAMES_NOTE = (
    "position_embedding = pos_embed, temporal_embedding = time_embed (less its unused last row), "
    "patch_embed.temporal_conv.* = patch_embed.*, blocks.*.mlp.0/2 = blocks.*.mlp.fc1/fc2, final_layer.* = head.*"
)


def is_braindecode(names: Iterable[str], path: str = "the state dict") -> bool:
    """True when tensor names are braindecode's (`position_embedding`, `final_layer.*`, ...); raises
    `ConversionError` for a state dict that mixes both layouts."""
    names = list(names)
    theirs = [n for n in names if _BRAINDECODE_ONLY.search(n)]
    ours = [n for n in names if _OFFICIAL_ONLY.search(n)]
    if theirs and ours:
        raise ConversionError(
            f"{path}: mixes the official LaBraM names ({', '.join(ours[:3])}) with braindecode Labram "
            f"names ({', '.join(theirs[:3])}); it must be one or the other"
        )
    return bool(theirs)


def to_braindecode(state: Mapping[str, np.ndarray], num_patches: int) -> dict[str, np.ndarray]:
    """An official fine-tuning state dict -> braindecode's, for a model built with `n_times = 200 *
    num_patches`: `temporal_embedding` holds `time_embed`'s first `num_patches` rows and a zero row that
    braindecode's forward never reads."""
    out = {}
    for name, value in state.items():
        if name == "time_embed":
            value = np.concatenate([value[:, :num_patches], np.zeros_like(value[:, :1])], axis=1)
        out[braindecode_name(name)] = value
    return out


def to_official(state: Mapping[str, np.ndarray], path: str) -> tuple[dict[str, np.ndarray], dict[str, str], list]:
    """A braindecode `Labram` state dict -> `(official state dict, {official name: file name}, notes)`;
    the notes list what was dropped. Raises `ConversionError` for configurations our model does not have."""
    names = list(state)
    if "norm.weight" in names and "fc_norm.weight" not in names:
        raise ConversionError(
            f"{path}: a braindecode Labram built with use_mean_pooling=False (a final `norm` and the cls "
            "token as the pooled feature); the LaBraM fine-tuning model here (and the official one) mean-pools "
            "the patch tokens through `fc_norm`. Only use_mean_pooling=True models convert."
        )
    other = [n for n in names if n.startswith("patch_embed.segment_patch.") or "relative_position" in n]
    if other:
        raise ConversionError(
            f"{path}: a braindecode Labram with a learned patcher or in decoder mode (learned_patcher=True or "
            f"neural_tokenizer=False: {', '.join(other[:3])}); only the temporal-conv model "
            "(neural_tokenizer=True, learned_patcher=False), the official architecture, converts."
        )
    out, file_names, notes = {}, {}, []
    for name, value in state.items():
        official = official_name(name)
        if name == "temporal_embedding" and value.ndim == 3 and value.shape[1] >= 2:
            rows = value.shape[1] - 1
            notes.append(
                {
                    "braindecode": name,
                    "shape": list(value.shape),
                    "action": f"row {rows} dropped (braindecode's forward reads rows 0..{rows - 1} only); "
                    f"time_embed keeps {rows} rows: windows of up to {rows} s",
                }
            )
            value = value[:, :rows]
        out[official] = value
        file_names[official] = name
    return out, file_names, notes


def constructor_kwargs(spec: Any, num_outputs: int, num_patches: int) -> dict[str, Any]:
    """`Labram(**kwargs)` arguments that rebuild a `TransformerSpec` with `num_outputs` outputs for windows
    of `num_patches` seconds. `qk_norm` is left at braindecode's default (`nn.LayerNorm`) when the model
    has qk-norm, and None when it has not; the rest is stated, so that no other default matters."""
    kwargs: dict[str, Any] = {
        "n_chans": NUM_CHANNELS,
        "n_times": num_patches * PATCH_SIZE,
        "n_outputs": int(num_outputs),
        "sfreq": SFREQ,
        "patch_size": PATCH_SIZE,
        "learned_patcher": False,
        "neural_tokenizer": True,
        "embed_dim": spec.width,
        "conv_out_channels": spec.conv_channels,
        "num_layers": spec.depth,
        "num_heads": spec.num_heads,
        "mlp_ratio": float(spec.mlp_ratio),
        "qkv_bias": bool(spec.qkv_bias),
        "init_values": float(spec.layer_scale_init),
        "use_abs_pos_emb": True,
        "use_mean_pooling": True,
        "drop_prob": float(spec.drop_rate),
        "attn_drop_prob": float(spec.attn_drop_rate),
        "drop_path_prob": float(spec.drop_path_rate),
    }
    if not spec.qk_norm:
        kwargs["qk_norm"] = None
    return kwargs
