"""Training-step throughput of the real jitted step: fine-tuning (Base, Large) and masked EEG pre-training.

    python -m bench.train_step [--configs=finetune_base,finetune_large,pretrain_base] [--steps=5]
                               [--warmup=2] [--batch=16 --channels=23 --seconds=10] [--dtype=bfloat16]
                               [--inprocess] [--smoke]

Each configuration runs in a fresh subprocess (`--one NAME`), so peak memory and page faults do not mix.
A configuration is `<stage>_<size>`: `finetune_*` is the TUAB fine-tuning recipe (BCE on one logit, AdamW
with layer decay, drop path), `pretrain_*` masked EEG modeling with the frozen tokenizer in the step
(random weights; symmetric masking). Per configuration the JSON holds:

* `compile_s` (XLA compile of the step, after `lower_s`), `first_step_s`;
* `step_s` (median of the timed steps, each ended by `jax.block_until_ready`), `samples_per_s`,
  `tokens_per_s` (tokens = channels x seconds x batch);
* `flops_per_step` (XLA cost analysis of the compiled step), `flops_per_step_analytic` (matmul count:
  3 x forward), `achieved_flops_per_s`, `peak_matmul_flops_per_s` (a jitted `jnp.dot`, fp32 2048^3 on CPU,
  bf16 8192^3 on GPU, same process) and `utilization` = achieved / peak;
* `peak_memory_bytes` (CPU: the process's peak RSS; GPU: `peak_bytes_in_use`), `page_faults_per_step`
  (minor faults during the timed steps), `xla_temp_bytes`, `param_count`, `loss`.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common


def analytic_flops(config) -> float:
    """Matmul FLOPs of one step: 3 x the forward (backward = 2 x forward), per the model's shapes."""
    from labram_jax.models import factory

    b, n = config.optim.batch_size, common.tokens_per_example(config)
    spec = factory.transformer_spec(config.model, "finetune")

    def encoder(width: int, depth: int, mlp: int, tokens: int) -> float:
        # qkv + proj + fc1 + fc2, and q.k / p.v over all tokens (cls included).
        return depth * (2 * tokens * width * (4 * width + 2 * mlp) + 4 * tokens * tokens * width)

    student = encoder(spec.width, spec.depth, spec.mlp_dim, n + 1)
    if config.stage == "finetune":
        return 3.0 * b * student
    tok = common.stand_in_tokenizer(config)
    vocab = tok.num_codes
    tokenizer = encoder(tok.width, tok.encoder_depth, 4 * tok.width, n + 1) + 2 * n * tok.code_dim * vocab
    # Two student passes (masked, symmetric) + the vocabulary head on every token, trained; the tokenizer
    # forward only.
    return b * (3.0 * (2 * student + 2 * n * spec.width * vocab) + tokenizer)


def run_one(name: str, args) -> dict:
    shape = common.shape_of(args)
    config = common.bench_config(name, dtype=args.dtype, smoke=args.smoke, **shape)
    bench = common.StepBench(config)
    result = {
        "config": name,
        "stage": config.stage,
        "size": config.model.size,
        **shape,
        "tokens_per_example": common.tokens_per_example(config),
        "dtype": args.dtype,
        "param_count": bench.param_count,
        "device": bench.device.device_kind,
        "platform": bench.device.platform,
    }
    result.update(common.measure(bench, steps=args.steps, warmup=args.warmup))
    result["flops_per_step_analytic"] = analytic_flops(config)
    flops, source = common.model_flops(result["flops_per_step"], result["flops_per_step_analytic"])
    result.update(model_flops_per_step=flops, model_flops_source=source, achieved_flops_per_s=flops / result["step_s"])
    result.update(common.peak_matmul(bench.device, n=512 if args.smoke else None))
    result["utilization"] = result["achieved_flops_per_s"] / result["peak_matmul_flops_per_s"]
    result.update(common.peak_memory(bench.device))
    result["load_average_1_5_15"] = common.load_average()
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--configs",
        default=None,
        help="comma-separated <finetune|pretrain>_<base|large|huge> (default: finetune_base, "
        "finetune_large, pretrain_base; smoke: no finetune_large, the same tiny model)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5; smoke 1)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (the first included)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--inprocess", action="store_true", help="run the configurations in this process")
    common.add_shape_args(parser)
    args = parser.parse_args(argv)
    args.steps = args.steps or (1 if args.smoke else 5)
    if args.smoke:
        args.warmup = 1
    common.smoke_env(args)

    if args.one:
        common.emit(run_one(args.one, args))
        return
    configs = args.configs or ",".join(n for n in common.CONFIGS if not (args.smoke and n == "finetune_large"))
    names = [n.strip() for n in configs.split(",") if n.strip()]
    for name in names:
        common.parse_name(name)
    passthrough = [f"--steps={args.steps}", f"--warmup={args.warmup}", f"--dtype={args.dtype}"]
    passthrough += [f"--{k}={getattr(args, k)}" for k in ("batch", "channels", "seconds") if getattr(args, k)]
    passthrough += ["--smoke"] if args.smoke else []
    results = {}
    for name in names:
        if args.inprocess:
            results[name] = run_one(name, args)
        else:
            results[name] = common.run_module("bench.train_step", ["--one", name, *passthrough])
        r = results[name]
        if "error" not in r:
            common.log(
                f"{name}: {r['step_s']:.3f} s/step, {r['samples_per_s']:.1f} samples/s, "
                f"utilization {r.get('utilization', float('nan')):.1%}, "
                f"peak memory {r['peak_memory_bytes'] / 2**30:.2f} GiB"
            )
    common.emit(
        {
            "benchmark": "train_step",
            "machine": common.machine_info(),
            "settings": {
                "configs": names,
                "steps": args.steps,
                "warmup": args.warmup,
                "dtype": args.dtype,
                "smoke": args.smoke,
                "isolated_processes": not args.inprocess,
                **common.shape_of(args),
            },
            "results": results,
        }
    )


if __name__ == "__main__":
    common.run_main(main)
