import pytest

from labram_jax import channels


def test_vocabulary_and_tuh_input_chans_match_reference():
    assert len(channels.STANDARD_1020) == 136 and len(channels.VOCABULARY) == 128
    assert channels.input_chans(channels.TUH_CHANNELS) == [
        0,
        1,
        3,
        18,
        22,
        40,
        44,
        62,
        66,
        81,
        83,
        16,
        24,
        89,
        91,
        90,
        92,
        95,
        96,
        20,
        42,
        64,
        113,
        114,
    ]


@pytest.mark.parametrize(
    "raw,canonical",
    [
        ("EEG FP1-REF", "FP1"),
        ("EEG FP1-LE", "FP1"),
        ("EEG T3-REF", "T3"),
        ("Fc5.", "FC5"),
        ("Cz..", "CZ"),
        ("  oz ", "OZ"),
        ("ftt9h", "FTT9h"),
        ("FTT9H", "FTT9h"),
        ("T7", "T7"),
        ("FP1-F7", "FP1-F7"),
        ("EEG A1-REF", "A1"),
        ("M1", "M1"),
        ("EKG", None),
        ("EEG EKG1-REF", None),
        ("PHOTIC-REF", None),
    ],
)
def test_normalisation_table(raw, canonical):
    assert channels.normalize_channel_name(raw) == canonical


def test_old_and_new_names_stay_distinct():
    for old, new in [("T3", "T7"), ("T4", "T8"), ("T5", "P7"), ("T6", "P8"), ("A1", "M1"), ("A2", "M2")]:
        assert channels.channel_id(old) != channels.channel_id(new)


def test_errors_name_the_channel_and_the_limit():
    with pytest.raises(channels.UnknownChannelError, match="'EKG'"):
        channels.channel_id("EKG")
    with pytest.raises(channels.UnknownChannelError, match=r"'FP1-F3'.*beyond the 128 rows"):
        channels.channel_id("FP1-F3")
    with pytest.raises(channels.UnknownChannelError, match="same electrode"):
        channels.channel_ids(["EEG CZ-REF", "Cz.."])


def test_map_channels_keeps_first_and_reports_dropped():
    kept, names, dropped = channels.map_channels(["EEG FP1-REF", "EKG", "Cz.", "EEG CZ-LE", "C4-P4"])
    assert kept == [0, 2] and names == ["FP1", "CZ"] and dropped == ["EKG", "EEG CZ-LE", "C4-P4"]
