"""Back to PyTorch: a checkpoint of ours in the official or braindecode state-dict layout.

    python -m labram_jax.export --checkpoint DIR --out FILE.pth|FILE.safetensors [--format official|braindecode]

`--format official` (default): every variable goes to its official tensor name with the official layout
(the inverse of the import map, `labram_jax.models.official_names`): fine-tuned models as
`labram_<size>_patch200_200`, pre-training checkpoints with their `student.` / `lm_head.` /
`projection_head.` keys, tokenizers with their quantiser buffers. The official model classes load the file
with `load_state_dict(..., strict=True)` when built with the same architecture (for resized models: the
same width, depth, heads and codebook). Our own quantiser state for the collapse remedies
(`restart_usage`, `restarts`, `train_steps`, `offset_initted`), which the official quantiser does not have,
is left out; the Fourier heads' mean-target offsets (`tokenizer.mean_target_offset`) are added to the heads'
output biases, which gives the official model the same outputs.

`--format braindecode`: a fine-tuned (classifier) checkpoint in the layout of braindecode's
`braindecode.models.Labram` (`labram_jax.convert.braindecode_names`: the official tensors renamed, and the
temporal embedding cut to braindecode's fixed window). braindecode fixes the window at construction
(`n_times`) and accepts no other length: `--seconds N` (default: the checkpoint's `max_patches`) chooses
it, and time rows beyond it are left out. Pre-training and tokenizer checkpoints have no braindecode
counterpart and raise `ExportError`. The summary's `braindecode.kwargs` build the model:
`Labram(**kwargs).load_state_dict(sd, strict=True)`; it takes EEG in µV / 100 and the channel names,
`model(x_uv / 100, ch_names=names)`, and gives our model's outputs.

Both write a JSON summary (`FILE.json`): the layout, the official model name, the architecture, the tensor
count and what was left out. `.pth` files hold the plain state dict (`torch.save(state_dict)`);
`.safetensors` the same tensors. Importing the file again (`python -m labram_jax.convert`, which tells the
two layouts apart by their names) gives back every variable bit for bit.
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
LAYOUTS = ("official", "braindecode")
OURS_ONLY = ("restart_usage", "restarts", "train_steps", "offset_initted")
"""Quantiser state of our collapse remedies: no official tensor holds it."""

_BLOCK_NAME = re.compile(r"\.blocks\.(\d+)\.|^blocks\.(\d+)\.")
_BLOCK_KEY = re.compile(r"^blocks_(\d+)$")


class ExportError(ValueError):
    """A checkpoint that cannot be written in the requested layout; the message names what and why."""


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
    for key, value in fold_head_offsets(flat_variables(variables)).items():
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


def fold_head_offsets(flat: Mapping[tuple[str, ...], Any]) -> dict[tuple[str, ...], Any]:
    """Flat variables with each Fourier head's mean-target offset added to its output bias (and the offset
    removed): `dense_out(h) + offset == dense_out'(h)` with bias' = bias + offset, exactly the same outputs."""
    from labram_jax.models.vqnsp import TARGET_OFFSETS

    out = dict(flat)
    for name, head in TARGET_OFFSETS.items():
        offset = out.pop(("quantizer", name), None)
        if offset is not None:
            bias = ("params", head, "dense_out", "bias")
            out[bias] = np.asarray(out[bias], np.float32) + np.asarray(offset, np.float32)
    return out


def braindecode_state_dict(
    state: Mapping[str, np.ndarray], spec: Mapping[str, Any], module: Any, seconds: int | None = None
) -> tuple[dict[str, np.ndarray], list[str], dict[str, Any]]:
    """`(braindecode state dict, what was left out, Labram constructor kwargs)` of a fine-tuned model's
    official state dict, for braindecode's fixed window of `seconds` (default: all `max_patches`)."""
    from labram_jax.convert import braindecode_names as bd

    _check_braindecode(spec, module, seconds)
    tspec = module.spec
    seconds = tspec.max_patches if seconds is None else seconds
    left_out = []
    if seconds < tspec.max_patches:
        last = tspec.max_patches - 1
        rows = f"rows {seconds}..{last}" if seconds < last else f"row {seconds}"
        left_out.append(f"params/backbone/time_embed {rows} (braindecode's window is {seconds} s)")
    return bd.to_braindecode(state, seconds), left_out, bd.constructor_kwargs(tspec, module.num_outputs, seconds)


def _check_braindecode(spec: Mapping[str, Any], module: Any, seconds: int | None) -> None:
    """Raises `ExportError` for what braindecode's `Labram` cannot hold."""
    if spec["kind"] != "finetune":
        instead = {
            "pretrain": "fine-tune it first (the fine-tuned checkpoint exports), or write the official "
            "NeuralTransformerForMEM layout",
            "tokenizer": "write the official VQ-NSP layout",
        }[spec["kind"]]
        raise ExportError(
            f"--format braindecode writes fine-tuned (classifier) checkpoints; this is a {spec['kind']} "
            f"checkpoint, and braindecode's Labram has no {spec['kind']} model. Instead, {instead} with "
            "--format official."
        )
    tspec = module.spec
    if tspec.patch_input != "eeg" or tspec.cls_spatial_from_first_channel:
        raise ExportError(
            "braindecode's Labram embeds 200-sample EEG patches and gives the cls token spatial row 0; this "
            f"model has patch_input={tspec.patch_input!r}, cls_spatial_from_first_channel="
            f"{tspec.cls_spatial_from_first_channel}"
        )
    if seconds is not None and not 1 <= seconds <= tspec.max_patches:
        raise ExportError(
            f"--seconds {seconds}: braindecode's window must be 1..{tspec.max_patches} s, the rows of this "
            f"model's temporal embedding (max_patches {tspec.max_patches})"
        )
    window = tspec.max_patches if seconds is None else seconds
    if window > tspec.width:
        raise ExportError(
            f"a {window}-s window: braindecode's Labram reads at most embed_dim ({tspec.width}) temporal "
            f"embedding rows, so it cannot run windows longer than {tspec.width} s; pass --seconds "
            f"{tspec.width} or less"
        )


def export(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    layout: str = "official",
    seconds: int | None = None,
) -> dict[str, Any]:
    """Writes `out` (.pth or .safetensors) in the `layout` ("official" or "braindecode") and `out`'s
    `.json` summary; returns the summary. `seconds`: braindecode's fixed window (braindecode only)."""
    import labram_jax
    from labram_jax import checkpoints

    out = os.fspath(out)
    suffix = os.path.splitext(out)[1]
    if suffix not in (".pth", ".safetensors"):
        raise ExportError(f"--out {out}: the file name must end in .pth or .safetensors")
    if layout not in LAYOUTS:
        raise ExportError(f"--format {layout!r} is not one of {', '.join(LAYOUTS)}")
    if seconds is not None and layout != "braindecode":
        raise ExportError("--seconds applies to --format braindecode only (the official layout keeps every row)")
    if layout == "braindecode":  # the kind from the meta alone: no restore of a model that cannot be written
        where = checkpoints.locate(checkpoint)
        _check_braindecode(where.meta["model_spec"], checkpoints.build_model(where.meta), seconds)
    model = labram_jax.load(checkpoint)
    spec = model.meta["model_spec"]
    state, left_out = export_state_dict(model.variables, spec)
    extra = {}
    if layout == "braindecode":
        from labram_jax.convert import braindecode_names as bd

        state, cut, kwargs = braindecode_state_dict(state, spec, model.module, seconds)
        left_out += cut
        extra["braindecode"] = {
            "class": bd.CLASS,
            "kwargs": kwargs,
            "call": "model.eval(); model(eeg_uv / 100, ch_names=names)",
            "input": f"(batch, channels, {kwargs['n_times']}) EEG in microvolts / 100 at 200 Hz, exactly "
            f"{kwargs['n_times'] // bd.PATCH_SIZE} s; names from braindecode's LABRAM_CHANNEL_ORDER "
            "(= labram_jax.channels.VOCABULARY, any case), every channel real (no padding)",
            "unused": f"temporal_embedding row {kwargs['n_times'] // bd.PATCH_SIZE} (zeros; braindecode's "
            "forward never reads it)",
            "read_from": bd.READ_FROM,
        }
    _write(state, out, suffix)
    summary = {
        "format": FORMAT,
        "layout": layout,
        "checkpoint": os.path.abspath(os.fspath(checkpoint)),
        "step": model.meta.get("step"),
        "official_model": official_model(spec),
        "model_spec": spec,
        **extra,
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
    # A copy: restored arrays can be read-only, which torch.from_numpy warns about (and would share).
    tensors = {name: torch.from_numpy(np.array(value, order="C", copy=True)) for name, value in state.items()}
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
    parser.add_argument(
        "--format",
        default="official",
        choices=LAYOUTS,
        help="official: the official LaBraM state dicts (default); braindecode: braindecode.models.Labram "
        "(fine-tuned checkpoints only; FILE.json holds its constructor arguments)",
    )
    parser.add_argument(
        "--seconds",
        type=int,
        default=None,
        help="braindecode only: the window its Labram is built for (n_times = 200 x seconds; default the "
        "checkpoint's max_patches); braindecode runs no other length",
    )
    args = parser.parse_args(argv)
    from labram_jax.checkpoints import CheckpointError

    try:
        summary = export(args.checkpoint, args.out, args.format, args.seconds)
    except (ExportError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    left = f"; left out: {', '.join(summary['left_out'])}" if summary["left_out"] else ""
    where = (
        f"braindecode Labram layout (Labram(**kwargs), kwargs in {os.path.splitext(summary['file'])[0]}.json)"
        if summary["layout"] == "braindecode"
        else f"official {summary['official_model']} layout"
    )
    count = f"{summary['tensors']} tensors, {summary['parameters']:,} values"
    print(f"wrote {summary['file']}: {count} in the {where}{left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
