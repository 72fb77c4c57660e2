"""Reading an official checkpoint file without ever executing code from it.

`.pth` files are pickles: a plain `torch.load` would run whatever callable the file names. Here they are read
only with `torch.load(weights_only=True)`, whose unpickler builds tensors and plain containers and refuses any
other global. The one extra class allowed is `argparse.Namespace` (the `args` entry of the official training
checkpoints), which is rebuilt by filling its `__dict__`, so no code of the file's choosing runs.
`.safetensors` files hold no code by design.

`torch` (and `safetensors`) are imported here, lazily: they are the `torch` extra, needed only for conversion.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

WRAPPER_KEYS = ("model", "state_dict")
"""Keys under which a checkpoint dict holds the state dict, in order of preference (the official scripts save
`{'model': ..., 'optimizer': ..., 'epoch': ..., 'args': ...}`; many other trainers use `state_dict`)."""

DDP_PREFIX = "module."


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message says what is wrong and how to proceed."""


class UnsafeCheckpointError(ConversionError):
    """A file that could only be loaded by running code it names (arbitrary unpickling)."""


@dataclasses.dataclass
class StateDict:
    """The tensors of a checkpoint file as float32 (or integer/bool) numpy arrays, and how they were found."""

    path: str
    tensors: dict[str, np.ndarray]
    file_format: str  # "pth" or "safetensors"
    wrapper: str | None = None  # the dict key the state dict sat under, if any
    prefix_removed: str | None = None  # "module." of a DistributedDataParallel state dict
    dtypes: dict[str, str] = dataclasses.field(default_factory=dict)  # original dtypes, for the report

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(value.shape) for name, value in self.tensors.items()}


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as e:  # the extra is optional for everything but conversion
        raise ConversionError(
            "converting PyTorch checkpoints needs torch: pip install torch==2.13.0 && pip install -e '.[torch]'"
        ) from e
    return torch


def _load_pth(path: str) -> Any:
    torch = _require_torch()
    import argparse

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        if "Weights only load failed" not in message:
            raise ConversionError(
                f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): "
                f"{message.splitlines()[0] if message else type(e).__name__}"
            ) from e
        found = re.search(r"GLOBAL (\S+)", message)
        what = f"`{found.group(1)}`" if found else "an object that is not a tensor or a plain container"
        raise UnsafeCheckpointError(
            f"refusing {path}: loading it would have to construct or call {what}, which could run arbitrary "
            "code from the file, so it is not unpickled (only tensors, plain containers and argparse.Namespace "
            "are read, with torch.load(weights_only=True)). Nothing was written. If the file is yours and "
            "trusted, re-save just its state dict: torch.save(model.state_dict(), 'weights.pth'). (A truncated "
            "legacy-format file can also fail this way; compare its size or checksum with the original.)"
        ) from e
    except Exception as e:  # zip, EOF and storage errors of damaged files come in many types
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConversionError(
            f"cannot read {path}: the file is truncated, corrupt or not a PyTorch checkpoint "
            f"({type(e).__name__}: {reason})"
        ) from e


def _load_safetensors(path: str) -> dict[str, Any]:
    _require_torch()
    try:
        from safetensors.torch import load_file
    except ImportError as e:
        raise ConversionError("reading .safetensors needs the safetensors package: pip install -e '.[torch]'") from e
    try:
        return load_file(path, device="cpu")
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConversionError(
            f"cannot read {path}: the file is truncated, corrupt or not a safetensors file "
            f"({type(e).__name__}: {reason})"
        ) from e


def _is_state_dict(obj: Any) -> bool:
    torch = _require_torch()
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _unwrap(obj: Any, path: str) -> tuple[Mapping[str, Any], str | None]:
    if _is_state_dict(obj):
        return obj, None
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                return obj[key], key
        top = ", ".join(repr(k) for k in list(obj)[:12])
        raise ConversionError(
            f"{path}: no state dict found. Expected a dict of tensors, or a dict holding one under "
            f"{' or '.join(repr(k) for k in WRAPPER_KEYS)}; the file's top-level keys are [{top}]."
        )
    raise ConversionError(
        f"{path}: holds a {type(obj).__name__}, not a state dict (a dict of tensors, or a "
        f"dict holding one under {' or '.join(repr(k) for k in WRAPPER_KEYS)})."
    )


def _to_numpy(tensor: Any) -> np.ndarray:
    torch = _require_torch()
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)  # numpy has no bfloat16; parameters are float32 here anyway
    return tensor.numpy()


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """The tensors of a `.pth`/`.pt`/`.bin` (torch pickle) or `.safetensors` file, unwrapped.

    Accepts a raw state dict, `{'model': state_dict, ...}` or `{'state_dict': state_dict, ...}`; a `module.`
    prefix on every key (DistributedDataParallel) is removed. Raises `UnsafeCheckpointError` for files that
    need arbitrary unpickling and `ConversionError` for missing, truncated or corrupt files.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint file {path} does not exist")
    if path.endswith(".safetensors"):
        raw, file_format, wrapper = _load_safetensors(path), "safetensors", None
    else:
        if _looks_truncated_zip(path):
            raise ConversionError(
                f"cannot read {path}: the file is truncated or corrupt (it starts like a "
                "PyTorch zip checkpoint but has no zip directory at its end)"
            )
        raw, file_format = _load_pth(path), "pth"
        raw, wrapper = _unwrap(raw, path)
    names = list(raw)
    prefix = DDP_PREFIX if names and all(n.startswith(DDP_PREFIX) for n in names) else None
    tensors, dtypes = {}, {}
    for name, value in raw.items():
        key = name[len(prefix) :] if prefix else name
        tensors[key] = _to_numpy(value)
        dtypes[key] = str(value.dtype).replace("torch.", "")
    return StateDict(path, tensors, file_format, wrapper, prefix, dtypes)


def _looks_truncated_zip(path: str) -> bool:
    """True for a file that begins with a zip header (every modern `torch.save`) but is no valid zip."""
    with open(path, "rb") as f:
        starts_as_zip = f.read(4) == b"PK\x03\x04"
    return starts_as_zip and not zipfile.is_zipfile(path)
