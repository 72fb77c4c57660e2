"""Pieces shared by the EEG builders: base builder and config, record features, splits, parallel map."""

from tfds_builders.common.builder import REPORT_NAME, EegBuilder, EegConfig, find_root, record_features, tuh_configs
from tfds_builders.common.parallel import make_executor, ordered_map
from tfds_builders.common.splits import check_fractions, split_subjects, split_subjects_three_way

__all__ = [
    "REPORT_NAME",
    "EegBuilder",
    "EegConfig",
    "find_root",
    "record_features",
    "tuh_configs",
    "make_executor",
    "ordered_map",
    "check_fractions",
    "split_subjects",
    "split_subjects_three_way",
]
