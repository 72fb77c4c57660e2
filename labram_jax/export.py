"""Back to PyTorch: a checkpoint of ours in the official state-dict layout.

    python -m labram_jax.export --checkpoint DIR --out FILE.pth|FILE.safetensors

Every variable goes to its official tensor name with the official layout (the inverse of the import map,
`labram_jax.models.official_names`): fine-tuned models as `labram_<size>_patch200_200`, pre-training
checkpoints with their `student.` / `lm_head.` / `projection_head.` keys, tokenizers with their quantiser
buffers. The official model classes load the file with `load_state_dict(..., strict=True)` when built with
the same architecture (for resized models: the same width, depth, heads and codebook). A JSON summary
(`FILE.json`) lists the official model name, the architecture and what was left out: our own quantiser
state for the collapse remedies (`restart_usage`, `restarts`, `train_steps`), which the official quantiser
does not have. `.pth` files hold the plain state dict (`torch.save(state_dict)`); `.safetensors` the same
tensors. Importing the file again (`python -m labram_jax.convert`) gives back every variable bit for bit.

braindecode's `Labram` layout is not written yet (issue 17).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT = "labram_jax.export/1"
OURS_ONLY = ("restart_usage", "restarts", "train_steps")
"""Quantiser state of our collapse remedies: no official tensor holds it."""

_BLOCK_NAME = re.compile(r"\.blocks\.(\d+)\.|^blocks\.(\d+)\.")
_BLOCK_KEY = re.compile(r"^blocks_(\d+)$")


class ExportError(ValueError):
    """A checkpoint that cannot be written in the official layout; the message names the variable."""


def official_model(spec: Mapping[str, Any]) -> str:
    """The official model name of a checkpoint's model spec."""
    if spec["kind"] == "tokenizer":
        return "vqnsp_encoder_base_decoder_3x200x12"
    size = spec["transformer"]["size"]
    return f"labram_{size}_patch200_200" if spec["kind"] == "finetune" else f"labram_{size}_patch200_1600_8k_vocab"


def _key_pattern(key: tuple[str, ...]) -> tuple[tuple[str, ...], int | None]:
    """A variable key with its block index taken out: (`(..., "blocks_*", ...)`, index)."""
    out, index = [], None
    for part in key:
        match = _BLOCK_KEY.match(part)
        if match:
            out.append("blocks_*")
            index = int(match.group(1))
        else:
            out.append(part)
    return tuple(out), index


def _name_templates(model: str) -> dict[tuple[str, ...], tuple[str, str]]:
    """`{variable key pattern: (official name template, layout kind)}` from the official model's names."""
    from labram_jax.models import official_names

    templates = {}
    for name in official_names.official_state_dicts()[model]["state_dict"]:
        target = official_names.translate(name)
        pattern, _ = _key_pattern((target.collection, *target.path))
        templates[pattern] = (_BLOCK_NAME.sub(lambda m: m.group(0).replace(m.group(1) or m.group(2), "{}"), name),
                              target.kind)  # fmt: skip
    return templates


def export_state_dict(variables: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list]:
    """`(official state dict, the variables left out)` of a model's variables."""
    from labram_jax.convert.mapping import flat_variables, official_shape
    from labram_jax.models import official_names

    templates = _name_templates(official_model(spec))
    state, left_out = {}, []
    for key, value in flat_variables(variables).items():
        if key[0] == "quantizer" and key[-1] in OURS_ONLY:
            left_out.append("/".join(key))
            continue
        pattern, index = _key_pattern(key)
        if pattern not in templates:
            raise ExportError(f"variable {'/'.join(key)} has no tensor in the official {official_model(spec)} layout")
        template, kind = templates[pattern]
        name = template.format(index) if index is not None else template
        value = np.asarray(value)
        if value.dtype == bool:  # the quantiser's `initted` flag: a float buffer there
            value = value.astype(np.float32)
        state[name] = official_names.to_official(value, kind, official_shape(name, value.shape, kind))
    return state, left_out


def export(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Writes `out` (.pth or .safetensors) and `out`'s `.json` summary; returns the summary."""
    import labram_jax

    out = os.fspath(out)
    suffix = os.path.splitext(out)[1]
    if suffix not in (".pth", ".safetensors"):
        raise ExportError(f"--out {out}: the file name must end in .pth or .safetensors")
    model = labram_jax.load(checkpoint)
    spec = model.meta["model_spec"]
    state, left_out = export_state_dict(model.variables, spec)
    _write(state, out, suffix)
    summary = {
        "format": FORMAT,
        "checkpoint": os.path.abspath(os.fspath(checkpoint)),
        "step": model.meta.get("step"),
        "official_model": official_model(spec),
        "model_spec": spec,
        "tensors": len(state),
        "parameters": int(sum(v.size for v in state.values())),
        "left_out": left_out,
        "file": os.path.abspath(out),
    }
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _write(state: Mapping[str, np.ndarray], out: str, suffix: str) -> None:
    try:
        import torch
    except ImportError as e:
        raise ExportError("writing PyTorch files needs torch: pip install -e '.[torch]'") from e
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if suffix == ".pth":
        torch.save(tensors, out)
    else:
        from safetensors.torch import save_file

        save_file(tensors, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labram_jax.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint directory (workdir, manager or step)")
    parser.add_argument("--out", required=True, help="FILE.pth or FILE.safetensors (a FILE.json summary beside)")
    args = parser.parse_args(argv)
    from labram_jax.checkpoints import CheckpointError

    try:
        summary = export(args.checkpoint, args.out)
    except (ExportError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    left = f"; left out (ours only): {', '.join(summary['left_out'])}" if summary["left_out"] else ""
    print(f"wrote {summary['file']}: {summary['tensors']} tensors, {summary['parameters']:,} values in the "
          f"official {summary['official_model']} layout{left}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
