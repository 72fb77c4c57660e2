"""Build a dataset without TensorFlow and print its report.

    python -m tfds_builders.build <name> --data_dir=DIR [--manual_dir=DIR] [--config=NAME] [--workers=N]
                                         [--strict]
    python -m tfds_builders.build eeg_labelled --data_dir=DIR --manual_dir=DIR [--config=NAME]
        (--events=DESC=CLASS,... [--tmin=0] --tmax=SECONDS | --table=labels.csv [--window=10] [--stride=S]
         [--task=auto|classification|regression]) [--notch=50|60|none] [--subject_pattern=REGEX]
        [--split_seed=12345] [--val_fraction=0.2] [--test_fraction=0.2]

Names: `tuab`, `tuev`, `eeg_corpus`, `eeg_labelled`, `demo` (without --config, `demo` builds all three,
`demo/tuab`, `demo/tuev` and `demo/corpus`; `eeg_corpus` takes any `--config=w<seconds>[s<stride>][_notch60]`;
`eeg_labelled` takes any name, default `events` or `table`). The dataset lands in
`DIR/<name>/<config>/<version>/` as array_record shards, TFDS metadata and `build_report.json`; read it with
`tfds.data_source("<name>/<config>", data_dir=DIR, split=..., download=False)`. A dataset already built is
not rebuilt (delete its folder to rebuild); an `eeg_labelled` folder built with other options is an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from labram_jax.data.report import BuildError, load_report
from tfds_builders.common import REPORT_NAME, EegBuilder
from tfds_builders.demo import Demo
from tfds_builders.eeg_corpus import EegCorpus
from tfds_builders.eeg_labelled import EegLabelled, labelled_config
from tfds_builders.tuab import Tuab
from tfds_builders.tuev import Tuev

BUILDERS: dict[str, type[EegBuilder]] = {
    "tuab": Tuab,
    "tuev": Tuev,
    "eeg_corpus": EegCorpus,
    "eeg_labelled": EegLabelled,
    "demo": Demo,
}

LABELLED_OPTIONS: tuple[str, ...] = (
    "events",
    "table",
    "tmin",
    "tmax",
    "window",
    "stride",
    "task",
    "notch",
    "subject_pattern",
    "split_seed",
    "val_fraction",
    "test_fraction",
)
"""Options (flags) of `eeg_labelled` only; the other builders take their options from `--config`."""


def build(
    name: str,
    data_dir: str,
    manual_dir: str | None = None,
    config: str | None = None,
    workers: int = 1,
    strict: bool = False,
    options: Mapping[str, Any] | None = None,
) -> list[EegBuilder]:
    """Builds `name` (every config of `demo` when `config` is None) and returns the builders.

    `options` are the `eeg_labelled` options given (keys of `LABELLED_OPTIONS`, the keyword arguments of
    `tfds_builders.eeg_labelled.labelled_config`); any of them for another dataset is an error.
    """
    import tensorflow_datasets as tfds  # after argument parsing: keeps `--help` fast

    if name not in BUILDERS:
        raise SystemExit(f"unknown dataset {name!r}; choose one of {sorted(BUILDERS)}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(LABELLED_OPTIONS))
    if unknown:
        raise SystemExit(f"unknown option(s) {unknown}; eeg_labelled takes {list(LABELLED_OPTIONS)}")
    cls = BUILDERS[name]
    names = [c.name for c in cls.BUILDER_CONFIGS]
    if name == "eeg_labelled":
        if not manual_dir:
            raise SystemExit("eeg_labelled needs --manual_dir=<the folder of recordings>")
        try:
            configs: list = [labelled_config(manual_dir=manual_dir, name=config, **options)]
        except ValueError as err:
            raise SystemExit(f"eeg_labelled: {err}") from None
    elif options:
        raise SystemExit(
            f"{', '.join('--' + k for k in options)} only appl{'ies' if len(options) == 1 else 'y'} "
            f"to eeg_labelled; {name} takes its options from --config (configs: {names})"
        )
    else:
        configs = [config] if config else (names if name == "demo" else [names[0]])
    if name != "eeg_labelled" and config is not None and config not in names:
        from_name = getattr(cls, "config_from_name", None)
        if from_name is None:
            raise SystemExit(f"{name} has no config {config!r}; configs: {names}")
        try:
            configs = [from_name(config)]
        except ValueError as err:
            raise SystemExit(str(err)) from None
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.abspath(os.path.expanduser(manual_dir)) if manual_dir else None
    )
    builders = []
    for cfg in configs:
        builder = cls(config=cfg, data_dir=os.path.expanduser(data_dir), workers=workers, strict=strict)
        builder.download_and_prepare(download_config=download_config)
        builders.append(builder)
    return builders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfds_builders.build", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("--data_dir", required=True, help="where TFDS datasets live")
    parser.add_argument(
        "--manual_dir",
        default=None,
        help="input recordings (tuab/tuev: the folder containing edf/; eeg_corpus, eeg_labelled: any folder)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="builder config (default: the first one; eeg_labelled: any name, default events/table)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes reading and preprocessing files (default: all cores)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail on the first bad file or window instead of skipping and reporting it",
    )
    labelled = parser.add_argument_group("eeg_labelled only")
    labelled.add_argument(
        "--events", default=None, help="events mode: annotation description -> class, e.g. T1=left,T2=right"
    )
    labelled.add_argument(
        "--tmin", type=float, default=None, help="events mode: record start from onset (s, default 0)"
    )
    labelled.add_argument(
        "--tmax", type=float, default=None, help="events mode: record end from onset (s); tmax - tmin whole seconds"
    )
    labelled.add_argument(
        "--table", default=None, help="table mode: CSV with header path,label[,subject][,split] (one row per recording)"
    )
    labelled.add_argument("--window", type=float, default=None, help="table mode: window seconds (default 10)")
    labelled.add_argument("--stride", type=float, default=None, help="table mode: stride seconds (default: window)")
    labelled.add_argument(
        "--task",
        default=None,
        choices=["auto", "classification", "regression"],
        help="table mode: regression when all labels are numbers (auto, default)",
    )
    labelled.add_argument("--notch", default=None, help="mains notch: 50 (default), 60 or none")
    labelled.add_argument(
        "--subject_pattern",
        default=None,
        help="regex, first group = subject, searched in the path relative to --manual_dir",
    )
    labelled.add_argument("--split_seed", type=int, default=None, help="seed of the subject split (12345)")
    labelled.add_argument("--val_fraction", type=float, default=None, help="share of subjects in validation (0.2)")
    labelled.add_argument("--test_fraction", type=float, default=None, help="share of subjects in test (0.2)")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {k: getattr(args, k) for k in LABELLED_OPTIONS if getattr(args, k) is not None}
    if "notch" in options:
        text = options["notch"].strip().lower()
        if text in ("none", "off"):
            options["notch"] = None
        else:
            try:
                options["notch"] = float(text)
            except ValueError:
                parser.error(f"--notch={options['notch']}: give 50, 60 or none")
    try:
        builders = build(args.name, args.data_dir, args.manual_dir, args.config, args.workers, args.strict, options)
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for builder in builders:
        if builder.report is not None and builder.report.files:
            print(builder.report.format_summary())
        else:
            print(f"{builder.name}/{builder.builder_config.name}: already built in {builder.data_dir}")
            path = builder.report_path()
            if os.path.exists(path):
                s = load_report(path)["summary"]
                print(f"  {s['files_read']}/{s['files_found']} files, {s['units_written']} records")
        meta = builder.info.metadata or {}
        if "task" in meta:  # eeg_labelled: what fine-tuning will read
            print(
                f"  task: {meta['task']}, labels: {meta.get('label_names')}, "
                f"{meta.get('window_seconds'):g}-s records, {len(meta.get('channels') or [])} channels"
            )
        print(f"  report: {os.path.join(str(builder.data_dir), REPORT_NAME)}")
        print(
            f"  read with: tfds.data_source({builder.name + '/' + builder.builder_config.name!r}, "
            f"data_dir={os.path.expanduser(args.data_dir)!r}, split='train', download=False)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
