"""The electrode vocabulary of LaBraM and channel-name normalisation.

The official code indexes its spatial embedding (`pos_embed`, 129 rows: row 0 for the cls token, then one row
per electrode) with `utils.standard_1020`, a list of 136 names, through
`input_chans = [0] + [standard_1020.index(name) + 1 for name in ch_names]`.
Only the first 128 names have a row; the last 8 bipolar names would index past the table.

Faithfulness rules kept here (labram_reference.md section 2):
* old and new 10-20 names are *different* embeddings (T3 != T7, T4 != T8, T5 != P7, T6 != P8, A1/A2 != M1/M2):
  nothing is aliased, since that would silently swap pretrained embeddings;
* matching is case-insensitive, so the six names with a lower-case `h` (FTT9h, ...) are reachable, unlike in the
  official pre-training converter that upper-cases names;
* recording-specific decorations are removed: TUH's `EEG FP1-REF` / `EEG FP1-LE`, PhysioNet's `Fc5.` / `Cz..`,
  surrounding spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

# utils.standard_1020 of the official repository, in its order (pos_embed row = index + 1).
STANDARD_1020: tuple[str, ...] = (
    "FP1",
    "FPZ",
    "FP2",
    "AF9",
    "AF7",
    "AF5",
    "AF3",
    "AF1",
    "AFZ",
    "AF2",
    "AF4",
    "AF6",
    "AF8",
    "AF10",
    "F9",
    "F7",
    "F5",
    "F3",
    "F1",
    "FZ",
    "F2",
    "F4",
    "F6",
    "F8",
    "F10",
    "FT9",
    "FT7",
    "FC5",
    "FC3",
    "FC1",
    "FCZ",
    "FC2",
    "FC4",
    "FC6",
    "FT8",
    "FT10",
    "T9",
    "T7",
    "C5",
    "C3",
    "C1",
    "CZ",
    "C2",
    "C4",
    "C6",
    "T8",
    "T10",
    "TP9",
    "TP7",
    "CP5",
    "CP3",
    "CP1",
    "CPZ",
    "CP2",
    "CP4",
    "CP6",
    "TP8",
    "TP10",
    "P9",
    "P7",
    "P5",
    "P3",
    "P1",
    "PZ",
    "P2",
    "P4",
    "P6",
    "P8",
    "P10",
    "PO9",
    "PO7",
    "PO5",
    "PO3",
    "PO1",
    "POZ",
    "PO2",
    "PO4",
    "PO6",
    "PO8",
    "PO10",
    "O1",
    "OZ",
    "O2",
    "O9",
    "CB1",
    "CB2",
    "IZ",
    "O10",
    "T3",
    "T5",
    "T4",
    "T6",
    "M1",
    "M2",
    "A1",
    "A2",
    "CFC1",
    "CFC2",
    "CFC3",
    "CFC4",
    "CFC5",
    "CFC6",
    "CFC7",
    "CFC8",
    "CCP1",
    "CCP2",
    "CCP3",
    "CCP4",
    "CCP5",
    "CCP6",
    "CCP7",
    "CCP8",
    "T1",
    "T2",
    "FTT9h",
    "TTP7h",
    "TPP9h",
    "FTT10h",
    "TPP8h",
    "TPP10h",
    "FP1-F7",
    "F7-T7",
    "T7-P7",
    "P7-O1",
    "FP2-F8",
    "F8-T8",
    "T8-P8",
    "P8-O2",
    "FP1-F3",
    "F3-C3",
    "C3-P3",
    "P3-O1",
    "FP2-F4",
    "F4-C4",
    "C4-P4",
    "P4-O2",
)

NUM_USABLE: int = 128
"""Names with a row in the official `pos_embed` (rows 1..128)."""

VOCABULARY: tuple[str, ...] = STANDARD_1020[:NUM_USABLE]
"""The electrode names this project can embed, in pos_embed row order (row = index + 1)."""

NUM_SPATIAL_ROWS: int = NUM_USABLE + 1
"""Rows of the spatial embedding table: row 0 belongs to the cls token."""

CLS_ROW: int = 0
PAD_CHANNEL_ID: int = 0
"""Channel id written for padded channel slots; they are masked out, so the row they point at never matters."""

TUH_CHANNELS: tuple[str, ...] = (
    "FP1",
    "FP2",
    "F3",
    "F4",
    "C3",
    "C4",
    "P3",
    "P4",
    "O1",
    "O2",
    "F7",
    "F8",
    "T3",
    "T4",
    "T5",
    "T6",
    "A1",
    "A2",
    "FZ",
    "CZ",
    "PZ",
    "T1",
    "T2",
)
"""The 23 referential channels of TUAB/TUEV in the order of the official fine-tuning script."""

_BY_UPPER: dict[str, str] = {name.upper(): name for name in STANDARD_1020}
assert len(_BY_UPPER) == len(STANDARD_1020), "standard_1020 names must be unique case-insensitively"

# Prefixes and reference suffixes that recordings attach to electrode names. Suffixes are stripped only
# when they name a reference, so genuine bipolar vocabulary names such as 'FP1-F7' survive.
_PREFIX = re.compile(r"^(EEG|EEG:|EEG-)\s*", re.IGNORECASE)
_REF_SUFFIX = re.compile(r"[-_ ](REF|LE|AR|AVG|AV|CAR|RE|M1M2|A1A2|LINKED|CZ)$", re.IGNORECASE)


class UnknownChannelError(ValueError):
    """A channel name that has no row in the LaBraM spatial embedding."""


def _candidates(name: str) -> Iterable[str]:
    """Progressively undecorated spellings of a channel name, most literal first."""
    cleaned = name.strip().strip(".").strip()
    yield cleaned
    no_prefix = _PREFIX.sub("", cleaned).strip()
    yield no_prefix
    yield _REF_SUFFIX.sub("", no_prefix).strip().strip(".")


def normalize_channel_name(name: str) -> str | None:
    """Returns the vocabulary spelling of `name` (any of the 136 names), or None when nothing matches.

    'EEG FP1-REF' -> 'FP1', 'Fc5.' -> 'FC5', 'ftt9h' -> 'FTT9h', 'T3' -> 'T3' (never 'T7').
    Names 129..136 of the official list are returned too; `channel_id` rejects them.
    """
    for candidate in _candidates(name):
        hit = _BY_UPPER.get(candidate.upper())
        if hit is not None:
            return hit
    return None


def is_usable(name: str) -> bool:
    """True when `name` normalises to one of the 128 electrodes with an embedding row."""
    canonical = normalize_channel_name(name)
    return canonical is not None and STANDARD_1020.index(canonical) < NUM_USABLE


def channel_id(name: str) -> int:
    """Row of `name` in the spatial embedding (1..128), raising UnknownChannelError with the fix."""
    canonical = normalize_channel_name(name)
    if canonical is None:
        raise UnknownChannelError(
            f"unknown EEG channel {name!r}: it matches none of the {NUM_USABLE} electrode names LaBraM can "
            "embed (labram_jax.channels.VOCABULARY; 10-20/10-10 names such as 'FP1', 'T3', 'FTT9h', with "
            "decorations like 'EEG ', '-REF', '-LE' or trailing dots removed). Drop or rename this channel."
        )
    row = STANDARD_1020.index(canonical) + 1
    if row > NUM_USABLE:
        raise UnknownChannelError(
            f"channel {name!r} ({canonical}) is in the official standard_1020 list but beyond the "
            f"{NUM_USABLE} rows of pos_embed (it would be row {row}); the official weights cannot embed it. "
            f"Only the first 8 bipolar derivations ({', '.join(VOCABULARY[-8:])}) are usable."
        )
    return row


def channel_ids(names: Sequence[str]) -> np.ndarray:
    """Spatial-embedding rows of a channel list, as int32 `(C,)` (cls row not included)."""
    ids = np.asarray([channel_id(n) for n in names], dtype=np.int32)
    rows, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        clashes = [[n for n, i in zip(names, ids) if i == row] for row in rows[counts > 1]]
        raise UnknownChannelError(f"channels {clashes} name the same electrode; keep one of each.")
    return ids


def input_chans(names: Sequence[str]) -> list[int]:
    """The official `utils.get_input_chans`: `[0] + rows`, the cls row first."""
    return [CLS_ROW] + channel_ids(names).tolist()


def map_channels(names: Sequence[str]) -> tuple[list[int], list[str], list[str]]:
    """Splits a recording's channel list into usable and unusable channels.

    Returns `(kept_indices, kept_vocabulary_names, dropped_original_names)`; a channel is dropped when it
    has no embedding row or repeats an electrode already kept (first occurrence wins).
    """
    kept_idx: list[int] = []
    kept_names: list[str] = []
    dropped: list[str] = []
    for i, name in enumerate(names):
        canonical = normalize_channel_name(name)
        if not is_usable(name) or canonical in kept_names:
            dropped.append(name)
            continue
        kept_idx.append(i)
        kept_names.append(canonical)
    return kept_idx, kept_names, dropped
