"""Build a dataset without TensorFlow and print its report.

    python -m tfds_builders.build <name> --data_dir=DIR [--manual_dir=DIR] [--config=NAME] [--workers=N]
                                         [--strict]

Names: `tuab`, `tuev`, `eeg_corpus`, `demo` (without --config, `demo` builds both `demo/tuab` and
`demo/tuev`; `eeg_corpus` takes any `--config=w<seconds>[s<stride>][_notch60]`). The dataset lands in `DIR/<name>/<config>/<version>/` as array_record shards, TFDS metadata and
`build_report.json`; read it with `tfds.data_source("<name>/<config>", data_dir=DIR, split=...,
download=False)`. A dataset already built is not rebuilt (delete its folder to rebuild).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from labram_jax.data.report import BuildError, load_report
from tfds_builders.common import REPORT_NAME, EegBuilder
from tfds_builders.demo import Demo
from tfds_builders.eeg_corpus import EegCorpus
from tfds_builders.tuab import Tuab
from tfds_builders.tuev import Tuev

BUILDERS: dict[str, type[EegBuilder]] = {"tuab": Tuab, "tuev": Tuev, "eeg_corpus": EegCorpus, "demo": Demo}


def build(name: str, data_dir: str, manual_dir: str | None = None, config: str | None = None,
          workers: int = 1, strict: bool = False) -> list[EegBuilder]:
    """Builds `name` (every config of `demo` when `config` is None) and returns the builders."""
    import tensorflow_datasets as tfds  # after argument parsing: keeps `--help` fast

    if name not in BUILDERS:
        raise SystemExit(f"unknown dataset {name!r}; choose one of {sorted(BUILDERS)}")
    cls = BUILDERS[name]
    names = [c.name for c in cls.BUILDER_CONFIGS]
    configs: list = [config] if config else (names if name == "demo" else [names[0]])
    if config is not None and config not in names:
        from_name = getattr(cls, "config_from_name", None)
        if from_name is None:
            raise SystemExit(f"{name} has no config {config!r}; configs: {names}")
        try:
            configs = [from_name(config)]
        except ValueError as err:
            raise SystemExit(str(err)) from None
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.abspath(os.path.expanduser(manual_dir)) if manual_dir else None)
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
    parser.add_argument("--manual_dir", default=None,
                        help="input recordings (tuab/tuev: the folder containing edf/; eeg_corpus: any folder)")
    parser.add_argument("--config", default=None, help="builder config (default: the first one)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes reading and preprocessing files (default: all cores)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on the first bad file or window instead of skipping and reporting it")
    args = parser.parse_args(argv)
    try:
        builders = build(args.name, args.data_dir, args.manual_dir, args.config, args.workers, args.strict)
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
        print(f"  report: {os.path.join(str(builder.data_dir), REPORT_NAME)}")
        print(f"  read with: tfds.data_source({builder.name + '/' + builder.builder_config.name!r}, "
              f"data_dir={os.path.expanduser(args.data_dir)!r}, split='train', download=False)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
