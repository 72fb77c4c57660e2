"""Builder for users' own labelled EEG (labels from annotations or from a table)."""

from tfds_builders.eeg_labelled.eeg_labelled import (
    EegLabelled,
    EegLabelledConfig,
    labelled_config,
    parse_events,
    read_table,
)

__all__ = ["EegLabelled", "EegLabelledConfig", "labelled_config", "parse_events", "read_table"]
