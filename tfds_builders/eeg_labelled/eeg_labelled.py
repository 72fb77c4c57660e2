"""Your own labelled EEG: a folder of recordings plus labels from their annotations or from a table.

Pass the folder as manual_dir; it is searched recursively for every format MNE reads (EDF/EDF+/BDF,
BrainVision .vhdr, EEGLAB .set, Neuroscan .cnt, FIF, GDF). Channels, preprocessing, build report and
strict mode are those of the other builders (every channel whose name maps to the electrode vocabulary is
kept). Labels come from ONE of two modes:

* `events`: the recordings' own annotations (EDF+ annotations, BrainVision markers, EEGLAB events: MNE's
  `raw.annotations`). `events=(("T1", "left"), ("T2", "right"))` maps annotation descriptions to classes
  (several descriptions may share a class; class order = order of first appearance). Each annotation with
  a mapped description becomes one record `[onset + tmin, onset + tmax)` s of all channels, not wrapped
  around the recording ends: windows leaving the recording are reported as `outside_recording`. The
  annotation's duration plays no part. Annotations with other descriptions are counted per description
  (`unmapped_events` in the report); a recording without any mapped annotation is skipped as `no_events`
  before it is preprocessed.
* `table`: a CSV with a header and one row per recording, `path,label[,subject][,split]` (path relative
  to manual_dir, or absolute). If every label is a number (and `task` is not `classification`) the task is
  regression and `label` is stored as float32; otherwise the classes are the sorted label strings
  (numerically sorted when they all are numbers). Each recording is cut into `window_seconds` windows every
  `stride_seconds`, all carrying its label. Rows whose file is missing are reported as `missing_file`;
  recordings in the folder that the table does not list are reported as `not_in_table`.

Subjects: the table's `subject` column, else the first group of the regex `subject_pattern` searched in
the path relative to manual_dir, else BIDS `sub-<label>` / the first folder / the file-name prefix
(`labram_jax.data.recording.default_ids`). Splits: the table's `split` column (train/validation/test) when
there is one (subjects in several splits are then allowed but logged and listed in the metadata); else
subject-disjoint, `test_fraction` and `val_fraction` of the subjects (sorted ids permuted with
`split_seed`; too few subjects for the requested splits is an error naming the fix). Table mode splits the
subjects that have at least one existing file. A split whose recordings give no record at all fails the
build (TFDS cannot write an empty split): change `split_seed` or the fractions, or fix the files.

The user's options form a dynamic `EegLabelledConfig` (`labelled_config(...)` validates them and reads the
table: the label feature depends on it); the dataset lands in `<data_dir>/eeg_labelled/<config name>/1.0.0`.
A folder built with other options is never reused: building raises `BuildError` naming the differences.

Metadata (`builder.info.metadata`, `metadata.json`), read by training code: `task` (binary / multiclass /
regression), `num_classes` (0 for regression), `label_names`, `window_seconds`, `channels` (sorted
vocabulary names present in the records), `mode`, `events` + `tmin` + `tmax` or `table` + `table_sha256`
+ `stride_seconds`, `subjects` per split, `split_source`, `split_seed`, `val_fraction`, `test_fraction`,
`label_mean` / `label_std` (regression: over the training records), `options` (what staleness is
checked against), `preprocess`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow_datasets as tfds

from labram_jax.data.open_raw import find_recordings
from labram_jax.data.recording import FileTask, default_ids
from labram_jax.data.report import BuildError, FileReport, SkipReason
from tfds_builders.common import EegBuilder, EegConfig, check_fractions, split_subjects_three_way

MODES: tuple[str, ...] = ("events", "table")
TASKS: tuple[str, ...] = ("auto", "classification", "regression")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
TABLE_COLUMNS: tuple[str, ...] = ("path", "label", "subject", "split")

# TFDS turns the config name into a folder: keep it a plain name.
_CONFIG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclasses.dataclass(eq=False)
class EegLabelledConfig(EegConfig):
    """The options of one `eeg_labelled` dataset; make it with `labelled_config(...)`.

    Attributes (beyond `EegConfig`: notch_hz, window_seconds, stride_seconds, val_fraction, split_seed):
      mode: "events" or "table".
      events: `(description, class name)` pairs (events mode).
      tmin, tmax: events mode, the record is `[onset + tmin, onset + tmax)` seconds; `window_seconds`
        holds `tmax - tmin`.
      table: absolute path of the label table (table mode).
      task: "auto", "classification" or "regression", as requested (table mode).
      subject_pattern: regex whose first group is the subject, searched in the path relative to manual_dir.
      test_fraction: share of the subjects in `test` (without a table `split` column).
      manual_dir: the recordings' folder the options were made for ("" when not given).
      label_names: the classes (empty for regression); derived from `events` or from the table.
      regression: True when `label` is a float target (table mode).
      table_sha256: the table's content hash when the config was made (a changed table is another dataset).
    """

    mode: str = "events"
    events: tuple[tuple[str, str], ...] = ()
    tmin: float = 0.0
    tmax: float = 0.0
    table: str = ""
    task: str = "auto"
    subject_pattern: str = ""
    test_fraction: float = 0.2
    manual_dir: str = ""
    label_names: tuple[str, ...] = ()
    regression: bool = False
    table_sha256: str = ""

    def event_map(self) -> tuple[tuple[str, int], ...]:
        """`(description, class index)` pairs, the form `FileTask.event_map` takes."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return tuple((desc, index[cls]) for desc, cls in self.events)

    def options(self) -> dict[str, Any]:
        """The user-given options that define the dataset (compared with an existing build's)."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "manual_dir": self.manual_dir,
            "notch_hz": self.notch_hz,
            "subject_pattern": self.subject_pattern,
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
        }
        if self.mode == "events":
            out.update(events=[list(e) for e in self.events], tmin=self.tmin, tmax=self.tmax)
        else:
            out.update(
                table=self.table,
                table_sha256=self.table_sha256,
                task=self.task,
                window_seconds=self.window_seconds,
                stride_seconds=self.stride_seconds,
            )
        return out

    def task_name(self) -> str:
        """The metadata `task`: "regression", "binary" (two classes) or "multiclass"."""
        if self.regression:
            return "regression"
        return "binary" if len(self.label_names) == 2 else "multiclass"


# ---------------------------------------------------------------------------------------------------------
# Options


def parse_events(text: str) -> tuple[tuple[str, str], ...]:
    """`"T1=left,T2=right"` -> `(("T1", "left"), ("T2", "right"))` (the `--events` flag).

    Splits at the last `=` of each item, so descriptions may contain `=`; class names may not.
    """
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(
                f"--events: {item.strip()!r} is not DESCRIPTION=CLASS; write e.g. --events=T1=left,T2=right"
            )
        desc, cls = item.rsplit("=", 1)
        pairs.append((desc, cls))
    return tuple(pairs)


def _check_events(events: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out, seen = [], {}
    for desc, cls in events:
        desc, cls = str(desc).strip(), str(cls).strip()
        if not desc or not cls:
            raise ValueError(
                f"--events: empty description or class in {desc!r}={cls!r}; write e.g. --events=T1=left,T2=right"
            )
        if desc in seen:
            raise ValueError(
                f"--events: description {desc!r} is mapped twice ({seen[desc]!r} and {cls!r}); "
                "map each description once (several descriptions may share a class)"
            )
        seen[desc] = cls
        out.append((desc, cls))
    if not out:
        raise ValueError("--events is empty; write e.g. --events=T1=left,T2=right")
    return tuple(out)


def _whole_seconds(value: float) -> bool:
    return value >= 1 - 1e-9 and abs(value - round(value)) < 1e-9


def labelled_config(
    *,
    manual_dir: str | os.PathLike[str] | None = None,
    events: str | Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    table: str | os.PathLike[str] | None = None,
    tmin: float | None = None,
    tmax: float | None = None,
    window: float | None = None,
    stride: float | None = None,
    task: str | None = None,
    notch: float | None = 50.0,
    subject_pattern: str | None = None,
    split_seed: int = 12345,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    name: str | None = None,
) -> EegLabelledConfig:
    """Validates the options of one labelled dataset and returns its config.

    Exactly one of `events` (events mode: `"T1=left,T2=right"`, a dict or pairs; needs `tmax`) and `table`
    (table mode: the CSV, absolute or relative to the current folder or to `manual_dir`) must be given.
    Events mode takes `tmin` (default 0) and `tmax`; table mode takes `window` (default 10 s), `stride`
    (default: the window) and `task` (default "auto"). The name defaults to the mode.

    Raises:
      ValueError: an invalid option (the message names the flag) or a malformed table (file, line, fix).
    """
    if (events is None) == (table is None):
        raise ValueError(
            "give exactly one of --events=DESC=CLASS,... (labels from the recordings' "
            "annotations) and --table=labels.csv (one label per recording)"
            + ("; both were given" if events is not None else "")
        )
    mode = "events" if events is not None else "table"
    name = mode if name is None else name
    if not _CONFIG_NAME.fullmatch(name):
        raise ValueError(f"--config={name!r}: use letters, digits, '_', '-' and '.' only")
    if notch is not None and not notch > 0:
        raise ValueError(f"--notch={notch}: give the mains frequency (50 or 60) or 'none'")
    pattern = subject_pattern or ""
    if pattern:
        try:
            groups = re.compile(pattern).groups
        except re.error as err:
            raise ValueError(f"--subject_pattern={pattern!r} is not a regular expression: {err}") from None
        if groups < 1:
            raise ValueError(
                f"--subject_pattern={pattern!r} has no capture group; put the subject in the "
                "first group, e.g. 'sub-(\\w+)' or '^([^/]+)/'"
            )
    check_fractions(val_fraction, test_fraction)
    root = os.path.abspath(os.path.expanduser(os.fspath(manual_dir))) if manual_dir else ""
    common = dict(
        name=name,
        mode=mode,
        notch_hz=None if notch is None else float(notch),
        subject_pattern=pattern,
        split_seed=int(split_seed),
        val_fraction=float(val_fraction),
        test_fraction=float(test_fraction),
        manual_dir=root,
    )

    if mode == "events":
        given = [f for f, v in (("--window", window), ("--stride", stride), ("--task", task)) if v is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to --table mode; an --events record spans "
                "[onset + --tmin, onset + --tmax)"
            )
        pairs = _check_events(
            parse_events(events)
            if isinstance(events, str)
            else list(events.items())
            if isinstance(events, Mapping)
            else list(events)
        )
        if tmax is None:
            raise ValueError(
                "--events needs --tmax (and optionally --tmin, default 0): each record is "
                "[onset + tmin, onset + tmax) seconds, e.g. --tmin=0 --tmax=4"
            )
        tmin = 0.0 if tmin is None else float(tmin)
        tmax = float(tmax)
        length = tmax - tmin
        if not _whole_seconds(length):
            raise ValueError(
                f"--tmax - --tmin must be a positive whole number of seconds (the model reads "
                f"1-s patches); got --tmin={tmin:g} --tmax={tmax:g}, i.e. {length:g} s"
            )
        classes = tuple(dict.fromkeys(cls for _, cls in pairs))
        if len(classes) < 2:
            raise ValueError(
                f"--events maps to the single class {classes[0]!r}; a classification needs at least two classes"
            )
        desc = ", ".join(f"{d}->{c}" for d, c in pairs)
        return EegLabelledConfig(
            **common,
            events=pairs,
            tmin=tmin,
            tmax=tmax,
            window_seconds=float(round(length)),
            stride_seconds=None,
            label_names=classes,
            description=f"annotations {desc}, [{tmin:g}, {tmax:g}) s",
        )

    if tmin is not None or tmax is not None:
        raise ValueError(
            "--tmin/--tmax only apply to --events mode; --table mode cuts each recording into --window-second windows"
        )
    window = 10.0 if window is None else float(window)
    if not _whole_seconds(window):
        raise ValueError(f"--window={window:g} must be a whole number of seconds (>= 1): the model reads 1-s patches")
    if stride is not None and (not stride > 0 or abs(stride * 200 - round(stride * 200)) > 1e-6):
        raise ValueError(f"--stride={stride:g} must be a positive multiple of 5 ms (one 200 Hz sample)")
    task = "auto" if task is None else task
    if task not in TASKS:
        raise ValueError(f"--task={task!r}: choose one of {', '.join(TASKS)}")
    path = resolve_table(table, root)
    rows = read_table(path)
    label_names, regression = resolve_labels(rows, task, path)
    return EegLabelledConfig(
        **common,
        table=path,
        task=task,
        window_seconds=float(round(window)),
        stride_seconds=None if stride is None else float(stride),
        label_names=label_names,
        regression=regression,
        table_sha256=_sha256(path),
        description=f"labels from {os.path.basename(path)}, {window:g}-s windows",
    )


# ---------------------------------------------------------------------------------------------------------
# The label table


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row of the label table; `line` is its 1-based line in the file (for error messages)."""

    line: int
    path: str
    label: str
    subject: str = ""
    split: str = ""


def resolve_table(table: str | os.PathLike[str], manual_dir: str = "") -> str:
    """The absolute path of `--table`: as given when absolute, else in the current folder, else in
    `manual_dir` (so a `labels.csv` kept next to the recordings works from anywhere)."""
    given = os.path.expanduser(os.fspath(table))
    candidates = (
        [given]
        if os.path.isabs(given)
        else [os.path.abspath(given)] + ([os.path.join(manual_dir, given)] if manual_dir else [])
    )
    for c in candidates:
        if os.path.isfile(c):
            return os.path.abspath(c)
    raise ValueError(f"--table={os.fspath(table)}: no such file (looked for {' and '.join(candidates)})")


def read_table(path: str | os.PathLike[str]) -> list[TableRow]:
    """Reads and checks a label table: header `path,label[,subject][,split]` (any order, any case).

    Raises:
      ValueError: naming the file, the line and the fix for a missing column, an empty path or label, a
        repeated path or a split other than train/validation/test.
    """
    path = os.fspath(path)
    usage = "the table needs a header line `path,label[,subject][,split]` and one row per recording"
    # utf-8-sig: spreadsheets often start a CSV with a byte-order mark, which would hide the first column.
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty; {usage}")
        columns = [h.strip().lower() for h in header]
        for required in ("path", "label"):
            if required not in columns:
                hint = (
                    " (the columns must be separated by commas, not semicolons or tabs)"
                    if len(columns) == 1 and any(c in columns[0] for c in ";\t")
                    else ""
                )
                raise ValueError(f"{path}: line 1: the header {header} has no '{required}' column{hint}; {usage}")
        for c in set(columns):
            if c in TABLE_COLUMNS and columns.count(c) > 1:
                raise ValueError(f"{path}: line 1: column '{c}' appears twice in the header {header}")
        at = {c: columns.index(c) for c in TABLE_COLUMNS if c in columns}
        rows: list[TableRow] = []
        first_line: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank line

            def cell(column: str) -> str:
                i = at.get(column)
                return cells[i].strip() if i is not None and i < len(cells) else ""

            row = TableRow(
                line=line, path=cell("path"), label=cell("label"), subject=cell("subject"), split=cell("split").lower()
            )
            if not row.path:
                raise ValueError(
                    f"{path}: line {line}: empty path; give the recording's path relative to "
                    "--manual_dir (or absolute), or remove the row"
                )
            if not row.label:
                raise ValueError(
                    f"{path}: line {line}: empty label for {row.path!r}; give every recording a label or remove its row"
                )
            if "split" in at and row.split not in SPLITS:
                raise ValueError(
                    f"{path}: line {line}: split {cell('split')!r} for {row.path!r} is not one of "
                    f"{', '.join(SPLITS)}; fix it, or drop the split column to split by subject"
                )
            key = os.path.normpath(row.path)
            if key in first_line:
                raise ValueError(
                    f"{path}: line {line}: {row.path!r} is already listed on line "
                    f"{first_line[key]}; list each recording once"
                )
            first_line[key] = line
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no rows after the header; {usage}")
    return rows


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def resolve_labels(rows: Sequence[TableRow], task: str, table: str) -> tuple[tuple[str, ...], bool]:
    """`(class names, regression)` of a table's labels for `task` ("auto", "classification", "regression").

    auto: regression when every label is a finite number, else classification. Classes are the sorted
    label strings; numerically sorted when all are numbers (so `--task=classification` on 0..11 gives
    classes in number order, not "0, 1, 10, 11, 2").
    """
    numbers = [_number(r.label) for r in rows]
    if task == "regression" or (task == "auto" and all(n is not None for n in numbers)):
        for r, n in zip(rows, numbers):
            if n is None:
                raise ValueError(
                    f"{table}: line {r.line}: label {r.label!r} of {r.path!r} is not a finite "
                    "number, but --task=regression needs numeric targets"
                )
        return (), True
    names = sorted(set(r.label for r in rows))
    if all(n is not None for n in numbers):
        names.sort(key=lambda x: (float(x), x))
    if len(names) < 2:
        raise ValueError(f"{table}: every row has the label {names[0]!r}; a classification needs at least two classes")
    return tuple(names), False


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Files, subjects and splits


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) == os.path.realpath(root)


def _ids(path: str, root: str) -> tuple[str, str, str]:
    """`(recording_id, default subject, path shown in the report)` of a file, inside or outside `root`."""
    if _inside(path, root):
        rid, subject = default_ids(path, root)
        return rid, subject, os.path.relpath(path, root).replace(os.sep, "/")
    # A table may point outside the folder: use the absolute path (unique) and the file-name conventions.
    stem = os.path.abspath(path)
    stem = stem[: -len(".fif.gz")] if stem.lower().endswith(".fif.gz") else os.path.splitext(stem)[0]
    parts = stem.replace(os.sep, "/").strip("/").split("/")
    subject = next((p for p in parts if p.startswith("sub-")), parts[-1].split("_")[0])
    return "/".join(parts), subject, os.path.abspath(path)


class _Subjects:
    """Subject ids: given (table column) > `subject_pattern` > `default_ids`; collects pattern misses."""

    def __init__(self, pattern: str):
        self.pattern = re.compile(pattern) if pattern else None
        self.misses: list[str] = []

    def __call__(self, given: str, shown: str, default: str) -> str:
        if given:
            return given
        if self.pattern is None:
            return default
        match = self.pattern.search(shown)
        if match is None or not match.group(1):
            self.misses.append(shown)
            return default
        return match.group(1)

    def check(self) -> None:
        if self.misses:
            assert self.pattern is not None
            raise BuildError(
                f"--subject_pattern={self.pattern.pattern!r} finds no subject (first group) in "
                f"{len(self.misses)} path(s), e.g. {self.misses[:5]}; it is searched in the path relative to "
                "--manual_dir: fix the pattern, or give the subjects in a table `subject` column"
            )


def _seeded_splits(subjects: Iterable[str], config: EegLabelledConfig) -> dict[str, list[str]]:
    try:
        train, val, test = split_subjects_three_way(
            subjects, config.val_fraction, config.test_fraction, config.split_seed
        )
    except ValueError as err:
        raise BuildError(f"eeg_labelled/{config.name}: {err}") from None
    return {"train": train, "validation": val, "test": test}


def _table_split_subjects(rows: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Subjects per split from `(split, subject)` pairs (a table `split` column)."""
    out: dict[str, set[str]] = {s: set() for s in SPLITS}
    for split, subject in rows:
        out[split].add(subject)
    return {s: sorted(v) for s, v in out.items()}


def events_tasks(root: str, config: EegLabelledConfig) -> tuple[dict[str, list[FileTask]], dict[str, Any]]:
    """Events mode: every recording under `root` as an annotation task, split by subject."""
    files = [str(p) for p in find_recordings(root)]
    if not files:
        raise FileNotFoundError(
            f"no recordings (EDF, BDF, .vhdr, .set, .cnt, .fif, .gdf) under {root}; pass the "
            "folder of recordings as --manual_dir"
        )
    subject_of = _Subjects(config.subject_pattern)
    described = []
    for p in files:
        rid, default, shown = _ids(p, root)
        described.append((p, rid, subject_of("", shown, default), shown))
    subject_of.check()
    subjects = _seeded_splits((s for _, _, s, _ in described), config)
    split_of = {s: split for split, members in subjects.items() for s in members}
    splits: dict[str, list[FileTask]] = {s: [] for s in SPLITS}
    for p, rid, subject, shown in described:
        split = split_of[subject]
        splits[split].append(
            FileTask(
                path=p,
                display_path=shown,
                split=split,
                recording_id=rid,
                subject_id=subject,
                montage=None,
                preprocess=config.preprocess(),
                event_map=config.event_map(),
                tmin=config.tmin,
                tmax=config.tmax,
            )
        )
    metadata = {
        "events": dict(config.events),
        "tmin": config.tmin,
        "tmax": config.tmax,
        "subjects": subjects,
        "split_source": "seeded",
    }
    return splits, metadata


def table_tasks(
    root: str, config: EegLabelledConfig
) -> tuple[dict[str, list[FileTask]], dict[str, Any], list[FileReport]]:
    """Table mode: one fixed-window task per table row whose file exists, the split metadata, and the
    reports of the files that cannot be read: rows whose file is missing (`missing_file`) and recordings
    under `root` that the table does not list (`not_in_table`).

    The seeded split draws from the subjects that have a file: a subject whose files are all missing would
    otherwise take a validation or test place and could leave that split without a single record.
    """
    if _sha256(config.table) != config.table_sha256:
        raise BuildError(f"{config.table} changed since the build options were made; run the build again")
    rows = read_table(config.table)
    table_name = os.path.basename(config.table)
    class_index = {name: i for i, name in enumerate(config.label_names)}
    subject_of = _Subjects(config.subject_pattern)
    described = []
    for row in rows:
        p = os.path.normpath(row.path if os.path.isabs(row.path) else os.path.join(root, row.path))
        rid, default, shown = _ids(p, root)
        described.append((row, p, rid, subject_of(row.subject, shown, default), shown))
    subject_of.check()
    has_split_column = any(row.split for row in rows)
    present = [d for d in described if os.path.isfile(d[1])]
    if not present:
        raise BuildError(
            f"none of the {len(rows)} files listed in {config.table} exists (e.g. "
            f"{described[0][1]}); paths are relative to --manual_dir={root} or absolute"
        )
    if has_split_column:
        subjects = _table_split_subjects([(row.split, s) for row, _, _, s, _ in present])
        shared = sorted(
            set(subjects["train"]) & (set(subjects["validation"]) | set(subjects["test"]))
            | set(subjects["validation"]) & set(subjects["test"])
        )
        if shared:  # the user's choice (e.g. a session-wise split), but say so: it is not subject-disjoint
            logging.warning(
                "eeg_labelled: the split column of %s puts subjects %s in several splits", config.table, shared[:10]
            )
    else:
        subjects = _seeded_splits((s for _, _, _, s, _ in present), config)
        shared = []
    split_of = {s: split for split, members in subjects.items() for s in members}

    splits: dict[str, list[FileTask]] = {s: [] for s in SPLITS}
    listed = set()
    unusable: list[FileReport] = []
    for row, p, rid, subject, shown in described:
        split = row.split or split_of.get(subject, "")
        if not os.path.isfile(p):
            unusable.append(
                FileReport(path=shown, split=split, recording_id=rid, subject_id=subject).skip(
                    SkipReason.MISSING_FILE,
                    f"{table_name} line {row.line} lists {row.path!r}, which is not a file "
                    f"({p}); fix the path (relative to --manual_dir) or remove the row",
                )
            )
            continue
        listed.add(os.path.realpath(p))
        label: int | float = float(row.label) if config.regression else class_index[row.label]
        splits[split].append(
            FileTask(
                path=p,
                display_path=shown,
                split=split,
                recording_id=rid,
                subject_id=subject,
                label=label,
                montage=None,
                preprocess=config.preprocess(),
                window_seconds=config.window_seconds,
                stride_seconds=config.stride_seconds,
            )
        )
    unusable += [
        FileReport(path=os.path.relpath(str(p), root).replace(os.sep, "/")).skip(
            SkipReason.NOT_IN_TABLE, f"not listed in {table_name}: add a row to use it, or move it out of --manual_dir"
        )
        for p in find_recordings(root)
        if os.path.realpath(p) not in listed
    ]
    metadata = {
        "table": config.table,
        "table_sha256": config.table_sha256,
        "stride_seconds": config.stride_seconds,
        "subjects": subjects,
        "split_source": "table" if has_split_column else "seeded",
        "subjects_in_several_splits": shared,
    }
    return splits, metadata, unusable


# ---------------------------------------------------------------------------------------------------------
# The builder


def check_existing(dataset_dir: str | os.PathLike[str], config: EegLabelledConfig) -> None:
    """Raises BuildError when `dataset_dir` holds a build made with other options than `config`'s."""
    dataset_dir = os.fspath(dataset_dir)
    if not os.path.isdir(dataset_dir):
        return
    fix = f"build these options under another name (--config=OTHER_NAME) or delete {dataset_dir} to rebuild"
    try:
        with open(os.path.join(dataset_dir, "metadata.json"), encoding="utf-8") as fh:
            stored = json.load(fh).get("options")
    except (OSError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        raise BuildError(f"{dataset_dir} exists but records no eeg_labelled options (metadata.json); {fix}")
    now = json.loads(json.dumps(config.options()))  # the types metadata.json gives back (lists, floats)
    diffs = [
        f"{k}: built with {stored.get(k)!r}, now {now.get(k)!r}"
        for k in sorted(set(stored) | set(now))
        if stored.get(k) != now.get(k)
    ]
    if diffs:
        raise BuildError(
            f"eeg_labelled/{config.name} in {dataset_dir} was built with other options ("
            + "; ".join(diffs)
            + f"); reusing it would give stale data: {fix}"
        )


def _dataset_dir(data_dir: str | None, name: str, config_name: str, version: str) -> str:
    """`<data_dir>/<name>/<config>/<version>`, with TFDS's default data_dir when None."""
    try:  # TFDS's own resolution (default folder, TFDS_DATA_DIR); internal, hence the fallback
        from tensorflow_datasets.core.utils import file_utils

        return os.fspath(
            file_utils.get_data_dir_and_dataset_dir(
                given_data_dir=data_dir, builder_name=name, config_name=config_name, version=version
            )[1]
        )
    except (ImportError, AttributeError, TypeError):
        root = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
        return os.path.join(os.path.expanduser(root), name, config_name, version)


class EegLabelled(EegBuilder):
    """Your own labelled EEG: events from the recordings' annotations, or one label per recording."""

    # No predefined configs: every dataset is a user config (labelled_config). An empty list also makes
    # `tfds.data_source("eeg_labelled/<name>")` read the features (float or class label) from the built
    # files rather than from code, even in a process where this module is imported.
    BUILDER_CONFIGS: list[EegLabelledConfig] = []
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the folder of recordings (searched recursively; EDF/BDF/BrainVision/EEGLAB/CNT/FIF/GDF) as "
        "--manual_dir, and either --events=DESC=CLASS,... --tmax=SECONDS or --table=labels.csv."
    )

    def __init__(self, *, config: EegLabelledConfig | None = None, data_dir: str | None = None, **kwargs: Any):
        if not isinstance(config, EegLabelledConfig):
            raise ValueError(
                "eeg_labelled needs a config from tfds_builders.eeg_labelled.labelled_config(...) "
                "(command line: --events=DESC=CLASS,... --tmax=SECONDS, or --table=labels.csv)"
            )
        # Before TFDS opens an existing folder (it would load that build's class names over ours).
        check_existing(_dataset_dir(data_dir, self.name, config.name, str(self.VERSION)), config)
        super().__init__(config=config, data_dir=data_dir, **kwargs)
        self._channels: set[str] = set()
        self._label_stats = [0, 0.0, 0.0]  # count, mean, sum of squared deviations (Welford)

    def label_names(self) -> tuple[str, ...]:
        return self.builder_config.label_names

    def regression(self) -> bool:
        return self.builder_config.regression

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        config: EegLabelledConfig = self.builder_config
        root = os.path.abspath(str(dl_manager.manual_dir))
        if config.manual_dir and os.path.realpath(config.manual_dir) != os.path.realpath(root):
            raise BuildError(
                f"the eeg_labelled options were made for --manual_dir={config.manual_dir} but the "
                f"build reads {root}; make the config with the same folder"
            )
        self._channels, self._label_stats = set(), [0, 0.0, 0.0]
        if config.mode == "events":
            splits, metadata = events_tasks(root, config)
        else:
            splits, metadata, unusable = table_tasks(root, config)
            assert self._report is not None
            self._report.extend(unusable)
            if self._strict and unusable:
                raise BuildError(
                    f"strict build of {self.name} stopped at {unusable[0].problems()[0]} (and "
                    f"{len(unusable) - 1} more file(s) missing or not in the table; build without --strict to "
                    "skip them and list them in the report)"
                )
        self._store_metadata(
            task=config.task_name(),
            num_classes=0 if config.regression else len(config.label_names),
            label_names=list(config.label_names),
            window_seconds=config.window_seconds,
            mode=config.mode,
            channels=[],
            split_seed=config.split_seed,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            options=config.options(),
            **metadata,
        )
        return self._split_dict(splits)

    def _generate_examples(self, tasks: Sequence[FileTask]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The base pipeline, plus what only the records tell: channels present, training label stats."""
        assert self._report is not None
        split = tasks[0].split if tasks else ""
        first = len(self._report.files)
        track = self.builder_config.regression and split == "train"
        try:
            for key, example in super()._generate_examples(tasks):
                if track:
                    n, mean, m2 = self._label_stats
                    n += 1
                    delta = example["label"] - mean
                    mean += delta / n
                    self._label_stats = [n, mean, m2 + delta * (example["label"] - mean)]
                yield key, example
        except BuildError as err:
            entries = self._report.files[first:]
            if self._strict or any(f.units_written for f in entries):
                raise  # a strict stop or duplicate keys: the base message names the file
            # The split gave no record at all: say why in the user's terms.
            raise (
                self._explain_no_events(entries, split)
                or BuildError(
                    f"{err}. This is the {split!r} split: fix or remove those files, or choose another --split_seed "
                    "or other fractions so that they do not make a split alone"
                )
            ) from None
        entries = self._report.files[first:]
        self._channels.update(name for f in entries if f.units_written for name in f.channels_mapped.values())
        # Written into metadata.json when TFDS finishes the build (after every split).
        self.info.metadata["channels"] = sorted(self._channels)
        if track:
            n, mean, m2 = self._label_stats
            self.info.metadata["label_mean"] = float(mean)
            self.info.metadata["label_std"] = float(math.sqrt(m2 / n)) if n else 0.0

    def _explain_no_events(self, entries: Sequence[FileReport], split: str) -> BuildError | None:
        """The error for an events build where no annotation matched `--events`, listing what was found."""
        if self.builder_config.mode != "events":
            return None
        if any(f.units_written or f.units_skipped for f in entries):
            return None  # some events were mapped; the base error (all skipped) says why
        if not any(f.reason == SkipReason.NO_EVENTS for f in entries):
            return None
        found: dict[str, int] = {}
        for f in entries:
            for desc, count in f.unmapped_events.items():
                found[desc] = found.get(desc, 0) + count
        mapped = [d for d, _ in self.builder_config.events]
        return BuildError(
            f"no annotation of the {len(entries)} recording(s) of split {split!r} has a description named by "
            f"--events ({mapped}); descriptions found (count): {dict(sorted(found.items())) or 'none'}. "
            "Fix --events to map these descriptions to classes, e.g. --events=DESC1=class_a,DESC2=class_b"
        )
