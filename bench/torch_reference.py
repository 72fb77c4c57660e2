"""Our train step against a PyTorch LaBraM (braindecode's `Labram`) on the same machine, interleaved.

    python -m bench.torch_reference [--configs=finetune_base,pretrain_base] [--rounds=3] [--block=2]
                                    [--batch=16 --channels=23 --seconds=10] [--dtype=bfloat16]
                                    [--amp=bf16|fp16] [--smoke]

Each configuration runs in a fresh subprocess that builds both steps on the same synthetic batch, then
alternates blocks of `--block` steps: ours, theirs, ours, theirs ... (`--rounds` pairs after one warm-up
block each), and reports the per-step median of each and the ratio ours / theirs (< 1: we are faster).

* `finetune_*`: braindecode `Labram` (mean pooling, one output, drop path as the recipe), AdamW with
  decay / no-decay groups, binary cross-entropy on one logit (our TUAB task), the same batch.
* `pretrain_*`: braindecode has no pre-training model, so this is a COST-EQUIVALENT reference built from
  braindecode's Labram pieces, not the official code: a tokenizer-sized encoder (12 blocks of width 200,
  q/v bias, no qk-norm, no layer scale) under `no_grad`, its 2-layer task head and the nearest code in an
  8192 x 64 l2-normalised codebook (on CUDA under `--amp` autocast, the task head in float32, as the
  official engine runs its tokenizer); then the student's symmetric masking: two forwards of the Base backbone
  (mask token in the masked / the complementary 50 % of tokens) with an 8192-way linear head on the
  hidden tokens of each pass, cross-entropy, one backward, AdamW with gradient clipping at 3.
* torch uses all available cores (`torch.set_num_threads`, or `--torch_threads`; 1 under --smoke); on CUDA
  `--amp` autocasts to fp16 / bf16. `cpu_during_rounds.others_cores_busy` tells whether other jobs shared
  the CPU while the rounds ran (torch's OpenMP threads suffer more from that than XLA's).

Also reports braindecode Labram's parameter count against ours and the official Base classifier.
braindecode 1.8 imports torchaudio; where the installed torchaudio cannot load (a CUDA build next to the
CPU torch), a stand-in module is registered so that `Labram`, which never uses torchaudio, imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

DEFAULT_CONFIGS = ("finetune_base", "pretrain_base")
TORCH_SIZES = {  # braindecode Labram arguments of each size (ref. §3.1; layer-scale init from Table 4)
    "base": dict(embed_dim=200, num_layers=12, num_heads=10, conv_out_channels=8, init_values=0.1),
    "large": dict(embed_dim=400, num_layers=24, num_heads=16, conv_out_channels=16, init_values=1e-5),
    "huge": dict(embed_dim=800, num_layers=48, num_heads=16, conv_out_channels=32, init_values=1e-6),
}
SMOKE_SIZE = dict(embed_dim=100, num_layers=1, num_heads=4, conv_out_channels=4, init_values=0.1)
TOKENIZER = dict(
    embed_dim=200, num_layers=12, num_heads=10, conv_out_channels=8, init_values=0.0, qkv_bias=True, qk_norm=None
)
SMOKE_TOKENIZER = dict(SMOKE_SIZE, init_values=0.0, qkv_bias=True, qk_norm=None)


def _stub_torchaudio() -> None:
    """Registers a stand-in `torchaudio` (attributes exist; using them raises)."""
    import importlib.machinery
    import types

    import torch

    def missing(*_, **__):
        raise RuntimeError("torchaudio could not be loaded; this benchmark registered a stand-in")

    def module(name: str) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)

        def getattr_(attr: str):
            if attr.startswith("__"):
                raise AttributeError(attr)
            if attr[:1].isupper():  # classes that modules subclass at import time
                return type(attr, (torch.nn.Module,), {"__init__": missing})
            return missing

        mod.__getattr__ = getattr_
        return mod

    root = module("torchaudio")
    for sub in ("functional", "transforms"):
        setattr(root, sub, module(f"torchaudio.{sub}"))
        sys.modules[f"torchaudio.{sub}"] = getattr(root, sub)
    sys.modules["torchaudio"] = root


def import_labram():
    """braindecode's `Labram` class and its channel order (see the module docstring for torchaudio)."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError) as err:
        common.log(f"torchaudio does not load ({type(err).__name__}); using a stand-in (Labram does not use it)")
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        _stub_torchaudio()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from braindecode.models import labram as bd
    return bd.Labram, bd.LABRAM_CHANNEL_ORDER


def torch_device(name: str | None = None):
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def setup_threads(n: int | None = None) -> int:
    """torch intra-op threads: `n`, default every core this process may use."""
    import torch

    n = n or common.cpu_count()
    torch.set_num_threads(n)
    return n


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_labram(
    size_kwargs: dict, *, channels: int, seconds: int, n_outputs: int, drop_path: float = 0.0, mean_pooling: bool = True
):
    Labram, order = import_labram()
    kwargs = {k: v for k, v in size_kwargs.items()}
    model = Labram(
        n_times=seconds * 200,
        n_chans=channels,
        n_outputs=n_outputs,
        chs_info=None,
        use_mean_pooling=mean_pooling,
        drop_path_prob=drop_path,
        **kwargs,
    )
    return model, list(order[:channels])


def adamw(model_params, lr: float, betas, weight_decay: float):
    """AdamW with the reference's groups: no decay for 1-D tensors and the embeddings / tokens."""
    import torch

    decay, no_decay = [], []
    for name, p in model_params:
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(".bias") or any(k in name for k in ("token", "embedding"))
        (no_decay if skip else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas
    )


class TorchFinetune:
    """braindecode Labram fine-tuning step: forward, BCE on one logit, backward, AdamW."""

    def __init__(
        self, size: str, batch: int, channels: int, seconds: int, *, smoke: bool = False, amp: str = "none", device=None
    ):
        import torch

        self.device = torch_device(device)
        size_kwargs = SMOKE_SIZE if smoke else TORCH_SIZES[size]
        model, self.ch_names = build_labram(size_kwargs, channels=channels, seconds=seconds, n_outputs=1, drop_path=0.1)
        self.model = model.to(self.device).train()
        self.opt = adamw(self.model.named_parameters(), 5e-4, (0.9, 0.999), 0.05)
        g = torch.Generator().manual_seed(0)
        # The official engines feed µV / 100; the scale does not change the cost.
        self.x = (0.3 * torch.randn(batch, channels, seconds * 200, generator=g)).to(self.device)
        self.y = torch.randint(0, 2, (batch,), generator=g).float().to(self.device)
        self.loss_fn = torch.nn.BCEWithLogitsLoss()
        self.amp = amp
        self.param_count = sum(p.numel() for p in self.model.parameters())

    def _autocast(self):
        import contextlib

        import torch

        if self.amp == "none" or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def step(self) -> float:
        with self._autocast():
            out = self.model(self.x, ch_names=self.ch_names)[:, 0]
            loss = self.loss_fn(out.float(), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


class TorchPretrain(TorchFinetune):
    """Cost-equivalent masked-EEG-modeling step (see the module docstring): not the official code."""

    def __init__(
        self,
        size: str,
        batch: int,
        channels: int,
        seconds: int,
        *,
        smoke: bool = False,
        amp: str = "none",
        device=None,
        num_codes: int | None = None,
        code_dim: int | None = None,
        mask_ratio: float = 0.5,
    ):
        import torch

        self.device = torch_device(device)
        self.amp = amp
        num_codes = num_codes or (16 if smoke else 8192)
        code_dim = code_dim or (8 if smoke else 64)
        student, self.ch_names = build_labram(
            SMOKE_SIZE if smoke else TORCH_SIZES[size],
            channels=channels,
            seconds=seconds,
            n_outputs=0,
            mean_pooling=False,
        )
        tokenizer, _ = build_labram(
            SMOKE_TOKENIZER if smoke else TOKENIZER, channels=channels, seconds=seconds, n_outputs=0, mean_pooling=False
        )
        width, tok_width = student.embed_dim, tokenizer.embed_dim
        self.student = student.to(self.device).train()
        self.tokenizer = tokenizer.to(self.device).eval().requires_grad_(False)
        task_layer = torch.nn.Sequential(
            torch.nn.Linear(tok_width, tok_width), torch.nn.Tanh(), torch.nn.Linear(tok_width, code_dim)
        )
        self.task_layer = task_layer.to(self.device).requires_grad_(False)
        book = torch.randn(num_codes, code_dim)
        self.codebook = torch.nn.functional.normalize(book, dim=-1).to(self.device)
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, width, device=self.device))
        self.lm_head = torch.nn.Linear(width, num_codes).to(self.device)
        params = (
            list(self.student.named_parameters())
            + [("mask_token", self.mask_token)]
            + [("lm_head." + n, p) for n, p in self.lm_head.named_parameters()]
        )
        self.trainable = [p for _, p in params]
        self.opt = adamw(params, 5e-4, (0.9, 0.98), 0.05)
        g = torch.Generator().manual_seed(0)
        self.x = (0.3 * torch.randn(batch, channels, seconds * 200, generator=g)).to(self.device)
        self.input_chans = torch.tensor([0] + [i + 1 for i in range(channels)], device=self.device)
        self.tokens = channels * seconds
        self.mask_ratio = mask_ratio
        self.param_count = sum(p.numel() for p in self.trainable)

    def _codes(self):
        import torch

        # The official engine runs the tokenizer under autocast too; its task layer stays float32 (ref. §4.2, §5.3).
        with torch.no_grad():
            with self._autocast():
                h = self.tokenizer.forward_features(self.x, self.input_chans, return_patch_tokens=True)
            z = torch.nn.functional.normalize(self.task_layer(h.float()), dim=-1)
            return torch.argmax(z @ self.codebook.t(), dim=-1)  # nearest unit code

    def _student(self, masked):
        """Labram.forward_features with the mask token in the masked tokens (the official student)."""
        import torch

        m = self.student
        b = self.x.shape[0]
        h = m.patch_embed(self.x)
        h = torch.where(masked[..., None], self.mask_token.to(h.dtype).expand_as(h), h)
        h = torch.cat([m.cls_token.expand(b, -1, -1), h], dim=1)
        h = h + m._adj_position_embedding(m.position_embedding[:, self.input_chans], b)
        h = torch.cat([h[:, :1], h[:, 1:] + m._adj_temporal_embedding(self.x.shape[1], b, m.embed_dim)], dim=1)
        for blk in m.blocks:
            h = blk(h)
        return m.norm(h)[:, 1:]

    def step(self) -> float:
        import torch

        b = self.x.shape[0]
        codes = self._codes()
        order = torch.rand(b, self.tokens, device=self.device).argsort(dim=1)
        masked = torch.zeros(b, self.tokens, dtype=torch.bool, device=self.device)
        masked.scatter_(1, order[:, : int(self.tokens * self.mask_ratio)], True)
        with self._autocast():
            loss = 0.0
            for hidden_where in (masked, ~masked):  # symmetric masking: two passes
                h = self._student(hidden_where)
                logits = self.lm_head(h[hidden_where])
                loss = loss + torch.nn.functional.cross_entropy(logits.float(), codes[hidden_where])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, 3.0)
        self.opt.step()
        return float(loss.detach())


def torch_step(name: str, shape: dict, *, smoke: bool, amp: str):
    stage, size = common.parse_name(name)
    cls = TorchFinetune if stage == "finetune" else TorchPretrain
    return cls(size, shape["batch"], shape["channels"], shape["seconds"], smoke=smoke, amp=amp)


def param_counts(smoke: bool) -> dict:
    """braindecode Labram (6 outputs, 16-s temporal table) vs ours vs the official Base classifier."""
    from configs import finetune_tuab
    from labram_jax.models import factory, official_names

    channels = 23
    model, _ = build_labram(SMOKE_SIZE if smoke else TORCH_SIZES["base"], channels=channels, seconds=16, n_outputs=6)
    bd = sum(p.numel() for p in model.parameters())
    config = finetune_tuab.get_config("base")
    if smoke:
        config.model.update(common.SMOKE_BACKBONE)
    ours = factory.param_count(factory.abstract_variables(factory.classifier_model(config, 6)))
    official = official_names.OFFICIAL_PARAM_COUNTS["labram_base_patch200_200"]
    width = model.embed_dim
    # The official tables: pos_embed (1, 129, d), time_embed (1, 16, d).
    rows = (model.position_embedding.shape[1] - 129) + (model.temporal_embedding.shape[1] - 16)
    return {
        "braindecode_labram": bd,
        "ours": ours,
        "official_base_classifier": None if smoke else official,
        "head_outputs": 6,
        "braindecode_position_embedding": list(model.position_embedding.shape),
        "braindecode_temporal_embedding": list(model.temporal_embedding.shape),
        "braindecode_minus_embedding_row_difference": bd - rows * width,
        "note": "official: pos_embed (1, 129, d), time_embed (1, 16, d); braindecode sizes its tables by "
        "its channel list and n_times / 200 + 1",
    }


def run_one(name: str, args) -> dict:
    import jax
    import torch

    threads = setup_threads(args.torch_threads)
    shape = common.shape_of(args)
    config = common.bench_config(name, dtype=args.dtype, smoke=args.smoke, **shape)
    ours = common.StepBench(config)
    compile_info = ours.compile()
    theirs = torch_step(name, shape, smoke=args.smoke, amp=args.amp)

    def ours_block() -> float:
        t0 = time.perf_counter()
        for _ in range(args.block):
            metrics = ours.step()
        jax.block_until_ready((ours.state, metrics))
        return (time.perf_counter() - t0) / args.block

    def theirs_block() -> float:
        t0 = time.perf_counter()
        for _ in range(args.block):
            theirs.step()
        synchronize(theirs.device)
        return (time.perf_counter() - t0) / args.block

    common.log(f"{name}: warm-up block of each (ours compiled in {compile_info['compile_s']:.1f} s)")
    warm = {"ours": ours_block(), "theirs": theirs_block()}
    with common.CpuMonitor() as cpu:
        times = common.timed_blocks({"ours": ours_block, "theirs": theirs_block}, args.rounds)
    ratios = [a / b for a, b in zip(times["ours"], times["theirs"])]
    ours_s, theirs_s = statistics.median(times["ours"]), statistics.median(times["theirs"])
    b = shape["batch"]
    return {
        "config": name,
        **shape,
        "dtype": args.dtype,
        "torch_amp": args.amp,
        "rounds": args.rounds,
        "block_steps": args.block,
        "torch_threads": threads,
        "torch_device": str(theirs.device),
        "jax_device": ours.device.device_kind,
        "ours_step_s": ours_s,
        "theirs_step_s": theirs_s,
        "ratio_ours_over_theirs": ours_s / theirs_s,
        "ratio_median_of_rounds": statistics.median(ratios),
        "ours_samples_per_s": b / ours_s,
        "theirs_samples_per_s": b / theirs_s,
        "ours_block_s": times["ours"],
        "theirs_block_s": times["theirs"],
        "warmup_block_s": warm,
        "ours_param_count": ours.param_count,
        "theirs_param_count": theirs.param_count,
        "ours_compile_s": compile_info["compile_s"],
        "torch_version": torch.__version__,
        "load_average_1_5_15": common.load_average(),
        "cpu_during_rounds": cpu.result,
        "reference": "braindecode Labram"
        if name.startswith("finetune")
        else "cost-equivalent pre-training step from braindecode Labram pieces (not official code)",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="comma-separated config names")
    parser.add_argument("--rounds", type=int, default=None, help="timed A/B rounds (default 3; smoke 1)")
    parser.add_argument("--block", type=int, default=None, help="steps per block (default 2; smoke 1)")
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"), help="torch autocast (CUDA)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--inprocess", action="store_true", help="no subprocess per config (default under --smoke)")
    parser.add_argument(
        "--torch_threads",
        type=int,
        default=None,
        help="torch threads (default: the available cores; smoke: 1, as tiny ops on a shared "
        "2-core machine slow down many times with 2 threads when another job runs)",
    )
    common.add_shape_args(parser)
    args = parser.parse_args(argv)
    args.inprocess = args.inprocess or args.smoke
    args.torch_threads = args.torch_threads or (1 if args.smoke else None)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.block = args.block or (1 if args.smoke else 2)
    common.smoke_env(args)
    if not common.have("braindecode"):
        common.emit(
            {"benchmark": "torch_reference", "skipped": "braindecode is not installed (pip install -e '.[bench]')"}
        )
        return
    if args.one:
        common.emit(run_one(args.one, args))
        return
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    for name in names:
        common.parse_name(name)
    passthrough = [f"--rounds={args.rounds}", f"--block={args.block}", f"--dtype={args.dtype}", f"--amp={args.amp}"]
    passthrough += [f"--torch_threads={args.torch_threads}"] if args.torch_threads else []
    passthrough += [f"--{k}={getattr(args, k)}" for k in ("batch", "channels", "seconds") if getattr(args, k)]
    passthrough += ["--smoke"] if args.smoke else []
    results = {}
    for name in names:
        results[name] = r = (
            run_one(name, args)
            if args.inprocess
            else common.run_module("bench.torch_reference", ["--one", name, *passthrough])
        )
        if "error" not in r:
            common.log(
                f"{name}: ours {r['ours_step_s']:.3f} s/step, torch {r['theirs_step_s']:.3f} s/step, "
                f"ours/theirs {r['ratio_ours_over_theirs']:.2f}"
            )
    common.emit(
        {
            "benchmark": "torch_reference",
            "machine": common.machine_info(),
            "settings": {
                "configs": names,
                "rounds": args.rounds,
                "block": args.block,
                "dtype": args.dtype,
                "amp": args.amp,
                "smoke": args.smoke,
                "isolated_processes": not args.inprocess,
                **common.shape_of(args),
            },
            "param_counts": param_counts(args.smoke),
            "results": results,
        }
    )


if __name__ == "__main__":
    common.run_main(main)
