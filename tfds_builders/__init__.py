"""TFDS builders that turn EEG recordings into fixed-window array_record datasets.

One package per dataset (`tuab`, `tuev`, `eeg_corpus`, `eeg_labelled`, `demo`), shared pieces in `common`,
and the command `python -m tfds_builders.build <name> --data_dir=DIR [--manual_dir=DIR] [--config=NAME]
[--workers=N] [--strict]` (plus the label options of `eeg_labelled`). Builders write array_record and need no
TensorFlow; read the result with
`tfds.data_source(name, data_dir=DIR, split=..., download=False)`.

Importing this package does not import the builders (TFDS registers a builder on import); import the
subpackage you need, or use `tfds_builders.build.BUILDERS`.
"""
