"""What the benchmarks share: output, machine info, timing, memory, FLOPs, peak matmul, and the real train step.

Every benchmark prints exactly one JSON object on stdout (`emit`) and logs on stderr (`log`). Heavy imports
(JAX, the project) happen inside the functions, so `--help` and the subprocess drivers stay light.

`StepBench` is the training step of a config exactly as `labram_jax.train.loop.Trainer` builds it (the
stage's `loss_fn`, `make_optimizer`, `make_train_step`, jitted with the Trainer's shardings and the state
donated): both build it with `labram_jax.train.step_builder`. It is fed synthetic batches in the
`labram_jax.layout` layout, so no dataset is needed.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# GPU memory as needed instead of 75 % up front: a driver process that has touched JAX (machine info, the
# attention cores of bench.scaling) and its benchmark subprocess, or JAX and torch, share one GPU.
# `peak_bytes_in_use` still reports each process's peak.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# -- shapes and configs ---------------------------------------------------------------------------------
TRAIN_SHAPE = dict(batch=16, channels=23, seconds=10)
"""The fine-tuning recipe's input: TUAB windows of 23 channels x 10 s, a batch of 16 per step."""
SMOKE_SHAPE = dict(batch=2, channels=2, seconds=2)
SMOKE_BACKBONE = dict(width=100, depth=1, num_heads=4)
SMOKE_TOKENIZER = dict(width=100, num_heads=4, encoder_depth=1, decoder_depth=1, num_codes=16, code_dim=8)
CONFIGS = ("finetune_base", "finetune_large", "pretrain_base")
"""Config names are `<stage>_<size>`: stage finetune (TUAB recipe) or pretrain, size base | large | huge."""


def log(*args: Any) -> None:
    print("[bench]", *args, file=sys.stderr, flush=True)


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


_RESULT_STREAM: Any = None


def emit(result: dict[str, Any]) -> None:
    """The benchmark's one JSON object on stdout (the real one, under `run_main`)."""
    out = _RESULT_STREAM or sys.stdout
    out.write(json.dumps(result, indent=1, default=_json_default) + "\n")
    out.flush()


def run_main(main: Callable[[], Any]) -> None:
    """Runs a benchmark's `main` with file descriptor 1 pointing at stderr, so that whatever libraries print
    (TFDS build progress, XLA, torch) lands in the log and stdout carries only the JSON of `emit`."""
    global _RESULT_STREAM
    from labram_jax import host_memory

    host_memory.configure()  # what `python -m labram_jax.main` users get (may re-execute once)
    sys.stdout.flush()
    _RESULT_STREAM = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    rc = main()
    _RESULT_STREAM.flush()
    sys.exit(rc if isinstance(rc, int) else 0)


def add_shape_args(parser: Any, batch: int | None = None) -> None:
    parser.add_argument("--smoke", action="store_true", help="tiny model and shapes, one timed step (tests)")
    parser.add_argument("--batch", type=int, default=batch, help=f"examples per step (default {TRAIN_SHAPE['batch']})")
    parser.add_argument("--channels", type=int, default=None, help="channels per example (default 23)")
    parser.add_argument("--seconds", type=int, default=None, help="1-s patches per channel (default 10)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="model.dtype (compute dtype) of our models; parameters stay float32",
    )


def smoke_env(args: Any) -> None:
    """Under --smoke, cheap XLA compiles (tiny shapes: the numbers only need to exist). Call before JAX loads;
    an XLA_FLAGS already set wins. Subprocesses inherit it."""
    if getattr(args, "smoke", False) and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def shape_of(args: Any) -> dict[str, int]:
    """Batch / channels / seconds from the flags, defaulting to the training shape (tiny under --smoke)."""
    base = SMOKE_SHAPE if args.smoke else TRAIN_SHAPE
    return {k: (getattr(args, k) if getattr(args, k, None) else base[k]) for k in base}


# -- machine ------------------------------------------------------------------------------------------
def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions(*names: str) -> dict[str, str | None]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info(with_jax: bool = True) -> dict[str, Any]:
    """CPU, cores, memory, load, package versions, the JAX device and the date (UTC)."""
    info: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_cores_available": cpu_count(),
        "cpu_cores_total": os.cpu_count(),
        "memory_gb": _mem_total_gb(),
        "load_average_1_5_15": load_average(),
        "python": platform.python_version(),
        "versions": versions("jax", "jaxlib", "flax", "optax", "grain", "torch", "braindecode"),
    }
    if with_jax:
        import jax

        dev = jax.devices()[0]
        info.update(jax_platform=dev.platform, device_kind=dev.device_kind, device_count=jax.device_count())
    for var in ("XLA_FLAGS", "GLIBC_TUNABLES", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            info.setdefault("env", {})[var] = os.environ[var]
    return info


def _proc_stat() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat (steal counts as busy: another guest ran)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    total = sum(fields)
    return total - fields[3] - fields[4], total


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMonitor:
    """How busy the machine was while a block ran: our process's cores and everyone else's.

    `others_cores_busy` near 0 means the timing had the machine to itself; on the shared 2-core dev
    machine other engineers' jobs show up here (and slow every number down).
    """

    def __enter__(self) -> CpuMonitor:
        self._t, self._stat, self._own = time.perf_counter(), _proc_stat(), _own_cpu_s()
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = max(time.perf_counter() - self._t, 1e-9)
        own = _own_cpu_s() - self._own
        self.result: dict[str, Any] = {"own_cores_busy": round(own / wall, 2)}
        end = _proc_stat()
        if self._stat and end:
            hz = os.sysconf("SC_CLK_TCK")
            busy = (end[0] - self._stat[0]) / hz
            self.result["others_cores_busy"] = round(max(busy - own, 0.0) / wall, 2)
            self.result["machine_cores"] = cpu_count()


# -- timing, memory, FLOPs ----------------------------------------------------------------------------
def summary(times: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "mean": statistics.fmean(times),
        "n": len(times),
    }


def page_faults() -> int:
    """Minor page faults of this process so far (`ru_minflt`)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def peak_memory(device: Any = None) -> dict[str, Any]:
    """GPU/TPU: the device allocator's `peak_bytes_in_use`; CPU: the process's peak RSS."""
    stats = None
    if device is not None and device.platform != "cpu":
        try:
            stats = device.memory_stats()
        except Exception:  # noqa: BLE001 - not every backend has memory stats
            stats = None
    if stats and "peak_bytes_in_use" in stats:
        return {"peak_memory_bytes": int(stats["peak_bytes_in_use"]), "peak_memory_kind": "device_peak_bytes_in_use"}
    return {"peak_memory_bytes": peak_rss_bytes(), "peak_memory_kind": "process_peak_rss"}


def flops_of(compiled: Any) -> float | None:
    """FLOPs of a compiled XLA computation from its cost analysis (None when the backend gives none)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def temp_bytes_of(compiled: Any) -> int | None:
    try:
        return int(compiled.memory_analysis().temp_size_in_bytes)
    except Exception:  # noqa: BLE001
        return None


def peak_matmul(device: Any = None, n: int | None = None, dtype: str | None = None, reps: int = 5) -> dict[str, Any]:
    """The best FLOP/s of a jitted `jnp.dot` of two n x n matrices: the practical peak of the device.

    Default: fp32 2048^3 on CPU (~440 GFLOP/s on the 2-core dev machine), bf16 8192^3 on accelerators.
    """
    import jax
    import jax.numpy as jnp

    device = device or jax.devices()[0]
    on_cpu = device.platform == "cpu"
    n = n or (2048 if on_cpu else 8192)
    dtype = dtype or ("float32" if on_cpu else "bfloat16")
    keys = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.device_put(jax.random.normal(k, (n, n), dtype), device) for k in keys)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n**3
    return {
        "peak_matmul_flops_per_s": flops / min(times),
        "peak_matmul_median_flops_per_s": flops / statistics.median(times),
        "peak_matmul_shape": [n, n, n],
        "peak_matmul_dtype": dtype,
    }


# -- subprocesses ---------------------------------------------------------------------------------------
def run_module(
    module: str, args: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`python -m module args` in a fresh process (stderr passes through); its JSON, or an `error` entry."""
    cmd = [sys.executable, "-m", module, *args]
    log("$", " ".join(cmd[1:]))
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout, cwd=root, env=full_env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "command": " ".join(cmd[1:])}
    wall = round(time.perf_counter() - t0, 2)
    if proc.returncode != 0:
        return {
            "error": f"exit code {proc.returncode}",
            "command": " ".join(cmd[1:]),
            "wall_s": wall,
            "stdout_tail": proc.stdout[-2000:],
        }
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        return {
            "error": f"stdout is not one JSON object ({err})",
            "command": " ".join(cmd[1:]),
            "stdout_tail": proc.stdout[-2000:],
        }
    if isinstance(result, dict):
        result.setdefault("wall_s", wall)
    return result


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- configs and synthetic batches --------------------------------------------------------------------
def parse_name(name: str) -> tuple[str, str]:
    """`finetune_base` -> ("finetune", "base")."""
    stage, _, size = name.partition("_")
    if stage not in ("finetune", "pretrain") or size not in ("base", "large", "huge"):
        raise SystemExit(f"unknown config {name!r}: use <finetune|pretrain>_<base|large|huge>")
    return stage, size


def bench_config(
    name: str, *, batch: int, channels: int, seconds: int, dtype: str = "float32", smoke: bool = False
) -> Any:
    """The project's config of `name` (`configs/finetune_tuab.py` recipe or `configs/base.py`-style
    pre-training) with the benchmark's batch and input shape; `smoke` shrinks the models."""
    from configs import base, finetune_tuab

    stage, size = parse_name(name)
    config = finetune_tuab.get_config(size) if stage == "finetune" else base.get_config(size)
    config.optim.batch_size = batch
    config.data.max_channels = channels
    config.data.max_patches = seconds
    config.model.dtype = dtype
    if smoke:
        config.model.update(SMOKE_BACKBONE)
    return config


def stand_in_tokenizer(config: Any) -> Any:
    """The tokenizer a pre-training benchmark uses in place of a checkpoint: the official VQ-NSP in the
    model's dtype, or the smoke tokenizer when the backbone is shrunk (`--smoke`)."""
    from labram_jax import config_defaults

    tokenizer = config_defaults.tokenizer_model_config()
    tokenizer.dtype = config.model.dtype
    if config.model.depth:  # only smoke runs shrink the backbone
        tokenizer.update(SMOKE_TOKENIZER)
    return tokenizer


def channel_ids_for(channels: int) -> Any:
    """The TUH montage's ids for up to 23 channels, else rows 1..C of the spatial embedding."""
    import numpy as np

    from labram_jax import channels as ch

    if channels <= len(ch.TUH_CHANNELS):
        return np.asarray(ch.channel_ids(ch.TUH_CHANNELS[:channels]), np.int32)
    if channels > ch.NUM_USABLE:
        raise SystemExit(f"--channels={channels} exceeds the {ch.NUM_USABLE} rows of the spatial embedding")
    return np.arange(1, channels + 1, dtype=np.int32)


def synthetic_batch(config: Any, seed: int = 0) -> dict[str, Any]:
    """A full (unpadded) training batch in the layout the loaders produce: 30 µV noise, random labels."""
    import numpy as np

    from labram_jax import layout
    from labram_jax.train.datasets import TRAIN_KEYS

    b, c, a = config.optim.batch_size, config.data.max_channels, config.data.max_patches
    rng = np.random.default_rng(seed)
    channel_mask, patch_mask = layout.full_masks(b, c, a)
    if config.stage == "finetune":
        label = rng.integers(0, max(2, config.task.num_outputs), b).astype(np.int32)
    else:
        label = np.full((b,), -1, np.int32)
    batch = {
        layout.EEG: (30.0 * rng.standard_normal((b, c, a, layout.PATCH_SIZE))).astype(np.float32),
        layout.CHANNEL_IDS: np.tile(channel_ids_for(c), (b, 1)),
        layout.CHANNEL_MASK: channel_mask,
        layout.PATCH_MASK: patch_mask,
        layout.LABEL: label,
    }
    return {k: batch[k] for k in TRAIN_KEYS}


class StepBench:
    """The real jitted train step of `config` on one synthetic batch, built as `Trainer` builds it.

    After `compile()`, `step()` runs one optimiser step (state donated) and returns its metrics. The
    pre-training stage gets a randomly initialised tokenizer of the configured size in place of the
    checkpoint `PretrainStage.from_config` would load (same module, same shapes, random unit codebook).
    """

    def __init__(self, config: Any, steps_per_epoch: int = 1000, seed: int = 0):
        import jax
        import ml_collections

        from labram_jax.models import factory
        from labram_jax.train import sharding as shd
        from labram_jax.train import step_builder
        from labram_jax.train.stages import make_stage
        from labram_jax.train.stages.pretrain import PretrainStage

        self.config = config
        if config.stage == "pretrain":
            # A random tokenizer of the configured size stands in for the checkpoint a run would load.
            tokenizer = factory.tokenizer_model(ml_collections.ConfigDict({"tokenizer": stand_in_tokenizer(config)}))
            self.stage = stage = PretrainStage(config, tokenizer)
        else:
            self.stage = stage = make_stage(config)
        self.mesh = shd.make_mesh(config.mesh)
        self.rules = shd.rules_of(config)
        shd.check_batch(config.optim.batch_size, config.optim.grad_accum_steps, self.mesh)
        with self.context():
            setup = step_builder.build_state(config, stage, self.mesh, self.rules, steps_per_epoch)
            self.state = setup.init_state(setup.init_rng)
            self.frozen = self._frozen(jax.random.fold_in(jax.random.PRNGKey(config.seed), 7))
            self.jitted = step_builder.jit_train_step(config, stage, setup, self.mesh, self.frozen)
            self.batch = shd.global_batch(synthetic_batch(config, seed), self.mesh)
        self.compiled: Any = None
        self.param_count = int(sum(x.size for x in jax.tree.leaves(self.state.params)))
        self.device = jax.devices()[0]

    def context(self):
        """The mesh and logical-axis rules the Trainer traces and runs under."""
        import contextlib

        import flax.linen as nn
        import jax

        stack = contextlib.ExitStack()
        stack.enter_context(jax.set_mesh(self.mesh))
        stack.enter_context(nn.logical_axis_rules(self.rules))
        return stack

    def _frozen(self, key: Any) -> Any:
        if self.stage.kind != "pretrain":
            return None
        import flax.linen as nn
        import jax
        import jax.numpy as jnp

        from labram_jax.models import factory
        from labram_jax.models.quantizer import COLLECTION
        from labram_jax.train import sharding as shd

        init = factory.init_fn(self.stage.tokenizer, self.stage.example_batch())
        shardings = shd.shardings_of(jax.eval_shape(init, key), self.mesh, self.rules)
        variables = jax.jit(lambda k: nn.meta.unbox(init(k)), out_shardings=shardings)(key)
        # A trained tokenizer's codebook holds unit vectors (k-means init leaves zeros until training).
        quantize = dict(variables[COLLECTION]["quantize"])
        book = quantize["codebook"]
        unit = jax.random.normal(jax.random.fold_in(key, 1), book.shape, book.dtype)
        quantize["codebook"] = jax.device_put(unit / jnp.linalg.norm(unit, axis=-1, keepdims=True), book.sharding)
        variables = {**variables, COLLECTION: {**variables[COLLECTION], "quantize": quantize}}
        return variables

    def compile(self) -> dict[str, float]:
        """Ahead-of-time lower + compile (timed); `step()` then runs this executable."""
        with self.context():
            t0 = time.perf_counter()
            lowered = self.jitted.lower(self.state, self.batch, self.frozen)
            t1 = time.perf_counter()
            self.compiled = lowered.compile()
            t2 = time.perf_counter()
        return {"lower_s": t1 - t0, "compile_s": t2 - t1}

    def step(self) -> Any:
        self.state, metrics = self.compiled(self.state, self.batch, self.frozen)
        return metrics

    def timed_step(self) -> tuple[float, Any]:
        import jax

        t0 = time.perf_counter()
        metrics = self.step()
        jax.block_until_ready((self.state, metrics))
        return time.perf_counter() - t0, metrics


def tokens_per_example(config: Any) -> int:
    return int(config.data.max_channels * config.data.max_patches)


def measure(bench: StepBench, steps: int, warmup: int = 1) -> dict[str, Any]:
    """Compile, warm up (the first step is timed separately), then `steps` timed steps."""
    import jax

    log(f"compiling {bench.config.stage} ({bench.param_count / 1e6:.2f} M params) ...")
    out: dict[str, Any] = bench.compile()
    out["flops_per_step"] = flops_of(bench.compiled)
    out["xla_temp_bytes"] = temp_bytes_of(bench.compiled)
    first, metrics = bench.timed_step()
    out["first_step_s"] = first
    for _ in range(max(warmup - 1, 0)):
        bench.timed_step()
    faults0 = page_faults()
    times = []
    with CpuMonitor() as cpu:
        for i in range(steps):
            dt, metrics = bench.timed_step()
            times.append(dt)
            log(f"  step {i + 1}/{steps}: {dt:.3f} s")
    faults = page_faults() - faults0
    out["cpu_during_timed_steps"] = cpu.result
    values = {k: float(v) for k, v in jax.device_get(metrics).items()}
    med = statistics.median(times)
    b = bench.config.optim.batch_size
    out.update(
        {
            "step_s": med,
            "step_s_all": [round(t, 4) for t in times],
            "step_s_min": min(times),
            "steps_per_s": 1.0 / med,
            "samples_per_s": b / med,
            "tokens_per_s": b * tokens_per_example(bench.config) / med,
            "page_faults_per_step": faults / steps,
            "loss": values.get("loss"),
        }
    )
    return out


def model_flops(xla: float | None, analytic: float) -> tuple[float, str]:
    """The FLOPs to rate a computation by, and where they come from: XLA's cost analysis, unless it counts
    less than the matmuls of the model's shapes (XLA:GPU leaves library calls, cuBLAS GEMMs and cuDNN
    attention, out of its count), then the analytic matmul count."""
    if xla and xla >= 0.9 * analytic:
        return xla, "xla_cost_analysis"
    return analytic, "analytic_matmuls"


def timed_blocks(fns: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Interleaves A B A B ...: each round calls every fn once (each returns its own block time)."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            out[name].append(fn())
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in out.items()))
    return out
