"""How the fine-tuning step scales with the tokens per example and with the model, and attention's share.

    python -m bench.scaling [--points=16x4,16x8,32x8,64x8] [--sizes=base,large] [--batch=16] [--steps=3]
                            [--dtype=bfloat16] [--inprocess] [--smoke]

`--points` are `channels x seconds` shapes of the Base fine-tuning step (64, 128, 256, 512 tokens by
default) at a fixed batch; `--sizes` run the step at the fine-tuning shape 23 x 10 (huge is added on an
accelerator). Each point is `python -m bench.train_step --one ...` in a fresh process. For every point the
attention core, `labram_jax.ops.attention.softmax_attention` as our `Attention` calls it (scores, softmax, weighted sum;
not the qkv / output projections), is compiled alone at that point's shape, forward + backward, and
counted `depth` times: `attention_flop_share` is its FLOPs over the step's (XLA's counts; the analytic
matmul counts where XLA counts less, as on GPU), `attention_time_share` its measured time over the
step's. Where the shares pass ~0.5 attention dominates the step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

DEFAULT_POINTS = "16x4,16x8,32x8,64x8"
SMOKE_POINTS = "2x2,2x4"


def attention_core(config, reps: int = 3) -> dict:
    """FLOPs and seconds of one step's attention cores (forward + backward) x depth, for `config`."""
    import jax
    import jax.numpy as jnp

    from labram_jax.models import factory
    from labram_jax.ops.attention import softmax_attention

    spec = factory.transformer_spec(config.model, "finetune")
    b, t = config.optim.batch_size, common.tokens_per_example(config) + 1  # + cls
    shape = (b, t, spec.num_heads, spec.head_dim)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v, g = (jax.random.normal(key, shape, spec.dtype) for key in keys)
    key_mask = jnp.ones((b, t), bool)

    def loss(q, k, v):
        out = softmax_attention(q, k, v, key_mask, scale=spec.head_dim**-0.5)
        return jnp.sum((out * g).astype(jnp.float32))

    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))).lower(q, k, v).compile()
    jax.block_until_ready(compiled(q, k, v))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(q, k, v))
        times.append(time.perf_counter() - t0)
    xla = common.flops_of(compiled)
    # q.k and p.v: 2 x 2 T^2 d per example forward; forward + backward = 3 x forward.
    flops, source = common.model_flops(
        None if xla is None else xla * spec.depth, 3.0 * 4 * b * t * t * spec.width * spec.depth
    )
    return {
        "attention_core_flops_per_step": flops,
        "attention_flops_source": source,
        "attention_core_s_per_step": statistics.median(times) * spec.depth,
        "attention_shape_bthd": list(shape),
        "depth": spec.depth,
        "width": spec.width,
    }


def run_point(name: str, channels: int, seconds: int, args) -> dict:
    step_args = types.SimpleNamespace(
        smoke=args.smoke,
        batch=args.batch,
        channels=channels,
        seconds=seconds,
        dtype=args.dtype,
        steps=args.steps,
        warmup=1,
    )
    if args.inprocess:
        from bench import train_step

        row = train_step.run_one(name, step_args)
    else:
        flags = [
            "--one",
            name,
            f"--channels={channels}",
            f"--seconds={seconds}",
            f"--steps={args.steps}",
            "--warmup=1",
            f"--dtype={args.dtype}",
        ] + ([f"--batch={args.batch}"] if args.batch else [])
        row = common.run_module("bench.train_step", flags + (["--smoke"] if args.smoke else []))
    if "error" in row:
        return row
    shape = common.shape_of(step_args)
    config = common.bench_config(name, dtype=args.dtype, smoke=args.smoke, **shape)
    row.update(attention_core(config))
    row["attention_flop_share"] = row["attention_core_flops_per_step"] / row["model_flops_per_step"]
    row["attention_time_share"] = row["attention_core_s_per_step"] / row["step_s"]
    keep = (
        "config",
        "size",
        "batch",
        "channels",
        "seconds",
        "tokens_per_example",
        "dtype",
        "param_count",
        "step_s",
        "samples_per_s",
        "tokens_per_s",
        "model_flops_per_step",
        "model_flops_source",
        "achieved_flops_per_s",
        "utilization",
        "attention_flops_source",
        "peak_memory_bytes",
        "page_faults_per_step",
        "compile_s",
        "attention_core_flops_per_step",
        "attention_core_s_per_step",
        "attention_flop_share",
        "attention_time_share",
        "attention_shape_bthd",
        "depth",
        "width",
        "cpu_during_timed_steps",
    )
    return {k: row[k] for k in keep if k in row}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", default=None, help=f"channels x seconds list (default {DEFAULT_POINTS})")
    parser.add_argument("--sizes", default=None, help="model sizes at 23 x 10 (default base,large; +huge on GPU)")
    parser.add_argument("--batch", type=int, default=None, help="fixed batch (default 16; smoke 2)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per point (default 3; smoke 1)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--inprocess", action="store_true", help="no subprocess per point (default under --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, two token points, one size")
    args = parser.parse_args(argv)
    args.steps = args.steps or (1 if args.smoke else 3)
    args.inprocess = args.inprocess or args.smoke
    common.smoke_env(args)
    points = [
        tuple(int(x) for x in p.lower().split("x"))
        for p in (args.points or (SMOKE_POINTS if args.smoke else DEFAULT_POINTS)).split(",")
    ]
    machine = common.machine_info()
    if args.sizes:
        sizes = args.sizes.split(",")
    elif args.smoke:
        sizes = ["base"]
    else:
        sizes = ["base", "large"] + (["huge"] if machine.get("jax_platform") != "cpu" else [])
    fine = common.shape_of(types.SimpleNamespace(smoke=args.smoke, batch=None, channels=None, seconds=None))

    rows: dict[tuple, dict] = {}  # a point in both tables runs once

    def point(name: str, channels: int, seconds: int) -> dict:
        if (name, channels, seconds) not in rows:
            common.log(f"{name} at {channels} x {seconds} = {channels * seconds} tokens per example")
            rows[name, channels, seconds] = run_point(name, channels, seconds, args)
        return rows[name, channels, seconds]

    tokens = [point("finetune_base", c, s) for c, s in points]
    models = [point(f"finetune_{size}", fine["channels"], fine["seconds"]) for size in sizes]
    common.emit(
        {
            "benchmark": "scaling",
            "machine": machine,
            "settings": {
                "points": [f"{c}x{s}" for c, s in points],
                "sizes": sizes,
                "steps": args.steps,
                "batch": args.batch or fine["batch"],
                "dtype": args.dtype,
                "smoke": args.smoke,
                "isolated_processes": not args.inprocess,
            },
            "tokens": tokens,
            "models": models,
        }
    )


if __name__ == "__main__":
    common.run_main(main)
