"""From an official state dict to our Flax variables: infer the architecture, map every tensor, validate.

The architecture comes from the tensors themselves: the kind from the key prefixes (`student.` pre-training,
`encoder.`/`quantize.` tokenizer, bare `cls_token`/`blocks.` fine-tuning), the size from the width of
`cls_token`, the head size from `head.weight`, the temporal-embedding rows from `time_embed`, the vocabulary
from `lm_head.weight`, the codebook from `quantize.embedding.weight`. Names and layouts go through
`models.official_names`, the one name map of the project.

Nothing is guessed silently: a tensor the model has no place for (unexpected), a variable the file does not
provide (missing) and a tensor of the wrong shape (mis-shaped) all stop the conversion, unless the user lets
them go with a shell-style pattern on the official name:

* `allow_unexpected`: the file's tensor is dropped. Letting `head.*` go this way yields a fine-tuning
  checkpoint without a head (`num_outputs` 0), for a new task.
* `allow_missing`: the variable is initialised fresh with the model's own initialiser (seed 0), as a new
  training run would. Missing `head.*` is the exception: the head's size is then unknown, so it stays absent
  (`num_outputs` 0). A mis-shaped tensor is let go by a pattern in either list and its variable is
  initialised fresh.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from labram_jax.checkpoints.model_spec import spec_from_config
from labram_jax.convert.safe_load import ConversionError
from labram_jax.models import factory, official_names
from labram_jax.models.spec import SIZES

KINDS = ("pretrain", "finetune", "tokenizer")
STUDENT = "student."
HEAD_NAMES = ("head.weight", "head.bias")
_EMBEDDINGS = ("cls_token", "mask_token", "pos_embed", "time_embed")
_WIDTH_TO_SIZE = {spec["width"]: name for name, spec in SIZES.items()}

Key = tuple[str, ...]  # (collection, *path)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What an official state dict holds, read from its names and shapes."""

    kind: str
    official_model: str
    size: str | None = None  # base | large | huge; None for the tokenizer
    num_outputs: int = 0  # fine-tuning head size; 0: no head
    max_patches: int = 16  # rows of time_embed
    vocab_size: int = 8192  # pre-training lm_head rows
    num_codes: int = 8192  # tokenizer codebook
    code_dim: int = 64
    encoder_depth: int = 12
    decoder_depth: int = 3

    def summary(self) -> dict[str, Any]:
        """The fields that mean something for this kind (for conversion.json)."""
        fields = {
            "tokenizer": ("num_codes", "code_dim", "encoder_depth", "decoder_depth", "max_patches"),
            "pretrain": ("size", "vocab_size", "max_patches"),
            "finetune": ("size", "num_outputs", "max_patches"),
        }[self.kind]
        return {"official_model": self.official_model, **{f: getattr(self, f) for f in fields}}


@dataclasses.dataclass
class Mapped:
    """The converted variables and an account of every tensor."""

    variables: dict[str, Any]
    mapped: list[dict[str, Any]]
    let_go: list[dict[str, Any]]
    unused_patterns: list[str]


def matches(name: str, patterns: Iterable[str]) -> str | None:
    """The first shell-style pattern that matches an official tensor name, or None."""
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)


def add_student_prefix(names: Iterable[str]) -> bool:
    """True for a bare `NeuralTransformerForMaskedEEGModeling` state dict (the student without its wrapper):
    it has a `mask_token` and no `student.` keys, and maps onto our pre-training model's `student`."""
    names = list(names)
    return "mask_token" in names and not any(n.startswith(STUDENT) for n in names)


def infer_kind(names: Sequence[str], path: str) -> str:
    if any(n.startswith(STUDENT) for n in names):
        return "pretrain"
    if any(n.startswith(("encoder.", "decoder.", "quantize.")) for n in names):
        return "tokenizer"
    if "cls_token" in names or any(n.startswith("blocks.") for n in names):
        return "finetune"
    shown = ", ".join(repr(n) for n in list(names)[:8])
    raise ConversionError(
        f"{path}: not a LaBraM checkpoint. Expected the tensors of a fine-tuning model (`cls_token`, "
        f"`blocks.*`), a pre-training model (`student.*`) or the VQ-NSP tokenizer (`encoder.*`, `quantize.*`); "
        f"found {len(names)} tensors such as {shown}."
    )


def _depth(names: Iterable[str], prefix: str, default: int) -> int:
    found = [int(m.group(1)) for n in names if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.", n))]
    return max(found) + 1 if found else default


def infer_architecture(
    shapes: Mapping[str, tuple[int, ...]], path: str, kind: str = "auto", allow_unexpected: Sequence[str] = ()
) -> Architecture:
    """The kind, size and head/vocabulary/codebook sizes of a state dict, from its names and shapes."""
    names = list(shapes)
    found = infer_kind(names, path)
    if kind not in ("auto", found):
        hint = (
            " A pre-training checkpoint is used for fine-tuning as it is: fine-tuning restores its `student` backbone."
            if found == "pretrain"
            else ""
        )
        raise ConversionError(
            f"{path}: --kind {kind} was asked for, but the file holds a {found} checkpoint (by its tensor names).{hint}"
        )
    if found == "tokenizer":
        (num_codes, code_dim) = shapes.get("quantize.embedding.weight", (8192, 64))
        return Architecture(
            "tokenizer",
            "vqnsp_encoder_base_decoder_3x200x12",
            num_codes=int(num_codes),
            code_dim=int(code_dim),
            max_patches=int(shapes.get("encoder.time_embed", (1, 16))[1]),
            encoder_depth=_depth(names, "encoder.", 12),
            decoder_depth=_depth(names, "decoder.", 3),
        )
    root = STUDENT if found == "pretrain" else ""
    if root + "cls_token" not in shapes:
        raise ConversionError(
            f"{path}: `{root}cls_token` is missing, so the model size cannot be told from the tensor shapes"
        )
    width = int(shapes[root + "cls_token"][-1])
    if width not in _WIDTH_TO_SIZE:
        raise ConversionError(
            f"{path}: `{root}cls_token` is {width} wide, which is no LaBraM size ("
            + ", ".join(f"{n} {s['width']}" for n, s in SIZES.items())
            + ")"
        )
    size = _WIDTH_TO_SIZE[width]
    max_patches = int(shapes.get(root + "time_embed", (1, 16))[1])
    if found == "pretrain":
        vocab = shapes.get("lm_head.weight", shapes.get(STUDENT + "lm_head.weight", (8192,)))[0]
        return Architecture(
            "pretrain",
            f"labram_{size}_patch200_1600_8k_vocab",
            size=size,
            max_patches=max_patches,
            vocab_size=int(vocab),
        )
    head = shapes.get("head.weight")
    keep_head = head is not None and len(head) == 2 and matches("head.weight", allow_unexpected) is None
    return Architecture(
        "finetune",
        f"labram_{size}_patch200_200",
        size=size,
        num_outputs=int(head[0]) if keep_head else 0,
        max_patches=max_patches,
    )


def model_spec(arch: Architecture) -> dict[str, Any]:
    """The checkpoint model spec of an official architecture; fields an official file does not determine
    take the package's architecture defaults (for a tokenizer: the official quantiser, none of our
    collapse remedies' state)."""
    if arch.kind == "tokenizer":
        fields = ("num_codes", "code_dim", "max_patches", "encoder_depth", "decoder_depth")
        return spec_from_config("tokenizer", {"tokenizer": {f: getattr(arch, f) for f in fields}})
    model = {"model": {"size": arch.size, "max_patches": arch.max_patches}}
    if arch.kind == "pretrain":
        return spec_from_config("pretrain", model, vocab_size=arch.vocab_size)
    return spec_from_config("finetune", model, num_outputs=arch.num_outputs)


def flat_variables(tree: Mapping[str, Any]) -> dict[Key, Any]:
    """`{(collection, *path): leaf}` of a variables tree (import and export both walk it)."""
    return {
        tuple(getattr(k, "key", k) for k in path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _nest(flat: Mapping[Key, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = value
    return tree


def _target(name: str) -> official_names.Target | None:
    try:
        return official_names.translate(name)
    except (KeyError, IndexError, ValueError):  # names outside the map's grammar (e.g. a task layer `.1.`)
        return None


def official_shape(name: str, shape: Sequence[int], kind: str) -> tuple[int, ...]:
    """The official tensor shape that a variable of `shape` here corresponds to (inverse of the layouts)."""
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    if kind == "linear":
        fan_in = int(np.prod(shape[:-1])) if name.endswith("attn.proj.weight") else shape[0]
        return (size // fan_in, fan_in)
    if kind == "conv":
        if len(shape) == 2:  # a 1x1 conv stored as a Dense kernel (in, out)
            return (shape[1], shape[0], 1, 1)
        width, fan_in, out = shape
        return (out, fan_in, 1, width)
    leaf = name.rsplit(".", 1)[-1]
    if not shape:
        return (1,)  # the quantiser's `initted` flag is a 1-element buffer there
    if leaf in _EMBEDDINGS:
        return (1,) * (3 - len(shape)) + shape
    if leaf in ("q_bias", "v_bias"):
        return (size,)
    return shape


def fresh_variables(model: nn.Module, keys: Sequence[Key]) -> dict[Key, np.ndarray]:
    """The model's own initial values (seed 0) of some variables, as a new training run would draw them."""
    if not keys:
        return {}
    init = factory.init_fn(model, factory.example_batch())

    def wanted(rng: jax.Array) -> list[jax.Array]:
        # Returning only these leaves lets XLA drop the rest of the init: seconds instead of a full compile.
        flat = flat_variables(nn.meta.unbox(init(rng)))
        return [flat[key] for key in keys]

    return {key: np.asarray(value) for key, value in zip(keys, jax.jit(wanted)(jax.random.PRNGKey(0)))}


def _reference_names(arch: Architecture, abstract: Mapping[Key, Any]) -> dict[Key, str]:
    """Our variable -> the official name, for naming what a file lacks."""
    names = official_names.official_state_dicts()[arch.official_model]["state_dict"]
    out = {}
    for name in names:
        target = official_names.translate(name)
        out[(target.collection,) + target.path] = name
    return {k: v for k, v in out.items() if k in abstract}


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} [{len(items)}]: " + ", ".join(items[:limit]) + more


@dataclasses.dataclass
class _Sorted:
    """A state dict split by what the model makes of each tensor."""

    converted: dict[Key, np.ndarray]
    mapped: list[dict[str, Any]]
    unexpected: list[str]
    misshaped: list[tuple[str, Key, tuple[int, ...], tuple[int, ...]]]  # name, variable, file, expected
    missing: list[tuple[str, Key, Any]]  # official name, variable, abstract
    absent_head: list[str]


def _sort(tensors: Mapping[str, np.ndarray], arch: Architecture, abstract: Mapping[Key, Any]) -> _Sorted:
    out = _Sorted({}, [], [], [], [], [])
    for name, value in tensors.items():
        target = _target(name)
        key = (target.collection,) + target.path if target else None
        if key not in abstract:
            out.unexpected.append(name)
            continue
        leaf = abstract[key]
        expected = official_shape(name, leaf.shape, target.kind)
        if tuple(value.shape) != expected:
            out.misshaped.append((name, key, tuple(value.shape), expected))
            continue
        out.converted[key] = official_names.to_flax(value, target.kind, leaf.shape).astype(leaf.dtype, copy=False)
        out.mapped.append(
            {
                "official": name,
                "shape": list(value.shape),
                "collection": key[0],
                "path": "/".join(key[1:]),
                "flax_shape": list(leaf.shape),
                "layout": target.kind,
            }
        )
    reference = _reference_names(arch, abstract)
    misshaped_keys = {m[1] for m in out.misshaped}
    out.missing = [
        (reference.get(key, "/".join(key)), key, leaf)
        for key, leaf in abstract.items()
        if key not in out.converted and key not in misshaped_keys
    ]
    if arch.kind == "finetune" and arch.num_outputs == 0:
        out.absent_head = [n for n in HEAD_NAMES if n not in tensors]
    return out


def _let_go(
    found: _Sorted, tensors: Mapping[str, np.ndarray], allow_missing: Sequence[str], allow_unexpected: Sequence[str]
) -> tuple[list[dict[str, Any]], list[Key], list[str]]:
    """`(let_go entries, variables to initialise, error lines)` under the user's patterns."""
    let_go: list[dict[str, Any]] = []
    reinit: list[Key] = []
    unknown, misshaped, missing = [], [], []
    for name in found.unexpected:
        if (pattern := matches(name, allow_unexpected)) is None:
            unknown.append(f"{name} {_fmt(tensors[name].shape)}")
        else:
            let_go.append(
                {
                    "official": name,
                    "shape": list(tensors[name].shape),
                    "problem": "unexpected",
                    "action": "dropped",
                    "pattern": pattern,
                }
            )
    for name, key, shape, expected in found.misshaped:
        if (pattern := matches(name, allow_missing) or matches(name, allow_unexpected)) is None:
            misshaped.append(f"{name}: file {_fmt(shape)}, model {_fmt(expected)}")
        else:
            reinit.append(key)
            let_go.append(
                {
                    "official": name,
                    "shape": list(shape),
                    "expected_shape": list(expected),
                    "variable": "/".join(key),
                    "problem": "mis-shaped",
                    "action": "initialised",
                    "pattern": pattern,
                }
            )
    for name, key, leaf in found.missing:
        if (pattern := matches(name, allow_missing)) is None:
            target = _target(name)
            missing.append(f"{name} {_fmt(official_shape(name, leaf.shape, target.kind) if target else leaf.shape)}")
        else:
            reinit.append(key)
            let_go.append(
                {
                    "official": name,
                    "variable": "/".join(key),
                    "problem": "missing",
                    "action": "initialised",
                    "pattern": pattern,
                }
            )
    for name in found.absent_head:
        if (pattern := matches(name, allow_missing)) is None:
            missing.append(f"{name} (the task head; its size comes from the file)")
        else:
            let_go.append(
                {
                    "official": name,
                    "problem": "missing",
                    "action": "absent (no head, num_outputs 0)",
                    "pattern": pattern,
                }
            )
    errors = [
        _listing(title, items)
        for title, items in (
            ("unknown tensors (no counterpart in the model)", unknown),
            ("mis-shaped tensors", misshaped),
            ("missing tensors (the model needs them)", missing),
        )
        if items
    ]
    return let_go, reinit, errors


def map_state_dict(
    tensors: Mapping[str, np.ndarray],
    arch: Architecture,
    model: nn.Module,
    path: str,
    allow_missing: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
) -> Mapped:
    """Every official tensor to its variable (layout changed, dtype of the variable), validated."""
    abstract = flat_variables(nn.meta.unbox(factory.abstract_variables(model)))
    found = _sort(tensors, arch, abstract)
    let_go, reinit, errors = _let_go(found, tensors, allow_missing, allow_unexpected)
    if errors:
        raise ConversionError(
            f"{path}: cannot convert this {arch.kind} checkpoint (architecture {arch.official_model}, "
            f"inferred from the tensor shapes); nothing was written.\n  "
            + "\n  ".join(errors)
            + "\nIf this is expected, let the tensors go explicitly: --allow_unexpected PATTERN drops unknown "
            "file tensors, --allow_missing PATTERN initialises missing (or mis-shaped) variables fresh; "
            "PATTERN is shell-style on the official name, e.g. 'head.*'."
        )
    converted = {**found.converted, **fresh_variables(model, reinit)}
    used = {entry["pattern"] for entry in let_go}
    unused = [p for p in list(allow_missing) + list(allow_unexpected) if p not in used]
    return Mapped(_nest(converted), found.mapped, let_go, unused)
