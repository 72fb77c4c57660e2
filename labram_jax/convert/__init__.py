"""Import the official LaBraM PyTorch checkpoints: `python -m labram_jax.convert --checkpoint F --out DIR`.

`convert` reads the file safely (`reading`), infers the architecture and maps every tensor (`mapping`), and
only when all of it checks out writes an ordinary checkpoint of this project (`labram_jax.checkpoints`: an
Orbax manager directory with step 0, items `model` and `meta`) plus `DIR/conversion.json`, the account of
every official tensor. The result is what `labram_jax.load` reads, fine-tuning restores (kind `pretrain` or
`finetune`) and pre-training uses as its tokenizer (kind `tokenizer`).

Official -> kind: `labram-base.pth` and any `NeuralTransformerForMEM` state dict (`student.*`, `lm_head.*`,
`projection_head.*`) -> `pretrain`; `labram_<size>_patch200_200` fine-tuned models -> `finetune`;
`vqnsp.pth` -> `tokenizer`.

braindecode's `braindecode.models.Labram` state dicts (told apart by their names: `position_embedding`,
`temporal_embedding`, `patch_embed.temporal_conv.*`, `final_layer.*`) are renamed to the official
fine-tuning layout first (`braindecode_names`) and convert as `finetune`; `--allow_missing` /
`--allow_unexpected` patterns may then name the file's braindecode tensors.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import numpy as np

from labram_jax import checkpoints
from labram_jax.convert import braindecode_names, mapping
from labram_jax.convert.safe_load import (
    ConversionError,
    UnsafeCheckpointError,
    read_state_dict,
    sha256,
)
from labram_jax.models import factory, official_names

__all__ = ["CONVERSION_FILE", "ConversionError", "UnsafeCheckpointError", "convert", "convert_state_dict"]

CONVERSION_FILE = "conversion.json"
REPORT_FORMAT = "labram_jax.conversion/1"


def _check_out_dir(out: str) -> None:
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ConversionError(f"--out {out} already exists and is not an empty directory; choose a new one")


@dataclasses.dataclass
class Converted:
    """The result of mapping a state dict: architecture, the model spec and module it rebuilds, the variables."""

    arch: mapping.Architecture
    spec: dict[str, Any]
    model: nn.Module
    result: mapping.Mapped
    prefix_added: str | None
    layout: str = "official"  # or "braindecode"
    file_names: dict[str, str] = dataclasses.field(default_factory=dict)  # official name -> the file's name
    layout_notes: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # what the renaming dropped


def convert_state_dict(
    tensors: Mapping[str, np.ndarray],
    source: str,
    kind: str = "auto",
    allow_missing: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
) -> Converted:
    """Official-layout or braindecode-layout tensors (names as in the file) -> our variables, in memory;
    `source` names the file in error messages. Raises `ConversionError` listing every unknown, missing or
    mis-shaped tensor."""
    if kind not in ("auto",) + mapping.KINDS:
        raise ConversionError(f"--kind {kind!r} is not one of auto, {', '.join(mapping.KINDS)}")
    if braindecode_names.is_braindecode(tensors, source):
        return _convert_braindecode(tensors, source, kind, allow_missing, allow_unexpected)
    prefix_added = None
    if mapping.add_student_prefix(tensors):
        prefix_added = mapping.STUDENT
        tensors = {prefix_added + name: value for name, value in tensors.items()}
    arch = mapping.infer_architecture({n: tuple(v.shape) for n, v in tensors.items()}, source, kind, allow_unexpected)
    spec = mapping.model_spec(arch)
    model = checkpoints.build_model({"model_spec": spec})
    result = mapping.map_state_dict(tensors, arch, model, source, allow_missing, allow_unexpected)
    return Converted(arch, spec, model, result, prefix_added)


def _convert_braindecode(
    tensors: Mapping[str, np.ndarray],
    source: str,
    kind: str,
    allow_missing: Sequence[str],
    allow_unexpected: Sequence[str],
) -> Converted:
    """A braindecode `Labram` state dict, renamed to the official layout; the user's patterns may name
    either layout, and the report gives them back as written."""
    official, file_names, notes = braindecode_names.to_official(tensors, source)
    patterns = {braindecode_names.official_name(p): p for p in [*allow_missing, *allow_unexpected]}
    try:
        done = convert_state_dict(
            official,
            source,
            kind,
            [braindecode_names.official_name(p) for p in allow_missing],
            [braindecode_names.official_name(p) for p in allow_unexpected],
        )
    except ConversionError as err:
        raise ConversionError(
            f"{err}\n(This file is in braindecode's Labram layout; the names above are their official "
            f"equivalents: {braindecode_names.RENAMES_NOTE}.)"
        ) from err
    result = done.result
    for entry in result.mapped + result.let_go:
        entry["file"] = file_names.get(entry["official"]) or braindecode_names.braindecode_name(entry["official"])
        if "pattern" in entry:
            entry["pattern"] = patterns.get(entry["pattern"], entry["pattern"])
    result.unused_patterns = [patterns.get(p, p) for p in result.unused_patterns]
    return dataclasses.replace(done, layout=braindecode_names.LAYOUT, file_names=file_names, layout_notes=notes)


def convert(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    kind: str = "auto",
    allow_missing: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
) -> dict[str, Any]:
    """Converts an official checkpoint file into a checkpoint directory `out`; returns the report.

    Raises `ConversionError` (and `UnsafeCheckpointError` for files that would run code when unpickled)
    before anything is written.
    """
    out = os.path.abspath(os.path.expanduser(os.fspath(out)))
    _check_out_dir(out)
    state = read_state_dict(checkpoint)
    done = convert_state_dict(state.tensors, state.path, kind, allow_missing, allow_unexpected)
    arch, result = done.arch, done.result

    source = {
        "file": state.path,
        "sha256": sha256(state.path),
        "bytes": os.path.getsize(state.path),
        "format": state.file_format,
        "wrapper": state.wrapper,
        "prefix_removed": state.prefix_removed,
        "prefix_added": done.prefix_added,
        "layout": done.layout,
        "official_architecture": arch.official_model,
    }
    meta = checkpoints.meta_for_spec(done.spec, step=0, source=source)
    step_dir = checkpoints.write_model(out, result.variables, meta)

    report = {
        "format": REPORT_FORMAT,
        "source": source,
        "kind": arch.kind,
        "architecture": arch.summary(),
        "checkpoint": step_dir,
        "parameters": factory.param_count(result.variables),
        "official_parameters": official_names.OFFICIAL_PARAM_COUNTS[arch.official_model],
        "counts": {
            "file_tensors": len(state.tensors),
            "mapped": len(result.mapped),
            "let_go": len(result.let_go),
            "initialised": sum(e["action"] == "initialised" for e in result.let_go),
        },
        "let_go": result.let_go,
        "unused_patterns": result.unused_patterns,
        "layout_notes": done.layout_notes,
        "mapped": [
            {**entry, "dtype": state.dtypes.get(entry.get("file") or _file_name(entry["official"], done.prefix_added))}
            for entry in result.mapped
        ],
    }
    with open(os.path.join(out, CONVERSION_FILE), "w") as f:
        json.dump(report, f, indent=1)
    return report


def _file_name(name: str, prefix_added: str | None) -> str:
    return name[len(prefix_added) :] if prefix_added and name.startswith(prefix_added) else name
