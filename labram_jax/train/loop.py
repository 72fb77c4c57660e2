"""The one training loop. Each stage (`labram_jax.train.stages`) supplies its model, loss and metrics.

config -> datasets -> mesh + shardings -> state (fresh, pre-trained parts, or resumed) -> jitted steps
-> metrics (JSONL, TensorBoard, progress bar) -> Orbax checkpoints -> evaluation -> plots, results.json
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from labram_jax import checkpoints
from labram_jax.checkpoints import restore_on_mesh
from labram_jax.checkpoints.managers import RunCheckpoints
from labram_jax.config_errors import ConfigError
from labram_jax.train import datasets as train_data
from labram_jax.train import seeds, step_builder, task_from_data
from labram_jax.train import sharding as shd
from labram_jax.train.cadence import Cadences
from labram_jax.train.metric_writers import MetricWriter, read_metrics
from labram_jax.train.plots import write_stage_plots
from labram_jax.train.preemption import Preempted, PreemptionWatch
from labram_jax.train.stages import make_stage
from labram_jax.train.stages.base import Stage
from labram_jax.train.stages.tokenizer import resolve_continuous_steps
from labram_jax.train.state import TrainState

RESULTS_FILE = "results.json"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


def _is_primary() -> bool:
    return jax.process_index() == 0


class Trainer:
    """Sets up one stage on the mesh; `fit()` trains, evaluates and writes the stage's outputs."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str):
        # "auto" task fields (configs/finetune_custom.py) come from the dataset before any model is built.
        self.config = config = task_from_data.resolve(config)
        self.workdir = os.path.abspath(os.path.expanduser(workdir))
        # Data first: on a fresh machine the first thing to tell a user is which dataset to build.
        self.train_sources = train_data.sources(config, "train") if config.stage != "evaluate" else []
        self.eval_sources = {which: train_data.sources(config, which) for which in ("validation", "test")}
        if config.stage == "evaluate" and not any(self.eval_sources.values()):
            raise ConfigError("config.data.validation and config.data.test are both empty: nothing to evaluate")
        optim = config.optim
        self.steps_per_epoch = train_data.steps_per_epoch(config, self.train_sources) if self.train_sources else 0
        # Step counts given in epochs become steps before the model is built (and stored in its checkpoint).
        self.config = config = resolve_continuous_steps(config, self.steps_per_epoch)
        self.stage: Stage = make_stage(config)
        self.stage.check_ready()
        self.total_steps = optim.epochs * self.steps_per_epoch
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.mesh = shd.make_mesh(config.mesh)
        self.rules = shd.rules_of(config)
        shd.check_batch(optim.batch_size, optim.grad_accum_steps, self.mesh)
        self.eval_batch = train_data.eval_batch_size(config)
        shd.check_batch(self.eval_batch, 1, self.mesh, field="config.data.eval_batch_size")
        if config.stage == "evaluate":  # a trained model on the mesh; no optimiser, no train state
            self.param_shardings, self.extra_shardings = step_builder.variable_shardings(
                config, self.stage, self.mesh, self.rules
            )
        else:
            self._build_state_functions()

    # -- state -------------------------------------------------------------------------------------
    def _build_state_functions(self) -> None:
        setup = step_builder.build_state(self.config, self.stage, self.mesh, self.rules, self.steps_per_epoch)
        self.setup = setup
        self.init_rng, self.abstract_state = setup.init_rng, setup.abstract_state
        self.state_shardings, self.init_state = setup.state_shardings, setup.init_state
        self.param_shardings, self.extra_shardings = setup.state_shardings.params, setup.state_shardings.extra

    def _fresh_state(self) -> tuple[TrainState, str | None]:
        state = self.init_state(self.init_rng)
        params, note = self.stage.restore_pretrained(state.params, self.mesh, self.rules)
        if note is not None:
            state = state.replace(params=jax.device_put(params, self.state_shardings.params))
        return state, note

    # -- compiled functions ------------------------------------------------------------------------
    def _compile(self, frozen: Any, train: bool = True) -> None:
        if train:
            self.train_step = step_builder.jit_train_step(self.config, self.stage, self.setup, self.mesh, frozen)
        self.eval_step = step_builder.jit_eval_step(
            self.stage, self.param_shardings, self.extra_shardings, self.mesh, frozen
        )

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, params: Any, extra: Any, frozen: Any, which: str) -> dict[str, dict[str, Any]]:
        """Metrics of every dataset of `config.data.<which>`: one ordered pass, padding masked out."""
        results = {}
        for label, source in self.eval_sources[which]:
            per_example: dict[str, list[np.ndarray]] = {}
            sums: dict[str, Any] = {}
            valid_all: list[np.ndarray] = []
            for local in train_data.eval_loader(self.config, source, self.eval_batch):
                batch = shd.global_batch({k: local[k] for k in train_data.EVAL_KEYS}, self.mesh)
                outputs, batch_sums = self.eval_step(params, extra, batch, frozen)
                gathered = multihost_utils.process_allgather({**outputs, "valid": batch["valid"]}, tiled=True)
                valid_all.append(np.asarray(gathered.pop("valid")))
                for k, v in gathered.items():
                    per_example.setdefault(k, []).append(np.asarray(v))
                for k, v in jax.device_get(batch_sums).items():
                    sums[k] = sums.get(k, 0) + np.asarray(v, np.float64)
            valid = np.concatenate(valid_all)
            merged = {k: np.concatenate(v)[valid] for k, v in per_example.items()}
            if "index" in merged and len(np.unique(merged["index"])) != len(source):
                raise RuntimeError(
                    f"evaluation of {label} saw {len(np.unique(merged['index']))} distinct examples of {len(source)}"
                )
            metrics = self.stage.summarize(merged, sums)
            results[label] = {"metrics": metrics, "per_example": merged, "sums": sums}
        return results

    # -- the run -----------------------------------------------------------------------------------
    def meta(self, step: int, **extra: Any) -> dict[str, Any]:
        more: dict[str, Any] = {"seed": self.config.seed}
        if self.stage.kind == "finetune":
            more["task"] = checkpoints.task_summary(self.config.task.to_dict())
        if self.stage.kind == "pretrain":
            more["vocab_size"] = self.stage.tokenizer.quantizer_spec.num_codes
        return checkpoints.make_meta(self.stage.kind, self.config, step, **more, **extra)

    def fit(self) -> dict[str, Any]:
        config, stage = self.config, self.stage
        os.makedirs(self.workdir, exist_ok=True)
        if _is_primary():
            with open(os.path.join(self.workdir, "config.json"), "w") as f:
                json.dump(config.to_dict(), f, indent=2, default=str)
        results_path = os.path.join(self.workdir, RESULTS_FILE)
        ckpt = RunCheckpoints(self.workdir, config, stage.monitor())
        writer = MetricWriter(self.workdir, enabled=_is_primary())
        preemption = PreemptionWatch()
        try:
            with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
                frozen = stage.load_frozen(self.mesh, self.rules)
                self._compile(frozen)
                loader = train_data.train_loader(config, self.train_sources)
                start = ckpt.latest_step()
                if start is not None:
                    abstract = shd.abstract_with_shardings(self.abstract_state, self.state_shardings)
                    state = ckpt.restore(abstract, loader, start)
                    print(f"[{config.stage}] resuming from step {start} of {self.total_steps} ({self.workdir})")
                else:
                    state, note = self._fresh_state()
                    if note:
                        print(f"[{config.stage}] initialised {note}")
                if start is not None and start >= self.total_steps and os.path.exists(results_path):
                    print(f"[{config.stage}] already complete ({self.total_steps} steps); results in {results_path}")
                    with open(results_path) as f:
                        return json.load(f)
                state = self._train(state, loader, ckpt, writer, frozen, start or 0, preemption)
                return self._finish(state, ckpt, writer, frozen)
        finally:
            preemption.close()
            ckpt.wait()
            ckpt.close()
            writer.close()

    def _train(
        self,
        state: TrainState,
        loader: Any,
        ckpt: RunCheckpoints,
        writer: MetricWriter,
        frozen: Any,
        start: int,
        preemption: PreemptionWatch,
    ) -> TrainState:
        config = self.config
        cadence = Cadences.from_config(config, self.steps_per_epoch, self.total_steps)
        last_saved = start if start else None
        # The metrics of the step queued last: read one step behind, so the host never waits for the device.
        pending: list[tuple[int, Any]] = []
        window: list[dict[str, float]] = []
        bar = tqdm(
            total=self.total_steps,
            initial=start,
            desc=config.stage,
            unit="step",
            dynamic_ncols=True,
            disable=not _is_primary() or not config.log.progress,
            smoothing=0.1,
        )

        def check(step: int, metrics: Any) -> None:
            values = {k: float(v) for k, v in jax.device_get(metrics).items()}
            if not math.isfinite(values["loss"]):
                where = (
                    f"the last complete checkpoint is step {last_saved} in "
                    f"{os.path.join(self.workdir, checkpoints.LATEST_DIR)}"
                    if last_saved is not None
                    else "no checkpoint was saved yet"
                )
                raise NonFiniteLossError(
                    f"[{config.stage}] loss is {values['loss']} at step {step}; stopping. {where}. Lower "
                    "config.optim.lr, enable config.optim.clip_grad_norm, or use float32 compute "
                    "(config.model.dtype)."
                )
            window.append(values)
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}", refresh=False)
            if cadence.due("log", step):
                write_window(step)

        def write_window(step: int) -> None:
            if window:
                writer.write(step, "train", {k: float(np.mean([w[k] for w in window])) for k in window[0]})
                window.clear()

        def flush() -> None:
            while pending:
                check(*pending.pop())

        t0 = time.time()
        for step in range(start + 1, self.total_steps + 1):
            local = next(loader)
            batch = shd.global_batch({k: local[k] for k in train_data.TRAIN_KEYS}, self.mesh)
            state, metrics = self.train_step(state, batch, frozen)
            flush()
            pending.append((step, metrics))
            if cadence.due("evaluate", step):
                flush()
                self._validate(state, ckpt, writer, frozen, step)
            if cadence.due("checkpoint", step):
                flush()
                ckpt.save(state, step, loader, self.meta(step))
                last_saved = step
            if step < self.total_steps and preemption.reached(step, ckpt.latest):
                # Save this step on every process, keep every metric read so far, then stop.
                flush()
                write_window(step)
                if last_saved != step:
                    ckpt.save(state, step, loader, self.meta(step))
                ckpt.wait()
                bar.close()
                where = os.path.join(self.workdir, checkpoints.LATEST_DIR)
                raise Preempted(config.stage, step, where, preemption.cause or "preemption notice")
        flush()
        bar.close()
        if _is_primary() and self.total_steps > start:
            rate = (self.total_steps - start) / max(time.time() - t0, 1e-9)
            print(f"[{config.stage}] {self.total_steps - start} steps at {rate:.2f} steps/s")
        return state

    def _validate(self, state: TrainState, ckpt: RunCheckpoints, writer: MetricWriter, frozen: Any, step: int) -> None:
        if not self.eval_sources["validation"]:
            return
        results = self.evaluate(state.params, state.extra, frozen, "validation")
        monitor = self.stage.monitor()
        for result in results.values():
            writer.write(step, "validation", _scalars(result["metrics"]))
        if monitor is not None:
            first = next(iter(results.values()))["metrics"]
            value = first.get(monitor[0])
            if value is None:
                raise ConfigError(
                    f"monitor {monitor[0]!r} is not a validation metric of this stage; choose one of "
                    f"{sorted(first)} (config.task.monitor)"
                )
            ckpt.save_best(
                state,
                step,
                self.meta(step, monitor=monitor[0], monitor_mode=monitor[1], monitor_value=float(value)),
                float(value),
            )

    def _finish(self, state: TrainState, ckpt: RunCheckpoints, writer: MetricWriter, frozen: Any) -> dict[str, Any]:
        config, stage = self.config, self.stage
        ckpt.wait()
        selected_step, params, extra = int(jax.device_get(state.step)), state.params, state.extra
        abstract = shd.abstract_with_shardings(self.abstract_state, self.state_shardings)
        best = ckpt.restore_best_model(abstract)
        if best is not None:
            selected_step, model = best
            params, extra = step_builder.split_params(model)
        results: dict[str, Any] = {
            "stage": config.stage,
            "kind": stage.kind,
            "workdir": self.workdir,
            "steps": self.total_steps,
            "selected_step": selected_step,
            "monitor": list(stage.monitor() or []),
        }
        evaluated, plot_inputs = self._evaluate_splits(params, extra, frozen)
        results.update(evaluated)
        for which, per_label in evaluated.items():
            for metrics in per_label.values():
                writer.write(selected_step, f"{which}_selected", metrics)
        if stage.kind == "tokenizer" and "code_counts" not in plot_inputs:
            plot_inputs["code_counts"] = np.asarray(jax.device_get(extra["quantizer"]["quantize"]["usage"]))
        if _is_primary():
            records = read_metrics(self.workdir)
            train_records = [r for r in records if r.get("split") == "train"]
            if train_records:
                results["final_train"] = {k: v for k, v in train_records[-1].items() if k not in ("split",)}
            self._write_results(results, records, plot_inputs)
        return results

    def _evaluate_splits(
        self, params: Any, extra: Any, frozen: Any
    ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, np.ndarray]]:
        """`({split: {dataset: metrics}}, plot inputs)` of the validation and test datasets; the plot inputs
        (confusion matrix, code counts) come from the first dataset that has them."""
        results: dict[str, dict[str, dict[str, float]]] = {}
        plot_inputs: dict[str, np.ndarray] = {}
        for which in ("validation", "test"):
            evaluated = self.evaluate(params, extra, frozen, which) if self.eval_sources[which] else {}
            results[which] = {label: _scalars(r["metrics"]) for label, r in evaluated.items()}
            for r in evaluated.values():
                confusion = self.stage.confusion_matrix(r["per_example"])
                if confusion is not None:
                    plot_inputs.setdefault("confusion", confusion)
                if "code_counts" in r["sums"]:
                    plot_inputs.setdefault("code_counts", np.asarray(r["sums"]["code_counts"]))
        return results, plot_inputs

    def _write_results(
        self, results: dict[str, Any], records: list[dict[str, Any]], plot_inputs: dict[str, np.ndarray]
    ) -> None:
        """The stage's plots and `results.json` (primary process only)."""
        names = list(self.config.task.get("class_names", ())) if "task" in self.config else None
        results["plots"] = write_stage_plots(
            self.workdir,
            records,
            confusion=plot_inputs.get("confusion"),
            class_names=names or None,
            code_counts=plot_inputs.get("code_counts"),
        )
        with open(os.path.join(self.workdir, RESULTS_FILE), "w") as f:
            json.dump(results, f, indent=2, default=checkpoints.json_default)

    def evaluate_only(self) -> dict[str, Any]:
        """The `evaluate` stage: a trained checkpoint on the validation and test splits."""
        path = self.config.init_checkpoint
        if not path:
            raise ConfigError("config.init_checkpoint is empty: the evaluate stage needs a fine-tuned checkpoint")
        os.makedirs(self.workdir, exist_ok=True)
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            variables, meta, _ = restore_on_mesh(path, self.mesh, self.rules)
            checkpoints.require_kind(meta, path, "finetune", purpose="the evaluate stage")
            params, extra = step_builder.split_params(variables)
            params = jax.device_put(params, self.param_shardings)
            self._compile(None, train=False)
            evaluated, plot_inputs = self._evaluate_splits(params, extra, None)
        results: dict[str, Any] = {"stage": "evaluate", "checkpoint": path, "step": meta["step"], **evaluated}
        if _is_primary():
            self._write_results(results, [], plot_inputs)
        return results


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating, np.integer))}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runs `config.stage` in `workdir` and returns its results (also in `workdir/results.json`); once per
    seed with `config.seeds` (`labram_jax.train.seeds`)."""
    if config.get("seeds", ""):
        return seeds.run_seeds(config, workdir, run)
    trainer = Trainer(config, workdir)
    if config.stage == "evaluate":
        return trainer.evaluate_only()
    return trainer.fit()
