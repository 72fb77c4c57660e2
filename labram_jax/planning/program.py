"""A config's real train and eval steps, lowered and compiled ahead of time on any devices.

The state functions are built exactly as the training loop builds them (`step_builder`), outside the mesh
context: building the state runs eager ops (`PRNGKey`), which compile-only TPU devices cannot execute.
Lowering happens under the mesh and the logical-axis rules, as in the loop. Nothing is allocated: the
state, batch and frozen inputs are `ShapeDtypeStruct`s carrying their shardings.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from labram_jax import dry_run, layout
from labram_jax.config_errors import ConfigError
from labram_jax.data import loaders
from labram_jax.models import factory
from labram_jax.planning.collectives import collectives
from labram_jax.train import datasets as train_data
from labram_jax.train import sharding as shd
from labram_jax.train import step_builder, task_from_data
from labram_jax.train.stages import make_stage
from labram_jax.train.stages.pretrain import PretrainStage
from labram_jax.train.stages.tokenizer import resolve_continuous_steps

DEFAULT_DEPTH_PROBES = (2, 4)
"""Depths compiled by `extrapolate` when no others are given."""

MIN_PROBE = 2

PLAN_STEPS_PER_EPOCH = 1000
"""Steps per epoch the lr schedule is built with when planning: only schedule constants depend on it."""


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A compiler's refusal to build a step that does not fit its device's memory."""

    message: str
    """The compiler's message (its first line)."""
    what: str
    """What the figures count: "HLO temporaries" (libtpu's compile-time check) or "total"."""
    required_bytes: int | None
    available_bytes: int | None


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = r"(?P<{0}>[\d.]+)\s*(?P<{0}_unit>[KMGT]?)i?B?"
_REFUSAL_FIGURES = (
    # libtpu, before anything runs: "RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required
    # for HLO temporaries (30.99G) exceeds available HBM (30.75G)."
    re.compile(
        r"required for (?P<what>[\w ]+?) \("
        + _SIZE.format("need")
        + r"\) exceeds available \w+ \("
        + _SIZE.format("have")
        + r"\)"
    ),
    # libtpu's other wording: "Ran out of memory in memory space hbm. Used 31.50G of 15.48G hbm."
    re.compile(r"Used " + _SIZE.format("need") + r" of " + _SIZE.format("have") + r" hbm", re.IGNORECASE),
)
_MEMORY_WORDS = ("RESOURCE_EXHAUSTED", "out of memory")


def _bytes(match: re.Match, name: str) -> int:
    return round(float(match.group(name)) * _UNITS[match.group(f"{name}_unit").upper()])


def compiler_refusal(message: str) -> Refusal | None:
    """The refusal in a compiler's error message, or None when the error is not about memory. libtpu's "G"
    is GiB: a v5e's 16 GiB shows as "available HBM (15.75G)" after the runtime's reserve."""
    if not any(word.lower() in message.lower() for word in _MEMORY_WORDS):
        return None
    first = next((line.strip() for line in message.splitlines() if line.strip()), message)
    for pattern in _REFUSAL_FIGURES:
        match = pattern.search(message)
        if match:
            what = match.groupdict().get("what") or "total"
            return Refusal(first, what, _bytes(match, "need"), _bytes(match, "have"))
    return Refusal(first, "total", None, None)


@dataclasses.dataclass
class CompiledStep:
    """What XLA reports of one compiled step, per device."""

    compile_seconds: float
    arguments: int
    outputs: int
    aliased: int
    temporaries: int
    generated_code: int
    flops: float
    bytes_accessed: float
    collectives: list[dict]
    refused: Refusal | None = None
    """Set when the compiler refused the step for memory: then the figures are a lower bound (the
    arguments as sized, the temporaries the compiler asked for) and FLOPs, bytes and collectives unknown."""

    @property
    def total(self) -> int:
        """Peak bytes the step holds on a device: its arguments, the outputs not written in place of a
        donated argument, its temporaries and its code."""
        return self.arguments + self.outputs - self.aliased + self.temporaries + self.generated_code


@dataclasses.dataclass
class Program:
    """A config planned on a mesh: the per-device sizes of what the train step takes, and both steps."""

    config: ml_collections.ConfigDict
    mesh: jax.sharding.Mesh
    global_batch: int
    micro_batch: int
    eval_batch: int
    per_device: dict[str, int]
    """Bytes per device of `params`, `optimizer`, `model_state` (non-gradient collections, step, rng),
    `frozen` (the tokenizer during pre-training) and `batch`."""
    param_count: int
    train: CompiledStep | None = None
    eval: CompiledStep | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    reliable: bool = True
    """False when depth probes gave memory that does not grow with depth (`extrapolate`)."""


def prepare(config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict, list[str]]:
    """The config as the loop would run it, without its dataset: "auto" task fields and epoch-counted
    quantiser steps are filled with stand-ins that do not change the program's shapes."""
    notes = []
    config = ml_collections.ConfigDict(config.to_dict())
    if config.stage in ("pipeline", "evaluate"):
        raise ConfigError(
            f"config field stage={config.stage!r}: plan one training stage at a time (tokenizer, pretrain or "
            "finetune), e.g. the config file of that stage"
        )
    if config.stage == "finetune" and config.task.num_outputs == task_from_data.NUM_OUTPUTS_AUTO:
        try:
            config = task_from_data.resolve(config)
        except ConfigError:
            config.task.num_outputs = 1
            notes.append("task head sized 1 (config.task.num_outputs is auto and the dataset is not here)")
    config = resolve_continuous_steps(config, PLAN_STEPS_PER_EPOCH)
    return config, notes


def _stage(config: ml_collections.ConfigDict, notes: list[str]):
    if config.stage != "pretrain":
        return make_stage(config)
    tokenizer, source = dry_run.pretrain_tokenizer(config)
    notes.append(f"frozen tokenizer: {source}")
    PretrainStage.validate(config)
    return PretrainStage(config, tokenizer)


def _abstract_batch(config: ml_collections.ConfigDict, batch: int, keys: Sequence[str], sharding) -> dict:
    data = config.data
    example = factory.example_batch(1, data.max_channels, data.max_patches)
    regression = config.stage == "finetune" and config.task.kind == "regression"
    example[layout.LABEL] = np.zeros((1,), np.float32 if regression else np.int32)
    example[loaders.VALID] = np.zeros((1,), bool)
    example[loaders.INDEX] = np.zeros((1,), np.int32)
    return {k: jax.ShapeDtypeStruct((batch,) + example[k].shape[1:], example[k].dtype, sharding=sharding) for k in keys}


def per_device_bytes(tree: Any) -> int:
    """Bytes one device holds of a tree of sharded `ShapeDtypeStruct`s (the largest shard, for uneven ones)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total


def _analyse(compiled: Any, seconds: float) -> CompiledStep:
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
    return CompiledStep(
        compile_seconds=seconds,
        arguments=int(memory.argument_size_in_bytes),
        outputs=int(memory.output_size_in_bytes),
        aliased=int(memory.alias_size_in_bytes),
        temporaries=int(memory.temp_size_in_bytes),
        generated_code=int(memory.generated_code_size_in_bytes),
        flops=float(cost.get("flops", float("nan"))),
        bytes_accessed=float(cost.get("bytes accessed", float("nan"))),
        collectives=collectives(compiled.as_text()),
    )


def _refused(refusal: Refusal, arguments: int, seconds: float) -> CompiledStep:
    need = refusal.required_bytes or 0
    temporaries = need if "temporaries" in refusal.what.lower() else max(need - arguments, 0)
    nan = float("nan")
    return CompiledStep(seconds, arguments, 0, 0, temporaries, 0, nan, nan, [], refused=refusal)


def _compile(fn: Any, args: tuple) -> CompiledStep:
    """The compiled step's figures; a compiler that refuses the step for memory (libtpu checks the HBM a
    program needs before anything runs) gives a refused step instead of an error: that is a plan that does
    not fit, with its levers to search, not a failure of `plan`."""
    start = time.perf_counter()
    lowered = fn.lower(*args)
    try:
        compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as err:
        refusal = compiler_refusal(str(err))
        if refusal is None:
            raise
        return _refused(refusal, per_device_bytes(args), time.perf_counter() - start)
    return _analyse(compiled, time.perf_counter() - start)


def build(
    config: ml_collections.ConfigDict, devices: Sequence[Any], *, train: bool = True, evaluate: bool = True
) -> Program:
    """Plans `config` (prepared) on `devices`: sizes, then the compiled train step and eval step."""
    notes: list[str] = []
    stage = _stage(config, notes)
    mesh = shd.make_mesh(config.mesh, devices)
    rules = shd.rules_of(config)
    optim = config.optim
    shd.check_batch(optim.batch_size, optim.grad_accum_steps, mesh)
    eval_batch = train_data.eval_batch_size(config)
    shd.check_batch(eval_batch, 1, mesh, field="config.data.eval_batch_size")

    setup = step_builder.build_state(config, stage, mesh, rules, PLAN_STEPS_PER_EPOCH)
    state = shd.abstract_with_shardings(setup.abstract_state, setup.state_shardings)
    frozen = None
    if isinstance(stage, PretrainStage):
        init = factory.init_fn(stage.tokenizer, stage.example_batch())
        boxed = jax.eval_shape(init, jax.random.PRNGKey(0))
        frozen = shd.abstract_with_shardings(shd.unbox(boxed), shd.shardings_of(boxed, mesh, rules))
    batch_sh = shd.batch_sharding(mesh)
    batch = _abstract_batch(config, optim.batch_size, train_data.TRAIN_KEYS, batch_sh)
    eval_inputs = _abstract_batch(config, eval_batch, train_data.EVAL_KEYS, batch_sh)

    uneven = shd.indivisible(setup.boxed_variables, mesh, rules)
    if uneven:
        path, shape, spec = uneven[0]
        notes.append(
            f"{len(uneven)} variables are not split on some mesh axis because their dimension does not divide "
            f"over it (e.g. {path} {shape}, asked {spec}); they are replicated on that axis"
        )
    program = Program(
        config=config,
        mesh=mesh,
        global_batch=optim.batch_size,
        micro_batch=optim.batch_size // optim.grad_accum_steps,
        eval_batch=eval_batch,
        per_device={
            "params": per_device_bytes(state.params),
            "optimizer": per_device_bytes(state.opt_state),
            "model_state": per_device_bytes((state.extra, state.step, state.rng)),
            "frozen": per_device_bytes(frozen),
            "batch": per_device_bytes(batch),
        },
        param_count=sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)),
        notes=notes,
    )
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        if train:
            step = step_builder.jit_train_step(config, stage, setup, mesh, frozen)
            program.train = _compile(step, (state, batch, frozen))
        if evaluate:
            step = step_builder.jit_eval_step(
                stage, setup.state_shardings.params, setup.state_shardings.extra, mesh, frozen
            )
            program.eval = _compile(step, (state.params, state.extra, eval_inputs, frozen))
    return program


def model_depth(config: ml_collections.ConfigDict) -> int:
    """The neural Transformer's number of blocks (the size's when `model.depth` is 0)."""
    from labram_jax.models.spec import SIZES

    return int(config.model.depth or SIZES[config.model.size]["depth"])


def _line(a: float, b: float, da: int, db: int, depth: int) -> float:
    return a + (b - a) * (depth - da) / (db - da)


def _extrapolate_step(a: CompiledStep, b: CompiledStep, da: int, db: int, depth: int) -> CompiledStep:
    if a.refused or b.refused:
        # A deeper model needs more: a probe the compiler refused means the whole model is refused too.
        refused = a if a.refused else b
        return dataclasses.replace(refused, compile_seconds=a.compile_seconds + b.compile_seconds)

    def at(field: str) -> float:
        return _line(getattr(a, field), getattr(b, field), da, db, depth)

    kinds = {c["kind"]: None for c in a.collectives + b.collectives}
    rows = []
    for kind in kinds:
        ca = next((c for c in a.collectives if c["kind"] == kind), {"count": 0, "bytes": 0})
        cb = next((c for c in b.collectives if c["kind"] == kind), {"count": 0, "bytes": 0})
        count = round(_line(ca["count"], cb["count"], da, db, depth))
        rows.append({"kind": kind, "count": count, "bytes": round(_line(ca["bytes"], cb["bytes"], da, db, depth))})
    return CompiledStep(
        compile_seconds=a.compile_seconds + b.compile_seconds,
        arguments=round(at("arguments")),
        outputs=round(at("outputs")),
        aliased=round(at("aliased")),
        temporaries=round(at("temporaries")),
        generated_code=round(at("generated_code")),
        flops=at("flops"),
        bytes_accessed=at("bytes_accessed"),
        collectives=rows,
    )


def extrapolate(
    config: ml_collections.ConfigDict,
    devices: Sequence[Any],
    probes: Sequence[int] = DEFAULT_DEPTH_PROBES,
    *,
    evaluate: bool = True,
) -> Program:
    """`build` for a deep model at the cost of two shallow ones: the steps are compiled at two depths
    (`probes`) and every XLA figure (arguments, outputs, temporaries, code, FLOPs, bytes, collectives) is
    taken linear in the number of blocks, as an unrolled stack of identical blocks makes it; parameter,
    optimiser, frozen and batch bytes are exact at the full depth (sized without compiling). FLOPs and code
    size extrapolate to within 1e-5 and 2 % of the whole compile; memory is an upper bound, because XLA's
    memory-pressure rematerialisation acts only when the whole program would not fit."""
    if config.stage not in ("pretrain", "finetune"):
        raise ConfigError(
            f"config field stage={config.stage!r}: depth probes extrapolate the neural Transformer's depth "
            "(pretrain and finetune configs); plan the tokenizer whole"
        )
    da, db = sorted(int(p) for p in probes)
    depth = model_depth(config)
    if not MIN_PROBE <= da < db or db > depth:
        raise ConfigError(
            f"--depth_probes={da},{db}: give two depths {MIN_PROBE} <= a < b <= the model's {depth} blocks (a "
            "1-block model compiles differently: Large pre-training's temporaries fell from 1 to 2 blocks)"
        )
    full = build(config, devices, train=False, evaluate=False)
    shallow = []
    for probe in (da, db):
        changed = ml_collections.ConfigDict(config.to_dict())
        changed.model.depth = probe
        shallow.append(build(changed, devices, evaluate=evaluate))
    a, b = shallow
    full.train = _extrapolate_step(a.train, b.train, da, db, depth)
    refused = next((p for p, s in zip((da, db), shallow) if s.train.refused), None)
    if refused is not None:
        full.notes.append(f"the compiler refused the train step already at depth {refused} of {depth}")
    elif b.train.temporaries < a.train.temporaries or full.train.total < max(a.train.total, b.train.total):
        full.reliable = False
        full.notes.append(
            f"the temporaries fell from {da} to {db} blocks ({a.train.temporaries:,} -> {b.train.temporaries:,} "
            "bytes): XLA scheduled the probes differently, so the extrapolated memory is not reliable and no fit "
            "verdict is given; plan the whole model or other probes"
        )
    if evaluate:
        full.eval = _extrapolate_step(a.eval, b.eval, da, db, depth)
    full.notes.append(
        f"XLA figures extrapolated linearly in depth from compiles at {da} and {db} of the {depth} blocks "
        "(parameters, optimiser state and batch exact). An upper bound on memory near the device's capacity: "
        "compiling the whole model, XLA rematerialises to fit (Giant on v5p-8: 129.8 GiB extrapolated, 77.9 GiB "
        "whole); plan without --depth_probes for the verdict"
    )
    return full
