"""Embed EEG recordings with a checkpoint: `python -m labram_jax.embed --checkpoint DIR --input PATH --out F.npz`.

```
python -m labram_jax.embed --checkpoint DIR --input FILE_OR_DIR --out OUT.npz \\
    [--window 10] [--stride S] [--batch_size 32] [--notch 50|60|none] [--no_patch_features]
```

Each recording (one file, or every recording under a folder, searched recursively; any format MNE reads)
is read and preprocessed exactly as the dataset builders do it (`labram_jax.data.recording.load_recording`:
channels mapped to the electrode vocabulary, 0.1-75 Hz band-pass, notch, resampling to 200 Hz, µV), cut
into windows and run through the model (`labram_jax.load`) in batches of `--batch_size` windows.

Windows, in samples at 200 Hz (T recording length, W = window, S = stride): windows start at 0, S, 2S, ...
while start + W <= T, i.e. `floor((T - W) / S) + 1` windows when T >= W. A recording shorter than one
window gives none and is listed as skipped (reason `too_short`). The part after the last window that no
window covers is stored per recording as `tail_seconds` (in `meta`). `--window` is whole seconds (one
patch per second) and at most the model's `max_patches` seconds; `--stride` (default: the window) may be
any positive multiple of 5 ms (one sample).

Output: ONE `.npz` (read it with `read_embeddings(path)`, or `np.load`). Recording `i` is `files[i]`:

| key                  | shape / dtype          | content                                                   |
|----------------------|------------------------|-----------------------------------------------------------|
| `files`              | `(R,)` str             | embedded recordings, relative to `--input` (a file: name) |
| `meta`               | `()` str               | JSON, see below                                           |
| `<i>/start_seconds`  | `(W,)` float64         | window starts, seconds from the recording start           |
| `<i>/channels`       | `(C,)` str             | electrodes used, in model order (vocabulary spelling)     |
| `<i>/issue`          | `(W,)` str             | '' or why the dataset builders would drop the window      |
|                      |                        | ('nan', 'flat'); such windows are embedded all the same   |
| `<i>/pooled`         | `(W, d)` float32       | pretrain/finetune: `LoadedModel.pooled` of each window    |
| `<i>/patch_features` | `(W, C, A, d)` float32 | pretrain/finetune, unless `--no_patch_features`: patch    |
|                      |                        | tokens (`LoadedModel.features`); A = window seconds       |
| `<i>/logits`         | `(W, K)` float32       | finetune checkpoints with a task head                     |
| `<i>/codes`          | `(W, C, A)` int        | tokenizer checkpoints: VQ-NSP codebook indices            |

Recordings have their own keys because their channel sets differ. `meta` holds `format`, `checkpoint`,
`checkpoint_kind`, `checkpoint_step`, `max_patches`, `input`, `window_seconds`, `stride_seconds`,
`batch_size`, `preprocess` (band edges, notch, rate), `outputs`, `recordings` (per embedded file, in
`files` order: `file`, `seconds`, `native_sfreq`, `windows`, `tail_seconds`, `channels_mapped` (original
name -> electrode), `channels_dropped` (name -> reason), `windows_flagged`), `skipped` (`file`,
`reason`, `detail`, `channels_dropped`) and `channels_dropped` (file -> {name: reason}, every file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labram_jax import layout

# Heavy modules (jax, mne, orbax) are imported inside functions so that `--help` answers at once.

FORMAT = "labram_jax.embeddings/1"
DEFAULT_WINDOW_SECONDS = 10
DEFAULT_BATCH_SIZE = 32
PER_RECORDING_ARRAYS = ("start_seconds", "channels", "issue", "pooled", "patch_features", "logits", "codes")


class EmbedError(ValueError):
    """A problem the user can fix (flag value, path); the message names the flag or path."""


def _window_samples(window_seconds: float, max_patches: int | None = None) -> int:
    """`--window` in samples; refuses fractional seconds and windows longer than the model's limit."""
    if not float(window_seconds).is_integer() or window_seconds <= 0:
        raise EmbedError(
            f"--window must be a positive whole number of seconds (the model reads one "
            f"{layout.PATCH_SIZE}-sample patch per second), got {window_seconds:g}"
        )
    if max_patches is not None and window_seconds > max_patches:
        raise EmbedError(
            f"--window {window_seconds:g} s is longer than this model's limit of {max_patches} s "
            f"(max_patches = {max_patches} one-second patches); use --window {max_patches} or less"
        )
    return int(window_seconds) * layout.PATCH_SIZE


def _stride_samples(stride_seconds: float) -> int:
    samples = stride_seconds * layout.PATCH_SIZE
    if stride_seconds <= 0 or abs(samples - round(samples)) > 1e-6:
        raise EmbedError(
            f"--stride must be a positive number of seconds in steps of one 200 Hz sample "
            f"(0.005 s), got {stride_seconds:g}"
        )
    return round(samples)


def _recordings(input_path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """`(root, recordings)`: names in the output are relative to `root`."""
    from labram_jax.data.open_raw import (
        RECORDING_SUFFIXES,
        find_recordings,
        is_recording,
    )

    path = Path(input_path).expanduser()
    if not path.exists():
        raise EmbedError(f"--input {path} does not exist")
    if path.is_file():
        if not is_recording(path):
            raise EmbedError(
                f"--input {path} is not a recording this tool reads (file endings: {', '.join(RECORDING_SUFFIXES)})"
            )
        return path.parent, [path]
    found = find_recordings(path)
    if not found:
        raise EmbedError(
            f"--input {path} holds no recording (searched recursively for files ending in "
            f"{', '.join(RECORDING_SUFFIXES)})"
        )
    return path, found


def _check_output(out: str | os.PathLike[str]) -> Path:
    out = Path(out).expanduser().absolute()
    if out.is_dir():
        raise EmbedError(f"--out {out} is a directory; name the .npz file to write, e.g. {out / 'embeddings.npz'}")
    if not out.parent.is_dir():
        raise EmbedError(f"--out {out}: the directory {out.parent} does not exist; create it first")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise EmbedError(f"--out {out}: cannot write there (permission denied); choose another path")
    return out


class _NpzWriter:
    """Writes an `.npz` one array at a time (what `np.savez` does, without holding every array at once),
    into a temporary file that replaces `path` only when complete, so a failed run leaves no partial file."""

    def __init__(self, path: Path):
        self.path = path
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True)

    def add(self, key: str, array: Any) -> None:
        with self._zip.open(f"{key}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)

    def commit(self) -> None:
        self._zip.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        self._zip.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


def _wanted_outputs(model: Any, patch_features: bool) -> tuple[str, ...]:
    which = [o for o in model.available_outputs if o != "features" or patch_features]
    return tuple(which)


def _embed_recording(
    model: Any,
    signal: np.ndarray,
    channel_names: Sequence[str],
    starts: np.ndarray,
    window: int,
    batch_size: int,
    which: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Runs `len(starts)` windows of `signal` through `model` `batch_size` at a time.

    Only one batch of windows is materialised at a time. The last batch is padded with copies of its last
    window so every call has the same shape (one compilation per channel count); the copies are dropped.
    """
    c, a = signal.shape[0], window // layout.PATCH_SIZE
    parts: dict[str, list[np.ndarray]] = {k: [] for k in which}
    for lo in range(0, len(starts), batch_size):
        chunk = starts[lo : lo + batch_size]
        batch = np.stack([signal[:, s : s + window] for s in chunk])
        n = len(chunk)
        if n < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - n, axis=0)])
        for key, value in model.outputs(batch, channel_names, which).items():
            parts[key].append(value[:n])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    if "features" in out:  # channel-major tokens c * A + a -> (W, C, A, d)
        out["patch_features"] = out.pop("features").reshape(len(starts), c, a, -1)
    if "codes" in out:
        out["codes"] = out["codes"].reshape(len(starts), c, a)
    return out


def embed(
    checkpoint: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    stride_seconds: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    notch_hz: float | None = 50.0,
    patch_features: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Embeds every recording of `input_path` into the `.npz` file `out` (layout: module docstring).

    Returns the `meta` dict written to the file. Raises `EmbedError` for flag values and paths a user must
    fix; unusable recordings are not errors, they are listed in `meta["skipped"]`.
    """
    window_samples = _window_samples(window_seconds)
    stride_seconds = window_seconds if stride_seconds is None else stride_seconds
    stride_samples = _stride_samples(stride_seconds)
    if batch_size < 1:
        raise EmbedError(f"--batch_size must be at least 1, got {batch_size}")
    root, paths = _recordings(input_path)
    out_path = _check_output(out)

    from tqdm import tqdm

    import labram_jax
    from labram_jax.checkpoints import CheckpointError
    from labram_jax.data.preprocess import PreprocessConfig
    from labram_jax.data.recording import FileTask, load_recording
    from labram_jax.data.report import FileReport, SkipReason
    from labram_jax.data.windows import check_window, window_starts

    checkpoint_path = Path(checkpoint).expanduser().absolute()
    try:
        model = labram_jax.load(checkpoint_path)
    except CheckpointError as err:
        raise EmbedError(f"--checkpoint {checkpoint_path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - e.g. Orbax failing on a damaged checkpoint
        raise EmbedError(
            f"--checkpoint {checkpoint_path} could not be restored ({type(err).__name__}: {err})"
        ) from None
    _window_samples(window_seconds, model.max_patches)
    which = _wanted_outputs(model, patch_features)
    preprocess = PreprocessConfig(notch_hz=notch_hz)

    meta: dict[str, Any] = {
        "format": FORMAT,
        "checkpoint": str(checkpoint_path),
        "checkpoint_kind": model.kind,
        "checkpoint_step": model.meta.get("step"),
        "max_patches": model.max_patches,
        "input": str(Path(input_path).expanduser().absolute()),
        "window_seconds": float(window_seconds),
        "stride_seconds": stride_samples / layout.PATCH_SIZE,
        "batch_size": batch_size,
        "preprocess": preprocess.as_dict(),
        "outputs": ["start_seconds", "channels", "issue"] + [{"features": "patch_features"}.get(k, k) for k in which],
        "recordings": [],
        "skipped": [],
        "channels_dropped": {},
    }
    files: list[str] = []
    try:
        writer = _NpzWriter(out_path)
    except OSError as err:  # e.g. a read-only or full file system that os.access did not reveal
        raise EmbedError(f"--out {out_path}: cannot write there ({err})") from None
    try:
        bar = tqdm(paths, desc="embedding", unit="file", disable=not progress, dynamic_ncols=True)
        total_windows = 0
        for path in bar:
            rel = path.relative_to(root).as_posix()
            task = FileTask(
                path=str(path),
                display_path=rel,
                recording_id=rel,
                preprocess=preprocess,
                window_seconds=float(window_seconds),
                stride_seconds=stride_seconds,
            )
            report = FileReport(path=rel)
            try:
                # The builders' own per-file step: read, map channels, filter, resample; `min_samples`
                # makes a recording shorter than one window a `too_short` skip before any filtering.
                rec = load_recording(task, report, min_samples=window_samples)
            except Exception as err:  # noqa: BLE001 - as process_file: a block MNE cannot decode mid-file
                report.skip(SkipReason.UNREADABLE, f"{type(err).__name__} while reading/processing: {err}")
                rec = None
            if report.channels_dropped:
                meta["channels_dropped"][rel] = dict(report.channels_dropped)
            if rec is None:
                meta["skipped"].append(
                    {
                        "file": rel,
                        "reason": report.reason,
                        "detail": report.detail,
                        "channels_dropped": dict(report.channels_dropped),
                    }
                )
                continue
            n = rec.signal.shape[1]
            starts = window_starts(n, window_samples, stride_samples)
            issues = [
                check_window(
                    rec.signal[:, s : s + window_samples],
                    None if rec.bad is None else rec.bad[s : s + window_samples],
                    None if rec.flat is None else rec.flat[s : s + window_samples],
                )
                or ""
                for s in starts
            ]
            arrays = _embed_recording(model, rec.signal, rec.channel_names, starts, window_samples, batch_size, which)
            i = len(files)
            writer.add(f"{i}/start_seconds", starts / layout.PATCH_SIZE)
            writer.add(f"{i}/channels", np.asarray(rec.channel_names, dtype=str))
            writer.add(f"{i}/issue", np.asarray(issues, dtype="<U8"))
            for key, value in arrays.items():
                writer.add(f"{i}/{key}", value)
            del arrays, rec  # keep one recording in memory at a time
            flagged: dict[str, int] = {}
            for reason in issues:
                if reason:
                    flagged[reason] = flagged.get(reason, 0) + 1
            files.append(rel)
            total_windows += len(starts)
            meta["recordings"].append(
                {
                    "file": rel,
                    "seconds": n / layout.PATCH_SIZE,
                    "native_sfreq": report.sfreq,
                    "windows": len(starts),
                    "tail_seconds": (n - int(starts[-1]) - window_samples) / layout.PATCH_SIZE,
                    "channels_mapped": dict(report.channels_mapped),
                    "channels_dropped": dict(report.channels_dropped),
                    "windows_flagged": flagged,
                }
            )
            bar.set_postfix(windows=total_windows)
        bar.close()
        writer.add("files", np.asarray(files, dtype=str))
        writer.add("meta", np.asarray(json.dumps(meta, default=_json_default)))
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return meta


def _json_default(x: Any) -> Any:
    from labram_jax.checkpoints import json_default

    return json_default(x)


def format_summary(meta: dict[str, Any], out: str | os.PathLike[str] = "") -> str:
    """The lines printed at the end of a run: files and windows, skips with reasons, channels not used."""
    recs, skipped = meta["recordings"], meta["skipped"]
    windows = sum(r["windows"] for r in recs)
    found = len(recs) + len(skipped)
    lines = [
        f"embedded {len(recs)} of {found} recording(s): {windows} window(s) of {meta['window_seconds']:g} s "
        f"every {meta['stride_seconds']:g} s with a {meta['checkpoint_kind']} checkpoint"
        + (f" -> {out}" if out else "")
    ]
    if skipped:
        lines.append(f"skipped {len(skipped)} recording(s):")
        lines += [f"  {s['file']}: {s['reason']}: {s['detail']}" for s in skipped]
    flagged: dict[str, int] = {}
    for r in recs:
        for reason, count in r["windows_flagged"].items():
            flagged[reason] = flagged.get(reason, 0) + count
    if flagged:
        lines.append(
            "windows kept but flagged in <i>/issue (the dataset builders drop them): "
            + ", ".join(f"{k}={v}" for k, v in sorted(flagged.items()))
        )
    grouped: dict[tuple[str, str], list[str]] = {}
    for file, dropped in meta["channels_dropped"].items():
        for name, reason in dropped.items():
            grouped.setdefault((name, reason), []).append(file)
    if grouped:
        lines.append("channels not used:")
        for (name, reason), where in sorted(grouped.items()):
            shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
            lines.append(f"  {name!r} ({reason}): {shown}")
    return "\n".join(lines)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `meta` JSON of an embeddings file."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def read_embeddings(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One dict per embedded recording, in file order: `file`, its arrays under their short names
    (`pooled`, `patch_features`, `logits`, `codes`, `start_seconds`, `channels` as a list, `issue`) and its
    `meta["recordings"]` entry (`tail_seconds`, `channels_dropped`, ...)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        out = []
        for i, (file, info) in enumerate(zip(data["files"].tolist(), meta["recordings"])):
            rec: dict[str, Any] = {**info, "file": file}
            for key in PER_RECORDING_ARRAYS:
                if f"{i}/{key}" in data.files:
                    rec[key] = data[f"{i}/{key}"]
            rec["channels"] = rec["channels"].tolist()
            out.append(rec)
    return out


def _notch(text: str) -> float | None:
    if text.lower() == "none":
        return None
    if text in ("50", "60"):
        return float(text)
    raise argparse.ArgumentTypeError(f"expected 50, 60 or none, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m labram_jax.embed",
        description="Embed EEG recordings with a LaBraM checkpoint into one .npz file (per-window pooled "
        "features, per-patch features, logits, or tokenizer codes). Recordings are preprocessed "
        "as the dataset builders do: electrode channels only, 0.1-75 Hz band-pass, notch, "
        "200 Hz, microvolts.",
        epilog="Windows start at 0, S, 2S, ... while start + W <= length: floor((T - W) / S) + 1 per recording; "
        "a recording shorter than one window is skipped. Output layout: pydoc labram_jax.embed. Read it "
        "with labram_jax.embed.read_embeddings(OUT.npz).",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="checkpoint directory: converted official weights or a pretrain/finetune/tokenizer "
        "workdir, manager or step directory",
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="FILE_OR_DIR",
        help="a recording (EDF, BDF, BrainVision, EEGLAB, FIF, ...) or a folder searched recursively",
    )
    p.add_argument("--out", required=True, metavar="OUT.npz", help="the .npz file to write")
    p.add_argument(
        "--window",
        type=float,
        default=DEFAULT_WINDOW_SECONDS,
        metavar="S",
        help="window length in whole seconds, at most the model's max_patches (default: %(default)g)",
    )
    p.add_argument(
        "--stride",
        type=float,
        default=None,
        metavar="S",
        help="seconds between window starts (default: the window, no overlap)",
    )
    p.add_argument(
        "--batch_size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="windows per forward pass (default: %(default)s)",
    )
    p.add_argument(
        "--notch",
        type=_notch,
        default=50.0,
        metavar="50|60|none",
        help="mains notch in Hz, as the dataset builders (default: 50)",
    )
    p.add_argument(
        "--no_patch_features",
        action="store_true",
        help="do not store the (W, C, A, d) per-patch features (they are d times larger than the EEG)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 when at least one recording was embedded)."""
    args = _parser().parse_args(argv)
    try:
        meta = embed(
            args.checkpoint,
            args.input,
            args.out,
            window_seconds=args.window,
            stride_seconds=args.stride,
            batch_size=args.batch_size,
            notch_hz=args.notch,
            patch_features=not args.no_patch_features,
            progress=not args.quiet,
        )
    except EmbedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(meta, args.out))
    if not meta["recordings"]:
        print("error: no recording was embedded (see the reasons above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from labram_jax import host_memory  # keeps XLA's temporaries in the process (see there)

    host_memory.configure()
    sys.exit(main())
