"""Channel-name normalisation as real recordings spell names (labram_reference.md section 2)."""

import pytest

from labram_jax.channels import STANDARD_1020, TUH_CHANNELS, channel_id, map_channels, normalize_channel_name

# (as written in a file, expected vocabulary name or None)
TABLE = [
    ("EEG FP1-REF", "FP1"),  # TUH average-reference montage
    ("EEG FP1-LE", "FP1"),  # TUH linked-ears montage
    ("EEG T3-REF", "T3"),  # old name stays old ...
    ("T7", "T7"),  # ... and new stays new: distinct embeddings
    ("EEG T5-LE", "T5"),
    ("P7", "P7"),
    ("EEG A1-REF", "A1"),
    ("M1", "M1"),
    ("Fc5.", "FC5"),  # PhysioNet EEGMMI pads labels with dots
    ("Cz..", "CZ"),
    ("Fpz.", "FPZ"),
    ("Iz..", "IZ"),
    ("  fp2 ", "FP2"),  # case and spaces
    ("ftt9h", "FTT9h"),  # lower-case 'h' names are reachable
    ("FP1-F7", "FP1-F7"),  # a genuine bipolar vocabulary name is not cut at '-'
    ("EEG EKG1-REF", None),
    ("PHOTIC-REF", None),
    ("EEG 20-REF", None),
    ("ECG", None),
    ("STI 014", None),
]


@pytest.mark.parametrize("raw_name, expected", TABLE)
def test_normalisation_table(raw_name, expected):
    assert normalize_channel_name(raw_name) == expected


def test_old_and_new_names_are_distinct_rows():
    assert channel_id("EEG T3-REF") == STANDARD_1020.index("T3") + 1
    assert channel_id("T7") == STANDARD_1020.index("T7") + 1
    assert channel_id("T3") != channel_id("T7")


def test_map_channels_keeps_order_and_reports_dropped():
    names = ["EEG FP1-REF", "EEG EKG1-REF", "Cz..", "EEG FP1-LE", "T7", "PHOTIC-REF"]
    kept_idx, kept_names, dropped = map_channels(names)
    assert kept_idx == [0, 2, 4]
    assert kept_names == ["FP1", "CZ", "T7"]
    assert dropped == ["EEG EKG1-REF", "EEG FP1-LE", "PHOTIC-REF"]  # FP1-LE repeats FP1


def test_tuh_ids_match_the_reference():
    # input_chans of run_class_finetuning.py without the cls row (labram_reference.md section 2).
    expected = [1, 3, 18, 22, 40, 44, 62, 66, 81, 83, 16, 24, 89, 91, 90, 92, 95, 96, 20, 42, 64, 113, 114]
    assert [channel_id(f"EEG {c}-REF") for c in TUH_CHANNELS] == expected
